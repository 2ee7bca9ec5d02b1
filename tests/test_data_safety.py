"""No data lost, ever: every bad input or output of `rtstyle stylize` (and the API under it) ends with
the right exit code, one line on stderr, the input untouched and no partial output.

Real frames throughout: the clip and photos are made from the bundled sample video.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from rtstyle.cli import main  # noqa: E402
from rtstyle.frame import Frame  # noqa: E402
from rtstyle.io import ImageSink, ImageSource, SourceError, VideoFileSink, VideoFileSource  # noqa: E402
from rtstyle.io.safety import OutputExistsError, SameFileError  # noqa: E402
from rtstyle.weights import WeightFileError, check_weight_file  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "rtstyle" / "assets" / "sample.mp4"
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frames_of(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _decodable(path: Path) -> int:
    """Frames FFmpeg itself gets out of a damaged file, skipping packets it rejects."""
    n = 0
    with av.open(str(path)) as c:
        for packet in c.demux(c.streams.video[0]):
            try:
                n += len(packet.decode())
            except av.error.FFmpegError:
                continue
    return n


def _err_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("rtstyle: error:")]


def _one_error(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """The single ``rtstyle: error:`` line (and all of stderr); no traceback anywhere."""
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    errors = _err_lines(captured.err)
    assert len(errors) == 1, f"expected one error line, got {captured.err!r}"
    return errors[0], captured.err


def _no_partials(folder: Path) -> None:
    left = [p.name for p in folder.rglob("*") if ".part" in p.name]
    assert not left, f"temporary files left behind: {left}"


@pytest.fixture(scope="module")
def sample_frames() -> list[np.ndarray]:
    """30 real frames of the bundled clip at 160x90."""
    with av.open(str(SAMPLE)) as c:
        frames = []
        for f in c.decode(video=0):
            frames.append(cv2.resize(f.to_ndarray(format="rgb24"), (160, 90), interpolation=cv2.INTER_AREA))
            if len(frames) == 30:
                break
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, sample_frames: list[np.ndarray]) -> Path:
    """A 30-frame 160x90 H.264 MP4 (index at the front, as rtstyle writes it) of the sample's frames."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with VideoFileSink(path, fps=25) as sink:
        for i, img in enumerate(sample_frames):
            sink.write(Frame(np.ascontiguousarray(img), i, i / 25))
    return path


@pytest.fixture
def work(tmp_path: Path, clip: Path) -> Path:
    """A fresh folder holding a copy of the clip as ``in.mp4``."""
    shutil.copy(clip, tmp_path / "in.mp4")
    return tmp_path


def _photos(folder: Path, frames: list[np.ndarray], n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"photo{i}.jpg"
        cv2.imwrite(str(p), cv2.cvtColor(frames[i * 7], cv2.COLOR_RGB2BGR))
        paths.append(p)
    return paths


# --------------------------------------------------------------------------- (a) input == output
@pytest.mark.parametrize("how", ["same", "relative", "hardlink", "symlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_video_output_that_is_the_input_is_refused(how: str, overwrite: bool, work: Path, tiny_johnson: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    src = work / "in.mp4"
    before = _sha(src)
    out = {"same": str(src), "relative": "./in.mp4", "hardlink": "hard.mp4", "symlink": "sym.mp4"}[how]
    if how == "hardlink":
        os.link(src, work / "hard.mp4")
    elif how == "symlink":
        (work / "sym.mp4").symlink_to(src)
    listing = sorted(p.name for p in work.iterdir())
    argv = ["-q", "stylize", str(src), "-o", out, "-m", str(tiny_johnson), "-b", "eager"] + (["-y"] if overwrite else [])
    assert main(argv) == 1
    line, _ = _one_error(capsys)
    assert "input" in line
    assert _sha(src) == before
    assert sorted(p.name for p in work.iterdir()) == listing


def test_image_output_that_is_the_input_is_refused(tmp_path: Path, sample_frames: list[np.ndarray],
                                                    tiny_johnson: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "imgs", sample_frames)
    hashes = [_sha(p) for p in photos]
    os.link(photos[0], tmp_path / "link.jpg")
    for out in (str(photos[0]), str(tmp_path / "link.jpg")):
        assert main(["-q", "stylize", str(photos[0]), "-o", out, "-m", str(tiny_johnson), "-b", "eager", "-y"]) == 1
        assert "input" in _one_error(capsys)[0]
    # a folder job into its own folder would replace every photo
    assert main(["-q", "stylize", str(tmp_path / "imgs"), "-o", str(tmp_path / "imgs") + "/", "-m", str(tiny_johnson),
                 "-b", "eager", "-y"]) == 1
    assert "replace the input images" in _one_error(capsys)[0]
    assert [_sha(p) for p in photos] == hashes
    _no_partials(tmp_path)


def test_api_refuses_the_input_as_output(work: Path, tiny_johnson: Path) -> None:
    from rtstyle.pipeline import Pipeline
    from rtstyle.stylizer import Stylizer

    src_path = work / "in.mp4"
    before = _sha(src_path)
    st = Stylizer(str(tiny_johnson), backend="eager")
    with VideoFileSource(src_path) as src:
        sink = VideoFileSink(src_path, fps=25, overwrite=True)
        with pytest.raises(SameFileError):
            Pipeline(src, st, [sink])
        sink.abort()
    st.close()
    with pytest.raises(SameFileError):  # the audio input is an input too
        VideoFileSink(src_path, fps=25, overwrite=True, audio_from=src_path)
    assert _sha(src_path) == before
    assert sorted(p.name for p in work.iterdir()) == ["in.mp4"]


# --------------------------------------------------------------------------- (b) existing outputs
def test_existing_video_output_needs_overwrite(work: Path, tiny_johnson: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src, out = work / "in.mp4", work / "out.mp4"
    out.write_bytes(b"precious")
    argv = ["-q", "stylize", str(src), "-o", str(out), "-m", str(tiny_johnson), "-b", "eager", "--max-frames", "5"]
    assert main(argv) == 1
    line, _ = _one_error(capsys)
    assert "-y/--overwrite" in line and str(out) in line
    assert out.read_bytes() == b"precious"
    assert main(argv + ["-y"]) == 0
    assert _frames_of(out) == 5
    _no_partials(work)


def test_existing_image_output_needs_overwrite(tmp_path: Path, sample_frames: list[np.ndarray], tiny_johnson: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (photo,) = _photos(tmp_path / "in", sample_frames, 1)
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    argv = ["-q", "stylize", str(photo), "-o", str(out), "-m", str(tiny_johnson), "-b", "eager"]
    assert main(argv) == 1
    assert "-y/--overwrite" in _one_error(capsys)[0]
    assert out.read_bytes() == b"precious"
    assert main(argv + ["-y"]) == 0
    assert cv2.imread(str(out)).shape == (90, 160, 3)


def test_folder_job_skips_existing_outputs_and_y_redoes_them(tmp_path: Path, sample_frames: list[np.ndarray],
                                                              tiny_johnson: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "in", sample_frames)
    hashes = [_sha(p) for p in photos]
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo1.jpg").write_bytes(b"done before")
    rep = tmp_path / "rep.json"
    argv = ["stylize", str(tmp_path / "in"), "-o", str(out), "-m", str(tiny_johnson), "-b", "eager",
            "--report", str(rep)]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert "1 skipped" in said.out and not _err_lines(said.err)
    r = json.loads(rep.read_text())
    assert r["skipped_existing"] == 1 and r["frames_out"] == 2 and r["failed"] == []
    assert (out / "photo1.jpg").read_bytes() == b"done before"
    for name in ("photo0.jpg", "photo2.jpg"):
        assert cv2.imread(str(out / name)).shape == (90, 160, 3)
    # everything done: a rerun does nothing (and says so), -y redoes all
    assert main(argv) == 0
    assert json.loads(rep.read_text())["skipped_existing"] == 3
    assert "3 skipped" in capsys.readouterr().out
    assert main(argv + ["-y"]) == 0
    r = json.loads(rep.read_text())
    assert r["skipped_existing"] == 0 and r["frames_out"] == 3
    assert cv2.imread(str(out / "photo1.jpg")).shape == (90, 160, 3)
    assert [_sha(p) for p in photos] == hashes
    _no_partials(tmp_path)


def test_glob_job(tmp_path: Path, sample_frames: list[np.ndarray], tiny_johnson: Path) -> None:
    _photos(tmp_path / "in", sample_frames)
    cv2.imwrite(str(tmp_path / "in" / "other.png"), sample_frames[0])
    assert main(["-q", "stylize", str(tmp_path / "in" / "photo*.jpg"), "-o", str(tmp_path / "out") + "/",
                 "-m", str(tiny_johnson), "-b", "eager"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo0.jpg", "photo1.jpg", "photo2.jpg"]


def test_sinks_refuse_existing_files_unless_overwrite(tmp_path: Path, sample_frames: list[np.ndarray]) -> None:
    for name in ("x.mp4", "x.png"):
        (tmp_path / name).write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        VideoFileSink(tmp_path / "x.mp4", fps=25)
    with pytest.raises(OutputExistsError):
        ImageSink(tmp_path / "x.png")
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"keep")
    sink = ImageSink(folder)
    with pytest.raises(OutputExistsError):  # a frame of a.png would land on the existing a.png
        sink.write(Frame(sample_frames[0], 0, meta={"path": str(tmp_path / "a.png")}))
    sink.close()
    assert all(p.read_bytes() == b"keep" for p in (tmp_path / "x.mp4", tmp_path / "x.png", folder / "a.png"))
    with ImageSink(folder, overwrite=True) as sink:
        sink.write(Frame(sample_frames[0], 0, meta={"path": str(tmp_path / "a.png")}))
    assert cv2.imread(str(folder / "a.png")).shape == (90, 160, 3)


# --------------------------------------------------------------------------- (c) unreadable files in a folder
def test_folder_with_unreadable_files_does_the_good_ones(tmp_path: Path, sample_frames: list[np.ndarray],
                                                          tiny_johnson: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "in", sample_frames)
    (tmp_path / "in" / "garbage.jpg").write_bytes(os.urandom(2048))
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    hashes = {p.name: _sha(p) for p in (tmp_path / "in").iterdir()}
    rep = tmp_path / "rep.json"
    assert main(["-q", "stylize", str(tmp_path / "in"), "-o", str(tmp_path / "out") + "/", "-m", str(tiny_johnson),
                 "-b", "eager", "--report", str(rep)]) == 1
    line, _ = _one_error(capsys)
    assert "2 of 5" in line and "garbage.jpg" in line and "empty.png" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in photos)
    for p in photos:
        assert cv2.imread(str(tmp_path / "out" / p.name)).shape == (90, 160, 3)
    r = json.loads(rep.read_text())
    assert r["frames_out"] == 3 and sorted(Path(f["file"]).name for f in r["failed"]) == ["empty.png", "garbage.jpg"]
    assert {p.name: _sha(p) for p in (tmp_path / "in").iterdir()} == hashes
    _no_partials(tmp_path)


def test_image_source_skips_unreadable_files(tmp_path: Path, sample_frames: list[np.ndarray]) -> None:
    photos = _photos(tmp_path, sample_frames, 2)
    bad = tmp_path / "a_bad.png"  # sorts first: the source must not give up on its first file
    bad.write_bytes(b"\x89PNG but no more")
    with ImageSource(tmp_path) as src:
        got = [Path(f.meta["path"]).name for f in src]
    assert got == [p.name for p in photos]
    assert [(f.name, why) for f, why in src.failed] == [("a_bad.png", "not a supported image")]
    with pytest.raises(SourceError):  # one named file: its error is the error
        ImageSource(bad)


# --------------------------------------------------------------------------- (d) damaged videos
def test_truncated_video_keeps_what_decodes(work: Path, tiny_johnson: Path, capsys: pytest.CaptureFixture[str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    src = work / "cut.mp4"
    data = (work / "in.mp4").read_bytes()
    src.write_bytes(data[: len(data) * 6 // 10])
    before = _sha(src)
    want = _decodable(src)
    assert 0 < want < 30
    out, rep = work / "out.mp4", work / "rep.json"
    assert main(["-q", "stylize", str(src), "-o", str(out), "-m", str(tiny_johnson), "-b", "eager",
                 "--report", str(rep)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and not _err_lines(err)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]  # stderr, outside pytest
    assert len(warned) == 1 and "cut.mp4 is damaged: decoding stopped at frame" in warned[0]
    assert " s) of the 30 announced (truncated?)" in warned[0]
    got = _frames_of(out)
    assert abs(got - want) <= 2  # frame threading may hand over the last frame or two, or not
    r = json.loads(rep.read_text())
    assert r["frames_out"] == got and r["input_damage"][-1]["frame"] == got
    assert _sha(src) == before
    _no_partials(work)


def test_video_damaged_in_the_middle_keeps_the_rest(work: Path, tiny_johnson: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    src = work / "damaged.mp4"
    data = bytearray((work / "in.mp4").read_bytes())
    mid = len(data) // 2
    data[mid: mid + 1500] = np.random.default_rng(0).integers(0, 256, 1500, dtype=np.uint8).tobytes()
    src.write_bytes(bytes(data))
    out = work / "out.mp4"
    assert main(["-q", "stylize", str(src), "-o", str(out), "-m", str(tiny_johnson), "-b", "eager"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and not _err_lines(err)
    got = _frames_of(out)
    if got < 30:  # frames were lost: the warning says from where
        assert "damaged" in caplog.text and "at frame" in caplog.text
    assert got >= _decodable(src) - 2 and got > 15  # the frames after the damage are kept too


def test_video_that_does_not_decode_at_all(work: Path, tiny_johnson: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = work / "head.mp4"
    src.write_bytes((work / "in.mp4").read_bytes()[:600])  # the index, no picture
    assert main(["-q", "stylize", str(src), "-o", str(work / "out.mp4"), "-m", str(tiny_johnson), "-b", "eager"]) == 1
    line, _ = _one_error(capsys)
    assert "head.mp4" in line
    assert sorted(p.name for p in work.iterdir()) == ["head.mp4", "in.mp4"]


# --------------------------------------------------------------------------- (e) damaged or foreign weights
def _weights_case(case: str, folder: Path, tiny_johnson: Path) -> str:
    import torch

    shipped = REPO / "rtstyle" / "weights_data" / "johnson_starry_night_lite.safetensors"
    rng = np.random.default_rng(1)
    junk = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    if case == "garbage.safetensors":
        (folder / case).write_bytes(junk)
    elif case == "empty.safetensors":
        (folder / case).write_bytes(b"")
    elif case == "truncated.safetensors":
        data = shipped.read_bytes()
        (folder / case).write_bytes(data[: len(data) // 2])
    elif case == "garbage.pth":
        (folder / case).write_bytes(junk)
    elif case == "truncated.pth":
        data = tiny_johnson.read_bytes()
        (folder / case).write_bytes(data[: len(data) // 2])
    elif case == "pickled_model.pth":
        from rtstyle.models.johnson import TransformerNet

        torch.save(TransformerNet(width=4, n_res=2), folder / case)
    elif case == "mismatched.pth":
        from rtstyle.models.johnson import TransformerNet

        sd = TransformerNet(width=4, n_res=2).state_dict()
        sd["conv1.conv2d.weight"] = torch.zeros(5, 3, 9, 9)
        torch.save(sd, folder / case)
    elif case == "garbage.onnx":
        (folder / case).write_bytes(junk)
    elif case == "foreign.safetensors":  # a safetensors file of some other network
        from safetensors.torch import save_file

        save_file({"encoder.0.weight": torch.zeros(8, 3, 3, 3), "head.bias": torch.zeros(10)}, str(folder / case))
    elif case == "johnson:adain_decoder":  # a real model file, forced through another family's loader
        shutil.copy(REPO / "rtstyle" / "weights_data" / "adain_vgg16.safetensors", folder / "adain.safetensors")
        return f"johnson:{folder / 'adain.safetensors'}"
    return str(folder / case)


@pytest.mark.parametrize("case", ["garbage.safetensors", "empty.safetensors", "truncated.safetensors", "garbage.pth",
                                  "truncated.pth", "pickled_model.pth", "mismatched.pth", "garbage.onnx",
                                  "foreign.safetensors", "johnson:adain_decoder"])
def test_damaged_or_foreign_weights_give_one_line(case: str, tmp_path: Path, sample_frames: list[np.ndarray],
                                                  tiny_johnson: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (photo,) = _photos(tmp_path / "in", sample_frames, 1)
    before = _sha(photo)
    model = _weights_case(case, tmp_path, tiny_johnson)
    assert main(["-q", "stylize", str(photo), "-o", str(tmp_path / "out.png"), "-m", model, "-b", "eager"]) == 1
    line, _ = _one_error(capsys)
    assert Path(model.partition(":")[2] if model.startswith("johnson:") else model).name in line
    assert "weights_only" not in line  # torch's advice to load unsafely never reaches the user
    assert _sha(photo) == before
    assert not (tmp_path / "out.png").exists()


def test_damaged_third_party_weights_give_one_line(tmp_path: Path, sample_frames: list[np.ndarray],
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (photo,) = _photos(tmp_path / "in", sample_frames, 1)
    weights = tmp_path / "weights"
    (weights / "lst").mkdir(parents=True)
    for name in ("lst/vgg_r31.pth", "lst/dec_r31.pth", "vgg16_imagenet_to_relu4_3.pth"):
        (weights / name).write_bytes(b"<html>404 Not Found</html>" * 40)  # a failed download
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(weights))
    for model in ("adain.r31", "adain.vgg16"):
        assert main(["-q", "stylize", str(photo), "-o", str(tmp_path / "out.png"), "-m", model, "-b", "eager",
                     "--style", str(photo)]) == 1
        line, _ = _one_error(capsys)
        assert "not a PyTorch checkpoint" in line and str(weights) in line
    assert not (tmp_path / "out.png").exists()


def test_check_weight_file_accepts_good_files(tiny_johnson: Path) -> None:
    for p in (REPO / "rtstyle" / "weights_data").glob("*.safetensors"):
        assert check_weight_file(p) == p
    assert check_weight_file(tiny_johnson) == tiny_johnson
    bad = tiny_johnson.with_name("cut.pth")
    bad.write_bytes(tiny_johnson.read_bytes()[:100])
    with pytest.raises(WeightFileError, match="incomplete"):
        check_weight_file(bad)


# --------------------------------------------------------------------------- (f) images smaller than a model needs
def _backends() -> list[str]:
    from importlib.util import find_spec

    return ["eager"] + (["openvino"] if find_spec("openvino") else [])


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("model", ["johnson.starry_night_lite", "msgnet.lite"])
def test_tiny_images_are_stylized(backend: str, model: str, tmp_path: Path, sample_frames: list[np.ndarray],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for w, h in ((1, 1), (3, 5), (7, 2)):
        src = tmp_path / f"tiny_{w}x{h}.png"
        cv2.imwrite(str(src), cv2.cvtColor(np.ascontiguousarray(sample_frames[0][40:40 + h, 70:70 + w]),
                                           cv2.COLOR_RGB2BGR))
        out = tmp_path / f"out_{w}x{h}.png"
        assert main(["-q", "stylize", str(src), "-o", str(out), "-m", model, "-b", backend]) == 0, capsys.readouterr().err
        assert cv2.imread(str(out)).shape == (h, w, 3)


def test_every_model_takes_a_tiny_image(sample_frames: list[np.ndarray]) -> None:
    """The API: every registered model whose weights are here stylises a 3x5 image (eager)."""
    from rtstyle.models import get_spec, list_models
    from rtstyle.stylizer import Stylizer
    from rtstyle.weights import WeightNotFoundError

    img = np.ascontiguousarray(sample_frames[3][:5, :3])
    done = []
    for name in list_models():
        style = sample_frames[10] if get_spec(name).needs_style_image else None
        try:
            st = Stylizer(name, backend="eager", style_image=style)
        except (WeightNotFoundError, ImportError):
            continue  # third-party weights or an optional package not on this machine
        assert st.stylize(img).shape == (5, 3, 3), name
        st.close()
        done.append(name)
    assert "johnson.starry_night_lite" in done and "msgnet.lite" in done


# --------------------------------------------------------------------------- (g) --swap past the end
def test_swap_past_the_end_is_a_warning(work: Path, tiny_johnson: Path, capsys: pytest.CaptureFixture[str],
                                        caplog: pytest.LogCaptureFixture) -> None:
    out = work / "out.mp4"
    assert main(["-q", "stylize", str(work / "in.mp4"), "-o", str(out), "-m", str(tiny_johnson), "-b", "eager",
                 "--swap", f"#10={tiny_johnson},99s=johnson.wave_lite,#500=johnson.wave_lite"]) == 0
    assert not _err_lines(capsys.readouterr().err)
    warnings = [r.getMessage() for r in caplog.records if "past the end" in r.getMessage()]
    assert len(warnings) == 2 and "99s=johnson.wave_lite" in warnings[0] and "#500" in warnings[1]
    assert "1.16 s" in warnings[0]  # the last frame, #29 at 25 fps
    assert _frames_of(out) == 30


# --------------------------------------------------------------------------- (h) a full disk
@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A 160 kB tmpfs (needs root and mount(8)); skips where it cannot be mounted."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the fault-injection test covers this")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_full_disk_video_job(work: Path, tiny_johnson: Path, small_disk: Path, sample_frames: list[np.ndarray],
                             capsys: pytest.CaptureFixture[str]) -> None:
    big = work / "big.mp4"  # 90 noisy 320x180 frames: far more than 160 kB of H.264
    rng = np.random.default_rng(2)
    with VideoFileSink(big, fps=25) as sink:
        for i in range(90):
            img = cv2.resize(sample_frames[i % 30], (320, 180))
            sink.write(Frame(np.clip(img + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8), i, i / 25))
    before = _sha(big)
    assert main(["-q", "stylize", str(big), "-o", str(small_disk / "out.mp4"), "-m", str(tiny_johnson),
                 "-b", "eager", "--crf", "0"]) == 1
    line, _ = _one_error(capsys)
    assert "No space left on device" in line
    assert list(small_disk.iterdir()) == []
    assert _sha(big) == before


def test_full_disk_folder_job(tmp_path: Path, small_disk: Path, tiny_johnson: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):  # noise at 640x480: ~110 kB per stylised PNG, the second one does not fit
        cv2.imwrite(str(src / f"n{i}.png"), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    assert main(["-q", "stylize", str(src), "-o", str(small_disk) + "/", "-m", str(tiny_johnson), "-b", "eager"]) == 1
    line, _ = _one_error(capsys)
    assert "No space left on device" in line
    assert list(small_disk.iterdir()) == []


def test_write_failure_mid_file_leaves_nothing(work: Path, tiny_johnson: Path) -> None:
    """Fault injection that needs no mount: the job runs with a 24 kB file-size limit (RLIMIT_FSIZE),
    so the video writer's writes fail part-way like on a full disk."""
    out = work / "out.mp4"
    before = _sha(work / "in.mp4")

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write(2), not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (24_000, 24_000))

    proc = subprocess.run([sys.executable, "-m", "rtstyle.cli", "-q", "stylize", str(work / "in.mp4"), "-o", str(out),
                           "-m", str(tiny_johnson), "-b", "eager", "--crf", "0"],
                          preexec_fn=limit, capture_output=True, text=True, timeout=600, cwd=work)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = _err_lines(proc.stderr)
    assert len(errors) == 1 and "File too large" in errors[0], proc.stderr
    assert sorted(p.name for p in work.iterdir()) == ["in.mp4"]
    assert _sha(work / "in.mp4") == before


def test_live_recording_never_replaces_an_existing_file(tmp_path, capsys):
    """`rtstyle live --sink rec.mp4` refuses an existing file unless -y, before any model work."""
    from rtstyle.cli import main

    rec = tmp_path / "rec.mp4"
    rec.write_bytes(b"an earlier recording")
    before = rec.read_bytes()
    code = main(["live", "--source", "synthetic:64x48@10", "--sink", str(rec), "--max-frames", "3"])
    assert code != 0
    err = capsys.readouterr().err
    assert "exists" in err and "-y" in err and "Traceback" not in err
    assert rec.read_bytes() == before
    assert main(["live", "--source", "synthetic:64x48@10", "--sink", str(rec), "--max-frames", "3", "-y",
                 "--size", "32"]) == 0
    assert rec.stat().st_size > 0 and rec.read_bytes() != before


def test_grid_refuses_an_existing_output_unless_asked(tmp_path, capsys):
    """`rtstyle grid -o X` keeps an existing X unless -y, and never names an input as its output."""
    import numpy as np
    from rtstyle.cli import main
    from rtstyle.io.images import read_image, write_image

    photo = tmp_path / "photo.png"
    write_image(photo, (np.indices((48, 64)).sum(0)[..., None] * np.array([3, 1, 2]) % 256).astype(np.uint8))
    out = tmp_path / "grid.jpg"
    out.write_bytes(b"an earlier grid")
    assert main(["-q", "grid", str(photo), "-o", str(out), "--max-side", "64"]) != 0
    err = capsys.readouterr().err
    assert "exists" in err and "Traceback" not in err
    assert out.read_bytes() == b"an earlier grid"
    before = photo.read_bytes()
    assert main(["-q", "grid", str(photo), "-o", str(photo), "-y"]) != 0
    assert photo.read_bytes() == before
    assert main(["-q", "grid", str(photo), "-o", str(out), "--max-side", "64", "-y"]) == 0
    assert read_image(out).shape[2] == 3
    assert not list(tmp_path.glob(".*part*"))

"""precision "auto": candidates by host ISA, the measured decision, the 40 dB floor, the cache."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import cv2
import pytest
import torch

from rtstyle.backends import BackendOptions, create_backend
from rtstyle.backends import precision as P
from rtstyle.host import HostISA, detect_host, use_host
from rtstyle.models import create_model

AMX, NO_AMX = HostISA.mock("amx"), HostISA.mock("avx512")
HAS_OV = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("onnxscript") is not None
HAS_NNCF = importlib.util.find_spec("nncf") is not None


@pytest.fixture(scope="module")
def lite() -> torch.nn.Module:
    return create_model("johnson.starry_night_lite").eval()


def _example(h: int = 96, w: int = 128) -> tuple[torch.Tensor]:
    return (torch.full((1, 3, h, w), 127.5),)


def _status(d: P.PrecisionDecision) -> dict[str, str]:
    return {c.precision: c.status for c in d.candidates}


def test_candidates_follow_the_isa() -> None:
    assert [c.status for c in P.candidate_precisions("eager", "cpu", AMX)] == ["candidate", "candidate"]
    bf16 = {c.precision: c for c in P.candidate_precisions("eager", "cpu", NO_AMX)}["bf16"]
    assert bf16.status == "skipped" and "AMX" in bf16.note
    ov = {c.precision: c for c in P.candidate_precisions("openvino", "cpu", NO_AMX)}
    assert ov["fp32"].status == "candidate" and ov["bf16"].status == "skipped"
    assert ov["int8"].status == ("candidate" if HAS_NNCF else "skipped")
    ov_old = {c.precision: c for c in P.candidate_precisions("openvino", "cpu", HostISA.mock("avx2"))}
    assert ov_old["int8"].status == "skipped" and "VNNI" in ov_old["int8"].note
    assert [c.precision for c in P.candidate_precisions("onnx", "cpu", AMX)] == ["fp32"]


def test_amx_host_measures_bf16(lite: torch.nn.Module, tmp_path: Path) -> None:
    """Mocked AMX host: bf16 is built and measured for real against eager fp32 on sample-clip frames."""
    b = create_backend("eager", BackendOptions(precision="auto", cache_dir=str(tmp_path)))
    with use_host(AMX):
        runner = b.prepare(lite, _example())
    d = runner.precision_decision
    assert d is not None and not d.cached and d.host_kind == "amx" and d.size == (96, 128)
    cands = {c.precision: c for c in d.candidates}
    assert set(cands) == {"fp32", "bf16"}
    assert cands["fp32"].psnr_db == math.inf  # eager fp32 against itself
    assert cands["bf16"].ms > 0 and 15 < cands["bf16"].psnr_db < 80  # bf16 rounding shows
    chosen = cands[d.precision]
    assert chosen.status == "chosen" and (d.precision == "fp32" or chosen.psnr_db >= 40)
    assert d.precision in d.reason and "AMX host" in d.reason
    # the runner really runs at the chosen precision
    assert runner.precision == d.precision  # type: ignore[attr-defined]
    out = runner(P.calibration_inputs(lite.spec, (96, 128), count=1)[0])
    assert out.shape == (1, 3, 96, 128) and out.dtype == torch.float32


def test_no_amx_host_skips_bf16_without_measuring(lite: torch.nn.Module, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("nothing to measure on this host")

    monkeypatch.setattr(P, "_measure", boom)
    b = create_backend("eager", BackendOptions(precision="auto", cache_dir=str(tmp_path)))
    with use_host(NO_AMX):
        d = b.prepare(lite, _example()).precision_decision
    assert d.precision == "fp32" and d.size is None
    assert _status(d) == {"fp32": "chosen", "bf16": "skipped"}
    assert "non-AMX" in d.reason and "bf16 skipped" in d.reason
    assert not any(tmp_path.rglob("decision.json"))  # a foregone conclusion is not cached


def test_decision_is_cached_and_reused(lite: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opts = BackendOptions(precision="auto", cache_dir=str(tmp_path))
    with use_host(AMX):
        first = create_backend("eager", opts).prepare(lite, _example()).precision_decision
        files = list(tmp_path.glob("precision-eager/*/decision.json"))
        assert len(files) == 1 and json.loads(files[0].read_text())["precision"] == first.precision

        def boom(*a: object, **k: object) -> None:
            raise AssertionError("measured again")

        monkeypatch.setattr(P, "_measure", boom)
        # a new process would see only the cache: a fresh backend, another frame size, retrained weights
        other = create_model("johnson.starry_night_lite").eval()
        with torch.no_grad():
            next(other.parameters()).mul_(1.01)
        again = create_backend("eager", opts).prepare(other, _example(64, 64)).precision_decision
    assert again.cached and again.precision == first.precision and again.reason == first.reason
    with use_host(HostISA.mock("amx", flags=AMX.flags - {"amx_int8"})):  # another host: decided anew
        with pytest.raises(AssertionError, match="measured again"):
            create_backend("eager", opts).prepare(lite, _example())


def test_floor_rejects_a_faster_lossy_candidate(lite: torch.nn.Module, tmp_path: Path) -> None:
    opts = BackendOptions(cache_dir=str(tmp_path))
    fake = {"fp32": (100.0, math.inf), "bf16": (40.0, 39.0)}
    d = P.decide_precision(lite, "eager", _example(), options=opts, host=AMX, measure=lambda ps: fake)
    assert d.precision == "fp32" and _status(d)["bf16"] == "below floor"
    assert "bf16 39.0 dB < 40" in d.reason
    # the same numbers above the floor: bf16 wins, with its speed-up in the reason
    ok = {"fp32": (100.0, math.inf), "bf16": (40.0, 52.0)}
    d2 = P.decide_precision(lite, "eager", _example(), options=BackendOptions(cache_dir=str(tmp_path / "b")),
                            host=AMX, measure=lambda ps: ok)
    assert d2.precision == "bf16" and d2.reason.startswith("bf16: 2.50x fp32, 52.0 dB on AMX host")
    # a tie within the margin keeps fp32
    tie = {"fp32": (100.0, math.inf), "bf16": (97.0, 52.0)}
    d3 = P.decide_precision(lite, "eager", _example(), options=BackendOptions(cache_dir=str(tmp_path / "c")),
                            host=AMX, measure=lambda ps: tie)
    assert d3.precision == "fp32" and _status(d3)["bf16"] == "not faster"


def test_floor_with_real_measurement(lite: torch.nn.Module, tmp_path: Path) -> None:
    """A real bf16 run against an unreachable floor is rejected whatever its speed."""
    b = P.AutoPrecisionBackend("eager", BackendOptions(precision="auto", cache_dir=str(tmp_path)), host=AMX)
    d = P.decide_precision(lite, "eager", _example(), options=b.options, host=AMX, floor_db=200.0,
                           prepare=lambda p: b.inner(p).prepare(lite, _example()))
    assert d.precision == "fp32" and _status(d)["bf16"] == "below floor" and "< 200" in d.reason


@pytest.mark.skipif(not HAS_OV, reason="needs openvino and onnxscript")
def test_real_host_openvino(lite: torch.nn.Module, tmp_path: Path) -> None:
    """The decision on this machine's real ISA: what it may consider, and the floor on what it picks."""
    host = detect_host()
    b = create_backend("openvino", BackendOptions(precision="auto", cache_dir=str(tmp_path)))
    runner = b.prepare(lite, _example(120, 160))
    d = runner.precision_decision
    cands = {c.precision: c for c in d.candidates}
    assert (cands["bf16"].status != "skipped") == host.native_bf16
    assert (cands["int8"].status != "skipped") == (host.vnni and HAS_NNCF)
    chosen = cands[d.precision]
    assert chosen.status == "chosen"
    # an fp32 choice is only measured when there was something to compare it with (an AVX2-only host
    # without VNNI has no bf16 or int8 candidate: fp32 is chosen unmeasured)
    assert d.precision == "fp32" or (chosen.psnr_db is not None and chosen.psnr_db >= 40.0)
    assert ("non-AMX" in d.reason) == (not host.amx)
    # the runner's output keeps that quality on a frame it was not measured on
    frame = P._sample_rgb(count=4, every=13)[-1]
    x = P._to_input(cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA), lite.spec)
    with torch.inference_mode():
        ref = P._to_uint8(lite(x), lite.spec)
    assert P.psnr_db(P._to_uint8(runner(x), lite.spec), ref) >= 38.0


def test_cli_reports_precision_and_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rtstyle.cli import main

    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path / "engines"))
    photo = tmp_path / "frame.png"
    cv2.imwrite(str(photo), cv2.cvtColor(P._sample_rgb(1, 1)[0], cv2.COLOR_RGB2BGR))
    with use_host(AMX):  # eager on a (mocked) AMX host: fp32 and bf16 measured
        assert main(["-q", "stylize", str(photo), "-o", str(tmp_path / "out.png"), "-b", "eager", "--size", "96",
                     "--report", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["precision"] in ("fp32", "bf16") and rep["precision"] in rep["precision_reason"]
    assert "AMX host" in rep["precision_reason"]
    assert cv2.imread(str(tmp_path / "out.png")).shape == (360, 640, 3)
    assert main(["-q", "stylize", str(photo), "-o", str(tmp_path / "out2.png"), "-b", "eager", "--precision", "fp32",
                 "--report", str(tmp_path / "r2.json")]) == 0
    rep2 = json.loads((tmp_path / "r2.json").read_text())
    assert rep2["precision"] == "fp32" and rep2["precision_reason"] == "as requested"


def test_style_swap_declares_fp32_for_auto_and_is_never_measured(tmp_path: Path, shared: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Style-swap's patch matching flips in bf16 by a style-dependent amount (29 dB on wave.jpg where
    another style gave 40): auto must not choose bf16 from one style's measurement, even on an AMX host
    and with a bf16 decision left in the cache."""
    from rtstyle.stylizer import Stylizer

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path))

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("nothing to measure: the model allows fp32 only")

    monkeypatch.setattr(P, "_measure", boom)
    with use_host(AMX):
        st = Stylizer("styleswap.multi", backend="eager", precision="auto",
                      style_image=str(shared / "media" / "styles" / "wave.jpg"), frame_size=(128, 96))
        frame = cv2.imread(str(shared / "media" / "photos" / "content" / "palapeli_cincinnati-bridge.jpg"))[:96, :128]
        assert st.stylize(frame).shape == frame.shape
        d = st.precision_decision
    assert d is not None and d.precision == "fp32"
    bf16 = {c.precision: c for c in d.candidates}["bf16"]
    assert bf16.status == "skipped" and "style-swap" in bf16.note
    # the Johnson net declares nothing: bf16 stays a candidate on the same host
    assert {c.precision: c.status for c in P.candidate_precisions("eager", "cpu", AMX, create_model(
        "johnson.starry_night_lite"))}["bf16"] == "candidate"


def test_live_floor_is_an_option_and_rtstyle_live_sets_it(lite: torch.nn.Module, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A 37 dB bf16 is below the default 40 dB floor and above the live one (35 dB); the two floors are
    separate cache entries, and ``build_stylizer(live=True)`` asks for the live floor."""
    from rtstyle.jobs import StylizerSettings, build_stylizer

    fake = {"fp32": (100.0, math.inf), "bf16": (40.0, 37.0)}
    monkeypatch.setattr(P, "_measure", lambda *a, **k: (fake, 100.0, {}))
    files = BackendOptions(precision="auto", cache_dir=str(tmp_path))
    live = BackendOptions(precision="auto", cache_dir=str(tmp_path), extra={P.FLOOR_OPTION: P.LIVE_FLOOR_DB})
    with use_host(AMX):
        d_file = create_backend("eager", files).prepare(lite, _example()).precision_decision
        d_live = create_backend("eager", live).prepare(lite, _example()).precision_decision
    assert d_file.precision == "fp32" and "bf16 37.0 dB < 40" in d_file.reason and d_file.floor_db == 40
    assert d_live.precision == "bf16" and d_live.floor_db == 35 and not d_live.cached
    assert len(list(tmp_path.glob("precision-eager/*/decision.json"))) == 2
    with pytest.raises(ValueError, match=P.FLOOR_OPTION):
        P.AutoPrecisionBackend("eager", BackendOptions(extra={P.FLOOR_OPTION: -1})).floor_db

    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path / "cli"))
    settings = StylizerSettings(model="johnson.starry_night_lite", backend="eager")
    assert build_stylizer(settings, live=True).options.extra[P.FLOOR_OPTION] == P.LIVE_FLOOR_DB
    assert P.FLOOR_OPTION not in build_stylizer(settings).options.extra  # files keep the default floor
    mine = BackendOptions(extra={P.FLOOR_OPTION: 45.0})
    assert build_stylizer(settings, live=True, options=mine).options.extra[P.FLOOR_OPTION] == 45.0
    # what the live benches (rtstyle bench's live run, tools/bench_switch.py, bench_style_models.py) pass
    from rtstyle.jobs import live_backend_options

    kept = live_backend_options(BackendOptions(cache_dir="x", extra={"threads": 1}))
    assert kept.extra == {"threads": 1, P.FLOOR_OPTION: P.LIVE_FLOOR_DB} and kept.cache_dir == "x"

"""The torch-free start-up path (rtstyle/fastpath.py): same answer as the normal path, torch never
imported, taken only for a plain request whose engine and record are cached."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

from rtstyle.fastpath import FastRequest, lookup, plain_request  # noqa: E402
from rtstyle.image import read_image  # noqa: E402
from rtstyle.jobs import StylizerSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "media" / "photos" / "content" / "lomiri_Dragonfly_by_Bolly.jpg"  # 1024x768
WEIGHTS = REPO.parent / "shared" / "weights"
MODEL = "johnson.starry_night_lite"

pytestmark = pytest.mark.skipif(not PHOTO.is_file(), reason="needs ../shared/media")

# runs the command in a fresh interpreter and says whether torch got imported
_PROBE = ("import sys\nfrom rtstyle.cli import main\nrc = main(sys.argv[1:])\n"
          "print('TORCH_IMPORTED', 'torch' in sys.modules)\nsys.exit(rc)\n")


def _run(args: list[str], engines: Path, **env: str) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "RTSTYLE_ENGINES": str(engines), "RTSTYLE_WEIGHTS": str(WEIGHTS), **env}
    if "RTSTYLE_NO_FASTPATH" not in env:
        e.pop("RTSTYLE_NO_FASTPATH", None)
    return subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=REPO, env=e, capture_output=True, text=True,
                          timeout=600)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An engine cache after one normal run of the plain request (fp32: no precision measurement), and
    that run's output."""
    d = tmp_path_factory.mktemp("fastpath")
    engines, normal = d / "engines", d / "normal.png"
    r = _run(["-q", "stylize", str(PHOTO), "-o", str(normal), "--precision", "fp32"], engines)
    assert r.returncode == 0, r.stderr
    assert "TORCH_IMPORTED True" in r.stdout  # no record yet: the normal path ran
    assert list((engines / "fastpath").glob(f"{MODEL}-*.json")), "the normal run wrote no record"
    return engines, normal


def test_fast_path_gives_the_normal_answer_without_torch(cached: tuple[Path, Path], tmp_path: Path) -> None:
    engines, normal = cached
    fast = tmp_path / "fast.png"
    r = _run(["stylize", str(PHOTO), "-o", str(fast), "--precision", "fp32"], engines)
    assert r.returncode == 0, r.stderr
    assert "TORCH_IMPORTED False" in r.stdout
    assert f"wrote 1 image to {fast}" in r.stdout
    a, b = read_image(fast), read_image(normal)
    assert a.shape == b.shape == (768, 1024, 3)
    assert _psnr(a, b) >= 40.0
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # measured: identical here


def test_switch_and_options_that_need_torch_take_the_normal_path(cached: tuple[Path, Path], tmp_path: Path) -> None:
    engines, _ = cached
    off = _run(["-q", "stylize", str(PHOTO), "-o", str(tmp_path / "a.png"), "--precision", "fp32"], engines,
               RTSTYLE_NO_FASTPATH="1")
    assert off.returncode == 0, off.stderr
    assert "TORCH_IMPORTED True" in off.stdout
    sized = _run(["-q", "stylize", str(PHOTO), "-o", str(tmp_path / "b.png"), "--precision", "fp32", "--size", "256"],
                 engines)
    assert sized.returncode == 0, sized.stderr
    assert "TORCH_IMPORTED True" in sized.stdout
    assert read_image(tmp_path / "b.png").shape == (768, 1024, 3)
    odd = tmp_path / "odd.png"  # 1023x766: needs padding to the size multiple, which only the normal path does
    cv2 = pytest.importorskip("cv2")
    assert cv2.imwrite(str(odd), cv2.imread(str(PHOTO))[:766, :1023])
    padded = _run(["-q", "stylize", str(odd), "-o", str(tmp_path / "c.png"), "--precision", "fp32"], engines)
    assert padded.returncode == 0, padded.stderr
    assert "TORCH_IMPORTED True" in padded.stdout
    assert read_image(tmp_path / "c.png").shape == (766, 1023, 3)


def test_existing_output_is_refused_and_kept(cached: tuple[Path, Path], tmp_path: Path) -> None:
    engines, _ = cached
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    r = _run(["stylize", str(PHOTO), "-o", str(out), "--precision", "fp32"], engines)
    assert r.returncode == 1
    assert "exists; pass -y/--overwrite" in r.stderr
    assert out.read_bytes() == b"precious"
    r = _run(["-q", "stylize", str(PHOTO), "-o", str(out), "--precision", "fp32", "-y"], engines)
    assert r.returncode == 0 and "TORCH_IMPORTED False" in r.stdout
    assert read_image(out).shape == (768, 1024, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_record_is_found_only_with_every_entry_it_rests_on(cached: tuple[Path, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    engines, _ = cached
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(WEIGHTS))
    req = FastRequest(MODEL, "auto", "auto", "fp32")
    assert lookup(req, engines) is not None
    assert lookup(FastRequest(MODEL, "auto", "auto", "bf16"), engines) is None  # another precision: not recorded
    assert lookup(FastRequest("johnson.wave_lite", "auto", "auto", "fp32"), engines) is None
    assert lookup(req, tmp_path / "empty") is None
    for entry in json.loads(next((engines / "fastpath").glob(f"{MODEL}-*.json")).read_text())["entries"]:
        copy = tmp_path / entry.replace("/", "_")
        shutil.copytree(engines, copy)
        shutil.rmtree(copy / entry)  # the IR, or the baked one: gone
        assert lookup(req, copy) is None, entry


def test_plain_request_only_for_plain_settings(tmp_path: Path) -> None:
    photo, out = str(PHOTO), str(tmp_path / "o.jpg")
    assert plain_request(StylizerSettings(), photo, out) == FastRequest(MODEL, "auto", "auto", "auto")
    assert plain_request(StylizerSettings(backend="openvino", device="cpu", precision="int8"), photo, out) is not None
    needs_torch = [dict(style=(photo,)), dict(size=256), dict(scale=0.5), dict(temporal=0.8), dict(alpha=0.5),
                   dict(color="luminance"), dict(mask=photo), dict(style_vector="3"), dict(crossfade=5),
                   dict(backend="eager"), dict(backend="onnx"), dict(device="cuda"), dict(model=photo),
                   dict(model="johnson:x.pth"), dict(style_encoder="int8")]
    for kw in needs_torch:
        assert plain_request(StylizerSettings(**kw), photo, out) is None, kw
    assert plain_request(StylizerSettings(), photo, out, swap="5s=johnson.wave_lite") is None
    assert plain_request(StylizerSettings(), photo, out, report=tmp_path / "r.json") is None
    assert plain_request(StylizerSettings(), photo, str(tmp_path / "o.mp4")) is None
    assert plain_request(StylizerSettings(), photo, str(tmp_path) + "/") is None
    assert plain_request(StylizerSettings(), str(tmp_path / "missing.jpg"), out) is None
    assert plain_request(StylizerSettings(), str(tmp_path / "*.jpg"), out) is None

"""`rtstyle export` and `--style-vector` through main([...]): engines built, cached and reused, and the
one-line errors."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rtstyle.cli import main

pytest.importorskip("onnxruntime")


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one error line, got {err}"
    assert err[0].startswith("rtstyle: error:") and "Traceback" not in err[0]
    return err[0]


def _engines(out: str) -> list[tuple[Path, str]]:
    return [(Path(m.group(1)), m.group(2)) for m in re.finditer(r"^engine: (\S+) \((.*)\)$", out, re.M)]


def test_export_onnx_builds_then_reuses(tiny_johnson: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxscript")
    argv = ["-q", "export", "-m", str(tiny_johnson), "-b", "onnx", "--size", "64x48", "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (path, how), = _engines(out)
    assert how.startswith("built in") and path.is_dir() and path.is_relative_to(tmp_path)
    assert (path / "model.onnx").is_file() and (path / "manifest.json").is_file()
    assert re.search(r"^export: .* ready in [\d.]+ s", out, re.M)
    stamp = (path / "manifest.json").stat().st_mtime_ns
    assert main(argv) == 0
    (again, how2), = _engines(capsys.readouterr().out)
    assert again == path and how2 == "cached, reused"
    assert (path / "manifest.json").stat().st_mtime_ns == stamp


def test_export_tensorrt_unavailable_is_one_error_line(tiny_johnson: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    import torch

    if importlib.util.find_spec("torch_tensorrt") is not None and torch.cuda.is_available():
        pytest.skip("TensorRT is available here")
    rc = main(["-q", "export", "-m", str(tiny_johnson), "-b", "tensorrt", "--size", "64x48",
               "--cache-dir", str(tmp_path)])
    assert rc == 1
    assert "TensorRT backend needs torch-tensorrt" in _one_error_line(capsys)
    assert not any(tmp_path.iterdir())  # failed before building anything


@pytest.mark.parametrize("args, match", [
    (["--size", "64"], "--size must be WxH"),
    (["--size", "64x48", "--min-size", "128x96"], "--min-size 128x96 exceeds --size 64x48"),
    (["--size", "64x48", "--max-size", "32x24"], "--max-size 32x24 is below --size 64x48"),
])
def test_export_bad_sizes(tiny_johnson: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                          match: str) -> None:
    rc = main(["-q", "export", "-m", str(tiny_johnson), "-b", "onnx", "--cache-dir", str(tmp_path), *args])
    assert rc == 1 and match in _one_error_line(capsys)


@pytest.fixture
def onnx_weights(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = shared_weights / "onnx" / "multistyle26.onnx"
    if not p.is_file():
        pytest.skip(f"needs {p}")
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared_weights))
    return p


def test_export_foreign_model(onnx_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["-q", "export", "-m", "onnx.multistyle26", "--size", "64x48", "--cache-dir", str(tmp_path)]
    assert main([*base, "-b", "onnx"]) == 0
    (path, how), = _engines(capsys.readouterr().out)
    assert path == onnx_weights and "nothing to build" in how  # run from its own file
    pytest.importorskip("openvino")
    assert main([*base, "-b", "openvino"]) == 0
    (ir, how), = _engines(capsys.readouterr().out)
    assert how.startswith("built in") and (ir / "model.xml").is_file() and (ir / "model.bin").is_file()
    assert main([*base, "-b", "openvino"]) == 0
    assert _engines(capsys.readouterr().out) == [(ir, "cached, reused")]


def test_stylize_with_style_vector(onnx_weights: Path, content_photo: np.ndarray, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    outs = []
    for i, vec in enumerate(("3", "3:0.5,7:0.5")):
        dst = tmp_path / f"out{i}.png"
        assert main(["-q", "stylize", str(src), "-o", str(dst), "-m", "onnx.multistyle26", "-b", "onnx",
                     "--style-vector", vec]) == 0
        outs.append(cv2.imread(str(dst)).astype(np.float64))
        assert outs[-1].shape == content_photo.shape
    assert np.abs(outs[0] - outs[1]).mean() > 5
    capsys.readouterr()
    rc = main(["-q", "stylize", str(src), "-o", str(tmp_path / "bad.png"), "-m", "onnx.multistyle26", "-b", "onnx",
               "--style-vector", "3:0.5,40:0.5"])
    assert rc == 1 and "style index 40 out of range 0..25" in _one_error_line(capsys)


def test_style_vector_on_a_model_without_one(tiny_johnson: Path, content_photo: np.ndarray, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    rc = main(["-q", "stylize", str(src), "-o", str(tmp_path / "o.png"), "-m", str(tiny_johnson), "-b", "eager",
               "--style-vector", "1"])
    assert rc == 1 and "takes no style vector" in _one_error_line(capsys)

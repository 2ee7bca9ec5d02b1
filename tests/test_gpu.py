"""The staged CUDA path on real streams and events, and ``--backend auto`` on CUDA.

The path's frame logic and ordering are tested on the CPU in tests/test_contract.py (the same code
with a stand-in scheduler); the tests here need a CUDA GPU and skip cleanly without one, except
the backend choice, which is tested with the availability checks faked.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.frame import Frame
from rtstyle.stylizer import Stylizer



def _frames(photo: np.ndarray, n: int) -> list[Frame]:
    return [Frame(np.ascontiguousarray(np.roll(photo, 5 * i, 1)), i) for i in range(n)]


def _staged(st: Stylizer, frames: list[Frame], depth: int = 2) -> list[Frame]:
    from rtstyle.gpu import StagedStylizer

    staged = StagedStylizer(st, depth=depth)
    return [r for f in frames if (r := staged.push(f)) is not None] + staged.flush()


def _close(a: np.ndarray, b: np.ndarray, mean: float = 1.0) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(int) - b.astype(int)).mean()) < mean


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_double_buffer_matches_cpu_and_keeps_order(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    cpu = Stylizer(str(tiny_johnson))
    gpu = Stylizer(str(tiny_johnson), device="cuda", precision="fp32")
    frames = _frames(content_photo, 7)
    out = _staged(gpu, frames)
    assert [f.index for f in out] == list(range(7))
    for f, o in zip(frames, out):
        assert _close(o.image, cpu(f).image)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bgr_crossfade_and_internal_size_on_cuda(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    from rtstyle.models import create_model
    from rtstyle.models.johnson import TransformerNet

    def bgr() -> torch.nn.Module:
        net = create_model(str(tiny_johnson))
        assert isinstance(net, TransformerNet)
        net.spec = replace(net.spec, color_order="BGR", name="johnson.tiny_bgr")
        return net

    frames = _frames(content_photo, 6)
    outs = []
    for device in ("cpu", "cuda"):
        st = Stylizer(str(tiny_johnson), device=device, precision="fp32", size=64)
        st.activate(st.prepare(bgr()), crossfade=3)
        outs.append([st(f).image for f in frames] if device == "cpu" else [f.image for f in _staged(st, frames)])
    for a, b in zip(*outs):
        assert _close(a, b, mean=2.0)  # resize filters differ slightly between OpenCV and torch


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_frame_size_change_and_swap_on_cuda(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    gpu = Stylizer(str(tiny_johnson), device="cuda", precision="fp32")
    frames = _frames(content_photo, 3) + [Frame(np.ascontiguousarray(content_photo[:60, :80]), 3 + i) for i in range(3)]
    out = _staged(gpu, frames)
    assert [f.index for f in out] == list(range(6))
    assert [o.image.shape for o in out] == [f.image.shape for f in frames]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pipeline_uses_gpu_path(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    from rtstyle.io import NullSink
    from rtstyle.io.base import Source, SourceInfo
    from rtstyle.pipeline import Pipeline

    class Ten(Source):
        info = SourceInfo(width=content_photo.shape[1], height=content_photo.shape[0], fps=25.0)
        n = 0

        def read(self) -> Frame | None:
            self.n += 1
            return Frame(content_photo, self.n - 1) if self.n <= 10 else None

        def close(self) -> None:
            pass

    sink = NullSink()
    Pipeline(Ten(), Stylizer(str(tiny_johnson), device="cuda"), [sink]).run()
    assert sink.count == 10


def test_cuda_auto_backend_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """tensorrt when torch-tensorrt imports, else compiled when Triton does, else eager."""
    from rtstyle import gpu
    from rtstyle.backends import BackendUnavailableError
    from rtstyle.backends.compiled import CompiledBackend
    from rtstyle.backends.tensorrt import TensorRTBackend

    def missing(self: object) -> None:
        raise BackendUnavailableError("not here")

    def present(self: object) -> None:
        return None

    for trt, compiled, want in ((present, present, "tensorrt"), (missing, present, "compiled"),
                                (missing, missing, "eager")):
        monkeypatch.setattr(TensorRTBackend, "check_available", trt)
        monkeypatch.setattr(CompiledBackend, "check_available", compiled)
        assert gpu.cuda_auto_backend("cuda") == want


def test_bench_live_run_picks_the_backend_auto_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live benchmark's backend on CUDA is :func:`cuda_auto_backend`'s; on the CPU, resolve_backend's."""
    from rtstyle import bench, gpu, stylizer
    from rtstyle.backends import resolve_backend

    assert bench.auto_backend("cpu") == resolve_backend("auto", "cpu")
    monkeypatch.setattr(stylizer, "resolve_device", lambda d: torch.device("cuda", 0))
    monkeypatch.setattr(gpu, "cuda_auto_backend", lambda d: f"compiled on {d}")
    assert bench.auto_backend("auto") == "compiled on cuda:0"


def test_device_auto_resolves_to_what_is_there() -> None:
    from rtstyle.stylizer import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.slow
def test_acceptance_script_runs_on_cpu(tmp_path: Path) -> None:
    """tools/gpu_acceptance.py --device cpu --quick: every listed family has a parity entry, and the
    ones that ran show the staged path identical to the Stylizer (the same ops on the CPU)."""
    import json
    import subprocess
    import sys

    from rtstyle.models import list_models

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "acc.json"
    proc = subprocess.run([sys.executable, str(repo / "tools" / "gpu_acceptance.py"), "--json", str(out),
                           "--device", "cpu", "--quick"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["device"] == "cpu"
    assert set(rep["parity"]) == {n.split(".", 1)[0] for n in list_models()}
    ran = {k: v for k, v in rep["parity"].items() if "psnr_db" in v}
    assert "johnson" in ran and "msgnet" in ran and "adain" in ran  # shipped weights: always run
    for family, entry in rep["parity"].items():
        assert entry["model"] and ("psnr_db" in entry or entry.get("skipped")), family
    assert all(v["psnr_db"] >= 99.0 for v in ran.values()), ran
    row = rep["speed"][0]
    assert row["infer_fps"] > 0 and row["e2e_fps"] > 0 and 0 < row["overlap"] < 5
    assert rep["live"]["frames_out"] >= 1 and rep["live"]["latency_ms_p95"] >= rep["live"]["latency_ms_p50"] > 0

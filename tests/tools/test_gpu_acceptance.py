"""tools/gpu_acceptance.py on the CPU: the live stage in-process (the full --quick run on CPU is the
slow tests/test_gpu.py::test_acceptance_script_runs_on_cpu)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_live_stage_on_cpu(tool, tmp_path: Path) -> None:
    out = tmp_path / "acc.json"
    assert tool("gpu_acceptance").main(["--json", str(out), "--device", "cpu", "--quick", "--stages", "live"]) == 0
    rep = json.loads(out.read_text())
    assert rep["device"] == "cpu"
    live = rep["live"]
    assert live["frames_out"] >= 1 and live["latency_ms_p95"] >= live["latency_ms_p50"] > 0


def test_sample_frames_come_from_the_bundled_clip(tool) -> None:
    frames = tool("gpu_acceptance").sample_frames(3, (64, 48), every=5)
    assert len(frames) == 3 and all(f.shape == (48, 64, 3) for f in frames)
    assert frames[0].std() > 5 and not all((f == frames[0]).all() for f in frames[1:])


def test_unknown_stage(tool, tmp_path: Path) -> None:
    assert tool("gpu_acceptance").main(["--json", str(tmp_path / "a.json"), "--device", "cpu", "--stages", "nope"]) == 2

"""tools/bench_amp.py: one timed training step per mixed-precision plan (needs the VGG16; four
plans with emulated bf16 on most CPUs: slow)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_run(tool, tmp_path: Path, vgg16_path: Path) -> None:
    out = tmp_path / "amp.json"
    tool("bench_amp").main(["--width", "4", "--batch", "1", "--size", "32", "--steps", "1", "--vgg", str(vgg16_path),
                            "--json", str(out)])
    rep = json.loads(out.read_text())
    res = rep["results"]
    assert set(res) == {"fp32 NCHW", "fp32 channels-last", "bf16 NCHW", "bf16 channels-last"}
    assert res["fp32 NCHW"]["vs_fp32"] == 1.0
    assert all(len(r["steps_s"]) == 1 and r["step_s_median"] > 0 for r in res.values())
    assert rep["auto"]["amp"] in ("fp32", "bf16", "fp16")

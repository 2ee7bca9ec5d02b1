"""tools/bench_backends.py: a small random TransformerNet on eager and ONNX Runtime (an ONNX export and
the matmul peak measurement: slow)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_run(tool, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "b.json"
    assert tool("bench_backends").main(["--size", "64x48", "--width", "4", "--n-res", "1", "--warmup", "1",
                                        "--runs", "2", "--backends", "eager:fp32,onnx:fp32",
                                        "--cache-dir", str(tmp_path / "engines"), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    rows = {r["backend"]: r for r in rep["results"]}
    assert set(rows) == {"eager", "onnx"} and "error" not in rows["onnx"]
    assert rows["eager"]["speedup_vs_eager_fp32"] == pytest.approx(1.0)
    assert rows["onnx"]["rel_err_vs_eager_fp32"] < 1e-3  # the same net
    assert rep["gmac_per_frame"] > 0

"""tools/eval_temporal.py: the synthetic camera-motion case with a small checkpoint the tests make."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_synthetic_case(tool, tmp_path: Path, shared: Path, vgg16_path: Path, tiny_johnson: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    out = tmp_path / "t.json"
    assert tool("eval_temporal").main(["--model", str(tiny_johnson), "--cases", "synthetic", "--no-styleswap",
                                       "--frames", "4", "--loss-frames", "2", "--max-size", "96x72",
                                       "--json", str(out)]) in (0, None)
    rep = json.loads(out.read_text())
    runs = rep["runs"]
    assert list(runs) == [f"synthetic/{tiny_johnson.stem}"]
    assert rep["rows"] and all(r["case"] == "synthetic" for r in rep["rows"])

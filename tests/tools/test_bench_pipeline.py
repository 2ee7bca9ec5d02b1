"""tools/bench_pipeline.py: the naive loop and file mode on a few frames of the bundled clip."""
from __future__ import annotations

import json
from pathlib import Path


def test_small_run(tool, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    tool("bench_pipeline").main(["--frames", "4", "--size", "64x48", "--backends", "eager", "--json", str(out)])
    rep = json.loads(out.read_text())
    assert rep["machine"]["python"]
    text = json.dumps(rep)
    assert "naive" in text and "eager" in text

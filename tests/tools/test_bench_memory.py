"""tools/bench_memory.py: RSS samples over a short file-mode run."""
from __future__ import annotations

import json
from pathlib import Path


def test_small_run(tool, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    tool("bench_memory").main(["--frames", "24", "--size", "32", "--every", "6", "--json", str(out)])
    rep = json.loads(out.read_text())
    assert rep["frames"] == 24
    assert [i for i, _ in rep["samples"]] == [0, 6, 12, 18]
    assert all(50 < mb < 20000 for _, mb in rep["samples"])  # a real RSS reading in MB
    assert rep["growth_mb"] == rep["rss_last_quarter_mb"] - rep["rss_first_quarter_mb"]

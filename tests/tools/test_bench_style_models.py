"""tools/bench_style_models.py: per-frame time of a shipped model on a photo the test makes."""
from __future__ import annotations

import json
from pathlib import Path


def test_small_run(tool, tmp_path: Path, photo_files) -> None:
    (photo,) = photo_files(1)
    out = tmp_path / "s.json"
    tool("bench_style_models").main(["--model", "johnson.wave_lite", "--backends", "eager", "--sizes", "64x48,32x32",
                                     "--photo", str(photo), "--runs", "2", "--json", str(out)])
    rep = json.loads(out.read_text())
    assert [r["size"] for r in rep["rows"]] == ["64x48", "32x32"]
    assert all(r["median_ms"] > 0 and r["runner"] for r in rep["rows"])

"""tools/bench_ray.py: one process vs --ray on a few frames of the bundled clip (starts Ray: slow)."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_run(tool, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "ray.json"
    with resources.as_file(resources.files("rtstyle.assets").joinpath("sample.mp4")) as clip:
        tool("bench_ray").main(["--clip", str(clip), "--backend", "eager", "--size", "64", "--chunk-seconds", "1",
                                "--json", str(out)])
    rep = json.loads(out.read_text())
    assert rep["single"]["fps"] > 0 and rep["ray"]["fps"] > 0
    assert rep["ray"]["chunks"] >= 2 and len(rep["ray"]["chunk_wall_s"]) == rep["ray"]["chunks"]

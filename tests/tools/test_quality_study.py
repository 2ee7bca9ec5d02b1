"""tools/quality_study.py: the style metrics of one arbitrary-style model on made-up inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_small_run(tool, tmp_path: Path, shared: Path, vgg16_path: Path, photo_files,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    photos = photo_files(1, (96, 64))
    style = shared / "media" / "styles" / "mondrian.jpg"
    out = tmp_path / "q"
    assert tool("quality_study").main(["--contents", *map(str, photos), "--styles", str(style), "--model", "adain.vgg16",
                                       "--gatys-steps", "0", "--size", "64", "--out", str(out), "--cell", "64",
                                       "--quiet"]) in (0, None)
    rep = json.loads((out / "report.json").read_text())
    text = json.dumps(rep)
    assert "adain.vgg16" in text and "identity" in text and "style_meanstd" in text
    assert (out / "grid.jpg").is_file()

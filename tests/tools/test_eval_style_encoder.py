"""tools/eval_style_encoder.py: the int8 vs fp32 MetaNet style encoder (builds an int8 model: slow)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_run(tool, tmp_path: Path, shared: Path, vgg16_path: Path, photo_files,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    styles = [shared / "media" / "styles" / f"{n}.jpg" for n in ("wave", "mondrian", "udnie")]
    photos = photo_files(1, (96, 64))
    out = tmp_path / "e.json"
    assert tool("eval_style_encoder").main(["--styles", *map(str, styles), "--contents", *map(str, photos),
                                            "--content-side", "64", "--runs", "1", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    s = rep["summary"]
    assert len(rep["rows"]) == 3 and s["int8_differs_from_fp32"] is True
    # int8 moves a painting's features far less than the distance between two paintings
    assert s["feature_distance_int8_vs_fp32_median"] < s["feature_distance_between_paintings_min"]
    assert s["own_painting_nearest"] == 3

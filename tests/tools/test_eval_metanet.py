"""tools/eval_metanet.py: style identification of the shipped meta network, with a grid."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def test_small_run(tool, tmp_path: Path, shared: Path, vgg16_path: Path, photo_files,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    styles = [shared / "media" / "styles" / f"{n}.jpg" for n in ("wave", "mondrian")]
    photos = photo_files(1, (128, 96))
    out, grid = tmp_path / "m.json", tmp_path / "grid.jpg"
    assert tool("eval_metanet").main(["--model", "metanet.lite", "--styles", *map(str, styles),
                                      "--contents", *map(str, photos), "--size", "96", "--vgg", str(vgg16_path),
                                      "--grid", str(grid), "--cell", "64", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["styles"] == ["wave", "mondrian"] and rep["step"] > 0
    loss = np.asarray(rep["style_loss"])
    assert loss.shape == (2, 2) and (loss > 0).all()
    assert rep["rank_of_own_style"] == [int((loss[i] < loss[i, i]).sum()) + 1 for i in range(2)]
    # the two paintings' nets differ: their outputs do not score alike
    assert not np.allclose(loss[0], loss[1], rtol=0.05)
    img = cv2.imread(str(grid))
    assert img is not None and img.shape[1] == 2 * (64 + 8)  # style column + one photo, 4 px padding

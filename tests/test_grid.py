"""rtstyle.grid and `rtstyle grid`: the before/after grids of the README and the notes."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtstyle.cli import main
from rtstyle.grid import _fit, make_grid

PAD = 4


def test_grid_geometry_with_and_without_a_style_column(content_photo: np.ndarray) -> None:
    a = content_photo  # 160x120
    b = np.ascontiguousarray(content_photo[::-1])
    rows = [("one", [a, b]), ("two", [b, a])]
    plain = make_grid([a, b], rows, cell_width=80)
    assert plain.shape == (3 * (60 + 2 * PAD), 2 * (80 + 2 * PAD), 3)
    tall = np.zeros((200, 50, 3), np.uint8)  # a portrait painting: letterboxed, not stretched
    grid = make_grid([a, b], rows, cell_width=80, styles=[tall, None])
    assert grid.shape == (3 * (60 + 2 * PAD), 3 * (80 + 2 * PAD), 3)
    first = grid[60 + 3 * PAD: 2 * 60 + 3 * PAD, PAD: 80 + PAD]  # row "one", style column
    dark = first.max(axis=2) < 20
    assert 0.15 < dark.mean() < 0.3  # a 15x60 black strip in an 80x60 white cell
    assert (grid[2 * 60 + 5 * PAD:, PAD: 80 + PAD] == 255).all()  # row "two" has no style image
    with pytest.raises(ValueError, match="style images for"):
        make_grid([a, b], rows, styles=[tall])


def test_fit_keeps_the_aspect_ratio() -> None:
    img = np.zeros((100, 300, 3), np.uint8)
    out = _fit(img, 60, 60)
    assert out.shape == (60, 60, 3)
    assert (out[:, :, 0] < 128).sum() == pytest.approx(60 * 20, abs=60)


def test_grid_cli_shows_the_bank_paintings(tmp_path: Path, shared: Path, content_photo: np.ndarray) -> None:
    """`--all-styles --style-images DIR`: each bank row starts with its painting (found by style name);
    a style without a file in DIR gets a blank cell."""
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    paintings = tmp_path / "paintings"
    paintings.mkdir()
    for name in ("the_scream", "starry_night"):
        shutil.copy(shared / "media" / "styles" / f"{name}.jpg", paintings / f"{name}.jpg")
    out = tmp_path / "grid.jpg"
    assert main(["-q", "grid", str(photo), "-o", str(out), "-m", "msgnet.lite", "--all-styles",
                 "--style-images", str(paintings), "--max-side", "128", "--cell-width", "64"]) == 0
    grid = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB).astype(float)
    h, w = content_photo.shape[:2]
    ch = round(64 * (h * 128 / max(h, w)) // 4 * 4 / (w * 128 / max(h, w) // 4 * 4))
    step = ch + 2 * PAD
    from rtstyle.models import create_model

    styles = create_model("msgnet.lite").spec.styles
    assert grid.shape[0] == step * (len(styles) + 1) and grid.shape[1] == 2 * (64 + 2 * PAD)
    for r, name in enumerate(styles, start=1):
        cell = grid[r * step + PAD: r * step + PAD + ch, PAD: PAD + 64]
        if name in ("the_scream", "starry_night"):
            ref = _fit(cv2.cvtColor(cv2.imread(str(paintings / f"{name}.jpg")), cv2.COLOR_BGR2RGB), 64, ch)
            assert np.abs(cell - ref).mean() < 12, name  # the painting (JPEG-compressed once more)
        else:
            assert cell.min() > 240, name  # blank
    assert main(["grid", str(photo), "-o", str(out), "--all-styles", "-m", "msgnet.lite", "--style-images",
                 str(tmp_path / "none")]) != 0

"""rtstyle.training.data: image loading."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rtstyle.image import read_image
from rtstyle.training.data import fit_image


@pytest.mark.parametrize("max_side", [384, 512, 700])
def test_read_image_shrinks_a_large_jpeg_like_a_full_decode(shared: Path, max_side: int) -> None:
    """A JPEG decoded at half scale (when that still covers ``max_side``) gives the image a full decode
    and an area resize give, to within JPEG/resampling noise; below half scale it decodes in full."""
    path = shared / "media" / "styles" / "udnie.jpg"  # 1024 px
    full = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    ref = fit_image(full, max_side=max_side)
    got = read_image(path, max_side=max_side)
    assert got.shape == ref.shape and got.dtype == np.uint8
    diff = got.astype(float) - ref.astype(float)
    psnr = 10 * np.log10(255.0**2 / (np.mean(diff**2) + 1e-9))
    assert psnr > 32 and np.abs(diff.mean(axis=(0, 1))).max() < 0.5  # same picture, same colours


def test_read_image_png_and_short_side_are_decoded_in_full(tmp_path: Path, content_photo: np.ndarray) -> None:
    p = tmp_path / "x.png"
    cv2.imwrite(str(p), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image(p, max_side=100), fit_image(content_photo, max_side=100))
    np.testing.assert_array_equal(read_image(p), content_photo)


def test_split_held_out_drops_renamed_copies_of_a_held_out_painting(shared: Path, tmp_path: Path) -> None:
    """A held-out painting stays out of training under another name too, resized or re-encoded
    (``msgnet.lite``'s first bank held the matrix's Hiroshige as ``hiroshige_mackerel``); other
    paintings, even the nearest one, stay in. (A crop is not caught: thumbnails do not match it.)"""
    from rtstyle.eval.arbitrary import HELD_OUT_STYLES
    from rtstyle.training.data import split_held_out
    from rtstyle.training.linear import training_styles

    pd = shared / "media" / "styles" / "public_domain"
    held_src = pd / f"{HELD_OUT_STYLES[0]}.jpg"
    img = cv2.imread(str(held_src))
    cv2.imwrite(str(tmp_path / f"{HELD_OUT_STYLES[0]}.jpg"), img)
    h, w = img.shape[:2]
    cv2.imwrite(str(tmp_path / "hiroshige_mackerel.png"), cv2.resize(img, (w * 2 // 3, h * 2 // 3)))  # renamed, smaller
    cv2.imwrite(str(tmp_path / "fish_q60.jpg"), cv2.resize(img, (w * 9 // 10, h)), [cv2.IMWRITE_JPEG_QUALITY, 60])
    others = ["Katsushika_Hokusai_Kazusa_sea_Route_1830", "Giovanni_Bellini_La_Pala_di_Pesaro_1475_85"]
    for stem in others:  # the Bellini is the held-out Hiroshige's nearest other painting
        cv2.imwrite(str(tmp_path / f"{stem}.jpg"), cv2.imread(str(pd / f"{stem}.jpg")))
    files = sorted(tmp_path.iterdir())
    train, held = split_held_out(files, HELD_OUT_STYLES)
    assert [p.stem for p in held] == [HELD_OUT_STYLES[0]]
    assert sorted(p.stem for p in train) == sorted(others)
    assert [p.stem for p in training_styles(tmp_path, HELD_OUT_STYLES)] == sorted(others)
    train_all, held_none = split_held_out(files, ())  # nothing held out: nothing dropped
    assert len(train_all) == len(files) and held_none == []

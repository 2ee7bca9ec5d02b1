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

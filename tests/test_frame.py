"""Frame: the unit of work, checked when it is made; copies keep metadata apart."""
from __future__ import annotations

import numpy as np
import pytest

from rtstyle.frame import Frame


@pytest.fixture
def image() -> np.ndarray:
    """A 48x64 RGB frame made here (gradients plus noise), so these tests need no ../shared."""
    y, x = np.mgrid[0:48, 0:64]
    noise = np.random.default_rng(0).integers(0, 32, (48, 64, 3))
    img = np.stack([x * 3, y * 4, (x + y) * 2], -1) + noise
    return np.ascontiguousarray(img.clip(0, 255).astype(np.uint8))


@pytest.mark.parametrize("bad", [
    np.zeros((4, 4), np.uint8),  # no channels
    np.zeros((4, 4, 4), np.uint8),  # RGBA
    np.zeros((4, 4, 3), np.float32),  # float
    [[[0, 0, 0]]],  # not an array
])
def test_bad_images_are_refused_saying_what_came(bad: object) -> None:
    with pytest.raises(ValueError, match="uint8 HxWx3") as ei:
        Frame(bad, 0)  # type: ignore[arg-type]
    assert type(bad).__name__ in str(ei.value)


def test_size_and_defaults_come_from_the_image(image: np.ndarray) -> None:
    f = Frame(image, 7, pts=0.25)
    assert (f.height, f.width) == image.shape[:2] and f.index == 7 and f.pts == 0.25
    assert f.pixel_format == "rgb24" and f.meta == {} and f.captured_at > 0


def test_with_image_keeps_the_timing_and_copies_the_metadata(image: np.ndarray) -> None:
    f = Frame(image, 3, pts=0.1)
    f.meta["style"] = "a"
    flipped = np.ascontiguousarray(image[::-1])
    g = f.with_image(flipped)
    assert g.image is flipped and f.image is image
    assert (g.index, g.pts, g.captured_at) == (f.index, f.pts, f.captured_at)
    g.meta["style"] = "b"
    assert f.meta == {"style": "a"} and g.meta == {"style": "b"}
    with pytest.raises(ValueError):
        f.with_image(image[..., :2])  # the copy is checked too

"""SyntheticSource: shape, motion, cost, real-time pacing and latest-wins."""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from rtstyle.io import SyntheticSource


def test_frames_shape_and_end() -> None:
    with SyntheticSource(320, 240, fps=30, frames=5, live=False) as src:
        assert (src.info.width, src.info.height, src.info.fps) == (320, 240, 30.0)
        assert src.info.frame_count == 5 and not src.info.live
        frames = list(src)
    assert [f.index for f in frames] == list(range(5))
    assert [f.pts for f in frames] == pytest.approx([i / 30 for i in range(5)])
    for f in frames:
        assert f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 and f.image.flags.c_contiguous


def test_motion_and_determinism() -> None:
    src = SyntheticSource(160, 120, live=False)
    a, b = src.read().image, src.read().image
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.mean() > 1.0  # the whole background moves, not just the counter
    assert (diff.max(axis=2) > 0).mean() > 0.3
    np.testing.assert_array_equal(src.render(1), b)
    assert not np.array_equal(src.render(100), src.render(101))


def test_cheap_enough() -> None:
    src = SyntheticSource(640, 480, live=False)
    src.render(0)
    times = []
    for i in range(40):
        t = time.perf_counter()
        src.render(i)
        times.append(time.perf_counter() - t)
    # < 2 ms on an idle core; allow for the busy test machine.
    assert statistics.median(times) < 0.006


def test_live_pacing_30fps() -> None:
    with SyntheticSource(160, 120, fps=30, live=True) as src:
        src.read()
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 1.0:
            src.read()
            n += 1
    assert 30 * 0.85 <= n <= 30 * 1.15


def test_live_latest_wins() -> None:
    with SyntheticSource(160, 120, fps=50, live=True) as src:
        seen = []
        for _ in range(6):
            seen.append(src.read().index)
            time.sleep(0.07)  # a consumer at ~14 fps
        assert all(b > a for a, b in zip(seen, seen[1:]))
        assert max(np.diff(seen)) > 1
        assert src.dropped > 0
        assert src.dropped == seen[-1] - (len(seen) - 1)


def test_live_frames_limit_ends() -> None:
    with SyntheticSource(64, 48, fps=200, frames=10, live=True) as src:
        frames = list(src)
    assert frames[-1].index <= 9 and src.read() is None


def test_a_photo_background_scrolls_by_the_known_step(content_photo: np.ndarray, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a photo as background every frame is a window of it moved by ``step`` per frame, so the
    motion is known exactly on a textured scene (the flicker measurements' live source)."""
    import cv2

    w, h = 160, 120
    src = SyntheticSource(w, h, live=False, background=content_photo)
    assert src.info.extra["pattern"] == "synthetic+image"
    dx, dy = src.step
    a, b = src.render(10), src.render(11)
    # away from the disc, square and counter, frame 11 is frame 10 moved left/up by the step
    same = np.abs(a[dy:, dx:].astype(int) - b[: h - dy, : w - dx].astype(int)).max(-1) == 0
    assert same.mean() > 0.7
    # textured, unlike the gradients: far more local detail
    grad = SyntheticSource(w, h, live=False).render(10)
    lap = lambda im: float(np.abs(cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())  # noqa: E731
    assert lap(a) > 3 * lap(grad)
    # a file works the same; a wrong array is refused
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), cv2.cvtColor(content_photo, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(SyntheticSource(w, h, live=False, background=path).render(10), a)
    with pytest.raises(ValueError, match="background"):
        SyntheticSource(w, h, background=np.zeros((10, 10), np.uint8))

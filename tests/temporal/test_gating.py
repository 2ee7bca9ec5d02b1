"""Confidence-gated carrying: the stabiliser takes the current frame where the carried one cannot be
trusted (fast motion, a stylisation that changed beyond the flow's error) and keeps it where it can."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rtstyle.temporal import FlowStabilizer, fb_residual, make_temporal, photometric_error
from rtstyle.temporal.stabilize import PRESETS


@pytest.fixture(scope="module")
def photo(shared: Path) -> np.ndarray:
    """A real photo, 480x240 RGB, wide enough to cut moving 160x120 windows from."""
    import cv2

    p = shared / "media" / "photos" / "content" / "palapeli_cincinnati-bridge.jpg"
    if not p.is_file():
        pytest.skip(f"needs {p}")
    img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(cv2.resize(img, (480, 240), interpolation=cv2.INTER_AREA))


def _stylize(frame: np.ndarray, seed: int) -> np.ndarray:
    """A flickering stand-in for a style model: a colour transform of the frame plus per-frame noise."""
    rng = np.random.default_rng(seed)
    y = 255.0 - frame.astype(np.float32) + rng.normal(0, 10, frame.shape)
    return np.clip(y, 0, 255).astype(np.uint8)


def _ungated() -> FlowStabilizer:
    return FlowStabilizer(0.8, replace(PRESETS["file"], gate=False))


def test_file_preset_is_gated() -> None:
    assert PRESETS["file"].gate and not PRESETS["live"].gate


def test_static_scene_keeps_the_carried_frame(photo: np.ndarray) -> None:
    frame = np.ascontiguousarray(photo[60:180, 160:320])
    ys = [_stylize(frame, s) for s in range(4)]
    stab = make_temporal(0.8, "file")
    outs = [stab.process(frame, y) for y in ys]
    assert stab.carried > 0.9
    # carried: the output follows the previous output, not this frame's noise
    d_prev = np.abs(outs[-1].astype(float) - outs[-2].astype(float)).mean()
    d_cur = np.abs(outs[-1].astype(float) - ys[-1].astype(float)).mean()
    assert d_prev < 0.5 * d_cur, (d_prev, d_cur)


def test_fast_motion_falls_back_to_the_current_frame(photo: np.ndarray) -> None:
    # a 64 px pan per frame on a 160 px wide frame: far beyond what the flow can be trusted with
    frames = [np.ascontiguousarray(photo[60:180, x:x + 160]) for x in (0, 64, 128, 192, 256)]
    ys = [_stylize(f, s) for s, f in enumerate(frames)]
    gated, plain = make_temporal(0.8, "file"), _ungated()
    out_g = [gated.process(f, y) for f, y in zip(frames, ys)]
    out_p = [plain.process(f, y) for f, y in zip(frames, ys)]
    assert gated.carried < 0.05, gated.carried
    dev_g = np.mean([np.abs(o.astype(float) - y.astype(float)).mean() for o, y in zip(out_g[1:], ys[1:])])
    dev_p = np.mean([np.abs(o.astype(float) - y.astype(float)).mean() for o, y in zip(out_p[1:], ys[1:])])
    assert dev_g < 1.0, dev_g  # the model's own frames (up to the detail pass, a no-op here)
    assert dev_p > 2 * dev_g  # without the gate, texture is dragged from the previous frames


def test_disagreement_beyond_the_flow_error_takes_the_current_frame(photo: np.ndarray) -> None:
    """A still scene whose stylisation changes in one region (an object the model now renders
    differently): that region comes from the current frame, the rest is carried."""
    frame = np.ascontiguousarray(photo[60:180, 160:320])
    y0 = _stylize(frame, 0)
    y1 = _stylize(frame, 1)
    # the model turns a dark region bright: a change far beyond its flicker and the flow's error
    y0[30:90, 40:120] = np.clip(y0[30:90, 40:120].astype(int) // 4, 0, 255).astype(np.uint8)
    y1[30:90, 40:120] = np.clip(190 + y1[30:90, 40:120].astype(int) // 4, 0, 255).astype(np.uint8)
    gated, plain = make_temporal(0.8, "file"), _ungated()
    for st in (gated, plain):
        st.process(frame, y0)
    out_g, out_p = gated.process(frame, y1), plain.process(frame, y1)
    region = (slice(38, 82), slice(48, 112))
    err_g = np.abs(out_g[region].astype(float) - y1[region].astype(float)).mean()
    err_p = np.abs(out_p[region].astype(float) - y1[region].astype(float)).mean()
    assert err_g < 8 and err_p > 40, (err_g, err_p)
    rest = (slice(100, 118), slice(0, 160))
    d_rest = np.abs(out_g[rest].astype(float) - y1[rest].astype(float)).mean()
    assert d_rest > 3  # elsewhere the carried frame is kept (it differs from the noisy current one)


def test_confidence_cues(photo: np.ndarray) -> None:
    frame = np.ascontiguousarray(photo[60:180, 160:320])
    y = frame.astype(np.float32)
    stab = make_temporal(0.8, "file")
    zero = np.zeros(frame.shape[:2] + (2,), np.float32)
    r2 = np.zeros(frame.shape[:2], np.float32)
    c = stab.confidence(frame, frame, zero, y, y, r2=r2)
    assert c.dtype == np.float32 and c.shape == frame.shape[:2] and c.min() > 0.99
    # residual, brightness and motion each bring it down to 0
    assert stab.confidence(frame, frame, zero, y, y, r2=np.full_like(r2, 25.0)).max() == 0.0
    assert stab.confidence(frame, np.clip(frame.astype(int) + 60, 0, 255).astype(np.uint8), zero, y, y,
                           r2=r2).mean() < 0.2
    fast = np.full_like(zero, 30.0)
    assert stab.confidence(frame, frame, fast, y, y, r2=r2).max() == 0.0


def test_fb_residual_and_photometric_error() -> None:
    f = np.zeros((20, 30, 2), np.float32)
    f[..., 0] = 3.0
    r2, scale2 = fb_residual(f, -f)
    np.testing.assert_allclose(r2, 0.0, atol=1e-6)
    np.testing.assert_allclose(scale2, 18.0, atol=1e-5)
    r2, _ = fb_residual(f, f)  # going 3 px right twice: 6 px from home
    np.testing.assert_allclose(r2[:, :20], 36.0, atol=1e-4)
    a = np.full((20, 30, 3), 100, np.uint8)
    np.testing.assert_allclose(photometric_error(a, a + 51, f), 0.2, atol=1e-6)

"""Flow-guided stabilisation: it reduces flicker, passes through at strength 0, resets cleanly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtstyle.temporal import FlowStabilizer, make_temporal, read_flo, warping_error
from rtstyle.temporal.stabilize import PRESETS


def _flicker(frames: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """A stand-in for unstable per-frame stylisation: a colour transform of the input plus
    per-frame noise and a per-frame colour shift (the two kinds of flicker feed-forward nets show)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        y = 255.0 - f.astype(np.float32)
        y += rng.normal(0, 12, f.shape) + rng.normal(0, 6, (1, 1, 3))
        out.append(np.clip(y, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def synthetic(shared: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from rtstyle.io.images import read_image

    d = shared / "media" / "flow" / "synthetic"
    frames = [read_image(d / f"frame_{t:04d}.png") for t in range(5)]
    flows = [read_flo(d / f"flow_{t:04d}_{t + 1:04d}.flo") for t in range(4)]
    return frames, flows


@pytest.mark.parametrize("preset", ["file", "live"])
def test_stabilisation_reduces_warping_error(synthetic: tuple[list[np.ndarray], list[np.ndarray]], preset: str) -> None:
    frames, flows = synthetic
    per_frame = _flicker(frames)
    stab = make_temporal(0.8, preset)
    out = [stab.process(f, y) for f, y in zip(frames, per_frame)]
    before = warping_error(per_frame, flows)
    after = warping_error(out, flows)
    assert after < 0.5 * before, (before, after)
    assert set(stab.timings) == {"flow", "warp", "mask", "blend", "total"}
    # Where nothing moves out of view the output stays close to the stylisation (no drift).
    diff = np.abs(out[-1].astype(float) - per_frame[-1].astype(float)).mean()
    assert diff < 20


def test_strength_zero_is_identity(synthetic: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    frames, _ = synthetic
    per_frame = _flicker(frames[:3])
    stab = make_temporal(0.0, "live")
    for f, y in zip(frames, per_frame):
        assert stab.process(f, y) is y


def test_first_frame_and_reset_pass_the_stylization_through() -> None:
    rng = np.random.default_rng(0)
    src = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)] * 3
    sty = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(3)]
    stab = FlowStabilizer(0.9, "live")
    np.testing.assert_array_equal(stab.process(src[0], sty[0]), sty[0])
    assert not np.array_equal(stab.process(src[1], sty[1]), sty[1])  # static scene: blended
    stab.reset()
    np.testing.assert_array_equal(stab.process(src[2], sty[2]), sty[2])
    # A new frame size also starts over.
    big_src, big_sty = np.zeros((40, 48, 3), np.uint8), np.full((40, 48, 3), 7, np.uint8)
    np.testing.assert_array_equal(stab.process(big_src, big_sty), big_sty)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="strength"):
        make_temporal(1.5, "file")
    with pytest.raises(ValueError, match="preset"):
        make_temporal(0.5, "fastest")
    with pytest.raises(TypeError, match="unknown stabiliser settings"):
        make_temporal(0.5, "file", color=1)
    assert make_temporal(0.5, "file", color_ema=0.7).config.color_ema == 0.7
    assert PRESETS["live"].flow_preset == "ultrafast" and PRESETS["file"].flow_preset == "medium"
    stab = make_temporal(0.5, "live")
    with pytest.raises(ValueError, match="stylized"):
        stab.process(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_color_smoothing_damps_global_flicker() -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(40, 200, (32, 32, 3)).astype(np.float32)
    src = [np.zeros((32, 32, 3), np.uint8)] * 6
    # Outputs whose brightness jumps +-20 every frame, in a region no flow can track (we
    # turn the flow blend off with strength ~0 and use the colour EMA alone).
    sty = [np.clip(base + (20 if t % 2 else -20), 0, 255).astype(np.uint8) for t in range(6)]
    stab = make_temporal(0.01, "live", color_ema=0.8)
    out = [stab.process(s, y) for s, y in zip(src, sty)]
    jumps_in = np.mean([abs(float(sty[t].mean()) - float(sty[t - 1].mean())) for t in range(1, 6)])
    jumps_out = np.mean([abs(float(out[t].mean()) - float(out[t - 1].mean())) for t in range(1, 6)])
    assert jumps_out < 0.5 * jumps_in


def test_stylizer_resets_the_filter_on_style_swap(tiny_johnson: Path) -> None:
    from rtstyle.stylizer import Stylizer

    stab = make_temporal(0.8, "live")
    st = Stylizer(str(tiny_johnson), temporal=stab, frame_size=(48, 32))
    try:
        img = np.full((32, 48, 3), 128, np.uint8)
        st.stylize(img)
        st.stylize(img)
        before = stab.resets
        st.set_style(str(tiny_johnson), wait=True)
        assert stab.resets == before + 1
        out = st.stylize(img)
        assert out.shape == img.shape
    finally:
        st.close()


def test_detail_restoration_keeps_texture_energy_without_building_it_up() -> None:
    from rtstyle.temporal.stabilize import restore_detail

    rng = np.random.default_rng(7)
    a = rng.uniform(0, 255, (48, 64, 3)).astype(np.float32)
    b = rng.uniform(0, 255, (48, 64, 3)).astype(np.float32)
    # Consistent inputs: nothing to restore, so the recursion cannot amplify contrast.
    np.testing.assert_allclose(restore_detail(a, a.copy(), 2.0), a, atol=1e-3)
    # Averaging two unrelated textures loses ~half the energy; restoration brings it back.
    blend = 0.5 * a + 0.5 * b
    restored = restore_detail(a, blend, 2.0)
    assert restored.std() > 1.3 * blend.std()
    assert abs(restored.std() - a.std()) < 0.15 * a.std()
    assert abs(float(restored.mean()) - float(blend.mean())) < 1.0


def test_smooth_matches_a_gaussian_blur() -> None:
    import cv2

    from rtstyle.temporal.stabilize import smooth

    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (120, 160, 3)).astype(np.float32), (0, 0), 1.0)
    for sigma in (2.0, 4.0, 8.0):  # below 3: the exact blur; above: computed at reduced resolution
        ref = cv2.GaussianBlur(img, (0, 0), sigma)
        got = smooth(img, sigma)
        inner = (slice(16, -16), slice(16, -16))  # borders differ by the padding rule
        err = np.abs(got[inner] - ref[inner]).mean() / (np.abs(img - img.mean()).mean())
        assert got.shape == img.shape and err < 0.15, (sigma, err)


def test_two_band_blend_carries_strokes_and_keeps_their_energy(synthetic: tuple[list[np.ndarray], list[np.ndarray]]) -> None:
    """Per-frame noise textures (strokes that do not line up from frame to frame): a whole-frame
    blend averages them away, the two-band blend carries one pattern along the flow."""
    from dataclasses import replace

    from rtstyle.temporal.stabilize import _blend

    frames, flows = synthetic
    per_frame = _flicker(frames, seed=5)
    # the blend itself, without the confidence gate (whose motion cue fades this 10 px/frame pan out
    # in part; see tests/temporal/test_gating.py)
    carry = make_temporal(0.8, "file", gate=False)
    assert carry.config.carry_sigma > 0 and carry.config.texture_strength == 0.99
    whole = FlowStabilizer(0.8, replace(PRESETS["file"], carry_sigma=0.0, texture_strength=None, detail_sigma=0.0,
                                        gate=False))
    out_c = [carry.process(f, y) for f, y in zip(frames, per_frame)]
    out_w = [whole.process(f, y) for f, y in zip(frames, per_frame)]
    before = warping_error(per_frame, flows)
    assert warping_error(out_c, flows) < 0.3 * before

    def texture(img: np.ndarray) -> float:
        import cv2

        f = img.astype(np.float32)
        return float((f - cv2.GaussianBlur(f, (0, 0), 2.0))[8:-8, 8:-8].std())

    # stroke energy: whole-frame blending loses much of it, carrying keeps it near one frame's
    assert texture(out_w[-1]) < 0.75 * texture(per_frame[-1])
    assert texture(out_c[-1]) > 0.85 * texture(per_frame[-1])
    # the in-place two-band form equals the direct formula
    rng = np.random.default_rng(1)
    y, w = (rng.uniform(0, 255, (32, 40, 3)).astype(np.float32) for _ in range(2))
    m = rng.uniform(0, 1, (32, 40)).astype(np.float32)
    cfg = replace(PRESETS["file"], carry_sigma=2.0, texture_strength=0.9)
    import cv2

    low_d = cv2.GaussianBlur(w - y, (0, 0), 2.0)
    direct = y + 0.9 * m[..., None] * ((w - y) - low_d) + 0.6 * m[..., None] * low_d
    np.testing.assert_allclose(_blend(y, w, m, 0.6, cfg), direct, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="texture_strength"):
        FlowStabilizer(0.8, replace(PRESETS["file"], texture_strength=1.5))
    with pytest.raises(ValueError, match="interpolation"):
        FlowStabilizer(0.8, replace(PRESETS["file"], interpolation="area"))

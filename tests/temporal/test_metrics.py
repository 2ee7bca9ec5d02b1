"""Flow I/O, warping, occlusion masks and the warping-error metric."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtstyle.temporal import (
    backward_warp,
    fb_consistency_mask,
    read_flo,
    style_loss,
    warping_error,
    write_flo,
)
from rtstyle.temporal.metrics import pair_warping_errors


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture (uint8): bilinear warping of it is accurate."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 4 + 1, w // 4 + 1, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def _translating(n: int, h: int, w: int, d: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """Crops of one big texture moving by ``d = (dx, dy)`` pixels per frame (camera pan)."""
    big = _texture(h + 8 * n, w + 8 * n, seed)
    dx, dy = d
    return [big[4 + t * dy: 4 + t * dy + h, 4 + t * dx: 4 + t * dx + w].copy() for t in range(n)]


def test_flo_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    flow = rng.normal(0, 5, (13, 17, 2)).astype(np.float32)
    p = write_flo(tmp_path / "a.flo", flow)
    assert p.stat().st_size == 12 + 13 * 17 * 2 * 4
    np.testing.assert_array_equal(read_flo(p), flow)


def test_flo_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.flo"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="magic"):
        read_flo(bad)
    good = write_flo(tmp_path / "t.flo", np.zeros((4, 5, 2), np.float32))
    (tmp_path / "short.flo").write_bytes(good.read_bytes()[:-8])
    with pytest.raises(ValueError, match="truncated"):
        read_flo(tmp_path / "short.flo")


def test_reads_real_sintel_flow(shared: Path) -> None:
    import cv2

    from rtstyle.io.images import read_image

    d = shared / "media" / "flow" / "sintel" / "easy"
    flow = read_flo(d / "gt" / "frame_0002.flo")
    assert flow.shape == (436, 1024, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    f2, f3 = read_image(d / "frame_0002.png"), read_image(d / "frame_0003.png")
    occ = cv2.imread(str(d / "gt" / "occlusions" / "frame_0002.png"), cv2.IMREAD_GRAYSCALE) > 0
    valid = ~occ
    # Frame 3 warped with the 2->3 flow predicts frame 2 far better than not warping at all.
    with_flow = warping_error([f2, f3], [flow], [valid])
    no_flow = warping_error([f2, f3], [np.zeros_like(flow)], [valid])
    assert with_flow < 0.3 * no_flow


def test_translation_consistent_output_scores_zero() -> None:
    frames = _translating(4, 48, 64, (3, 2))
    flows = [np.full((48, 64, 2), (-3.0, -2.0), np.float32)] * 3  # frame t-1 -> t
    # A "stylisation" that moves with the scene: a fixed colour transform of the input.
    consistent = [255 - f for f in frames]
    assert warping_error(consistent, flows) < 1e-10
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, f.shape, dtype=np.uint8) for f in frames]
    assert warping_error(noise, flows) > 0.2
    # The same with flow estimated from the input frames (DIS + forward-backward mask).
    assert warping_error(consistent, input_frames=frames) < 1e-3


def _occlusion_case() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A square moving 8 px right over a static background; returns frames, fw and bw flows."""
    h, w, x0, size, d = 40, 64, 20, 16, 8
    fw = np.zeros((h, w, 2), np.float32)
    bw = np.zeros((h, w, 2), np.float32)
    rows = slice(12, 12 + size)
    fw[rows, x0: x0 + size, 0] = d
    bw[rows, x0 + d: x0 + d + size, 0] = -d
    bg, obj = _texture(h, w, 1), _texture(h, w, 2)
    a = bg.copy()
    a[rows, x0: x0 + size] = obj[rows, x0: x0 + size]
    b = bg.copy()
    b[rows, x0 + d: x0 + d + size] = obj[rows, x0: x0 + size]
    return [a, b], fw, bw


def test_fb_mask_finds_the_occluded_strip() -> None:
    _, fw, bw = _occlusion_case()
    ok = fb_consistency_mask(fw, bw)
    expected = np.ones(ok.shape, bool)
    expected[12:28, 36:44] = False  # background right of the square gets covered in frame b
    np.testing.assert_array_equal(ok, expected)


def test_occlusion_masking_excludes_occluded_pixels() -> None:
    frames, fw, bw = _occlusion_case()
    # Everything moves consistently, so the only difference after warping is in the occluded strip.
    ok = fb_consistency_mask(fw, bw)
    pred = backward_warp(frames[1], fw)
    diff = np.abs(pred.astype(int) - frames[0].astype(int)).sum(-1) > 0
    assert diff.any() and not diff[ok].any()
    unmasked = warping_error(frames, [fw], [np.ones(fw.shape[:2], bool)])
    masked = warping_error(frames, [fw], [ok])
    assert unmasked > 1e-3
    assert masked < 1e-10


def test_argument_checks() -> None:
    f = [np.zeros((8, 8, 3), np.uint8)] * 3
    with pytest.raises(ValueError, match="at least 2"):
        warping_error(f[:1], [])
    with pytest.raises(ValueError, match="flows"):
        warping_error(f, [np.zeros((8, 8, 2), np.float32)])
    with pytest.raises(ValueError, match="flows or the input frames"):
        pair_warping_errors(f)


def test_style_loss_prefers_the_style(vgg16_path: Path, content_photo: np.ndarray) -> None:
    from rtstyle.temporal.metrics import STYLE_TAPS
    from rtstyle.nn import load_vgg16

    vgg = load_vgg16(vgg16_path, taps=STYLE_TAPS)
    style = content_photo[:64, :64]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, style.shape, dtype=np.uint8)
    same = style_loss([style], style, vgg=vgg, short_side=None, style_short_side=None)
    other = style_loss([noise], style, vgg=vgg, short_side=None, style_short_side=None)
    assert same < 1e-6 * max(other, 1.0) and other > 0


def test_style_taps_are_the_packages_style_layers() -> None:
    from rtstyle.nn.vgg import STYLE_LAYERS
    from rtstyle.temporal.metrics import STYLE_TAPS

    assert STYLE_TAPS == STYLE_LAYERS

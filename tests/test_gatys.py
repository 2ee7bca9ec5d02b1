"""rtstyle.gatys: optimisation-based reference (tiny images, few steps; needs the VGG16 weights)."""
from __future__ import annotations

import numpy as np
import pytest

from rtstyle.gatys import CONTENT_LAYER, STYLE_LAYERS, gatys, prepare_pair
from rtstyle.quality import QualityMeter
from rtstyle.weights import WeightNotFoundError


@pytest.fixture(scope="module")
def meter() -> QualityMeter:
    try:
        from rtstyle.nn import load_vgg16

        vgg = load_vgg16(taps=("relu1_2", "relu2_2", "relu3_3", "relu4_1", "relu4_3"))
    except WeightNotFoundError as e:
        pytest.skip(f"needs the VGG16 weights ($RTSTYLE_WEIGHTS): {e}")
    return QualityMeter(vgg)


@pytest.fixture(scope="module")
def pair(shared) -> tuple[np.ndarray, np.ndarray]:
    """A real content photo (64x48) and style image (natural size; gatys resizes it)."""
    from rtstyle.image import read_image, resize

    c = read_image(shared / "media" / "photos" / "content" / "palapeli_cincinnati-bridge.jpg")
    s = read_image(shared / "media" / "styles" / "starry_night.jpg", max_side=256)
    return resize(c, (64, 48)), s


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimisation_moves_towards_the_style(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray], optimizer: str) -> None:
    c, s = pair
    hist: list[dict[str, float]] = []
    out = gatys(c, s, vgg=meter.vgg, steps=15, optimizer=optimizer, callback=lambda i, l: hist.append(l))
    assert out.dtype == np.uint8 and out.shape == c.shape
    assert len(hist) == 15 and hist[0]["content"] < 1e-9  # starts from the content
    assert hist[-1]["total"] < 0.5 * hist[0]["total"], (hist[0], hist[-1])
    _, s_sized = prepare_pair(c, s)
    before = meter.measure(c, c, s_sized)
    after = meter.measure(out, c, s_sized)
    assert after["style_gram"] < 0.6 * before["style_gram"], (before, after)
    assert after["style_meanstd"] < before["style_meanstd"], (before, after)
    assert not np.array_equal(out, c)


def test_deterministic_and_sized(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray]) -> None:
    c, s = pair
    a = gatys(c, s, vgg=meter.vgg, steps=3, size=40, init="noise", seed=1)
    b = gatys(c, s, vgg=meter.vgg, steps=3, size=40, init="noise", seed=1)
    assert a.shape == (30, 40, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    c0 = gatys(c, s, vgg=meter.vgg, steps=0)
    assert np.array_equal(c0, c)  # no steps: the initial (content) image
    cs, ss = prepare_pair(c, s, size=32)
    assert cs.shape == (24, 32, 3) and max(ss.shape[:2]) == 32


def test_bad_inputs(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray], tmp_path) -> None:
    c, s = pair
    vgg = meter.vgg
    with pytest.raises(ValueError, match="uint8"):
        gatys(c.astype(np.float32), s, vgg=vgg, steps=1)
    with pytest.raises(ValueError, match="uint8"):
        gatys(c, s[..., 0].copy(), vgg=vgg, steps=1)
    with pytest.raises(ValueError, match="too small"):
        gatys(c[:8, :8].copy(), s, vgg=vgg, steps=1)
    with pytest.raises(ValueError, match="not found"):
        gatys(tmp_path / "missing.jpg", s, vgg=vgg, steps=1)
    with pytest.raises(ValueError, match="steps"):
        gatys(c, s, vgg=vgg, steps=-1)
    with pytest.raises(ValueError, match="size"):
        gatys(c, s, vgg=vgg, steps=1, size=4)
    with pytest.raises(ValueError, match="style_weight"):
        gatys(c, s, vgg=vgg, steps=1, style_weight=-1.0)
    with pytest.raises(ValueError, match="both 0"):
        gatys(c, s, vgg=vgg, steps=1, style_weight=0.0, content_weight=0.0)
    with pytest.raises(ValueError, match="init"):
        gatys(c, s, vgg=vgg, steps=1, init="style")
    with pytest.raises(ValueError, match="optimizer"):
        gatys(c, s, vgg=vgg, steps=1, optimizer="sgd")
    with pytest.raises(ValueError, match="lr"):
        gatys(c, s, vgg=vgg, steps=1, lr=0.0)
    from rtstyle.nn import VGG16Features

    with pytest.raises(ValueError, match="needs"):
        gatys(c, s, vgg=VGG16Features(taps=("relu1_2",)), steps=1)


def test_layers_documented() -> None:
    assert STYLE_LAYERS == ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    assert CONTENT_LAYER == "relu3_3"

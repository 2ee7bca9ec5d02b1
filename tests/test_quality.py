"""rtstyle.quality: VGG16 style/content metrics (needs the shared VGG16 weights)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rtstyle.quality import DEFAULT_STYLE_LAYERS, METRICS, QualityMeter, summarise, to_tensor01
from rtstyle.nn.losses import gram, gram_style_loss, meanstd_style_loss
from rtstyle.weights import WeightNotFoundError


@pytest.fixture(scope="module")
def meter() -> QualityMeter:
    try:
        return QualityMeter()
    except WeightNotFoundError as e:
        pytest.skip(f"needs the VGG16 weights ($RTSTYLE_WEIGHTS): {e}")


@pytest.fixture(scope="module")
def pair(shared) -> tuple[np.ndarray, np.ndarray]:
    """A real 64x48 content photo and a 64x48 style image."""
    import cv2

    from rtstyle.image import read_image

    c = read_image(shared / "media" / "photos" / "content" / "palapeli_cincinnati-bridge.jpg")
    s = read_image(shared / "media" / "styles" / "mosaic.jpg")
    c = cv2.resize(c, (64, 48), interpolation=cv2.INTER_AREA)
    s = cv2.resize(s, (64, 48), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(c), np.ascontiguousarray(s)


def test_identical_images_score_zero(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray]) -> None:
    c, _ = pair
    m = meter.measure(c, c, c)
    assert set(m) == set(METRICS)
    assert all(isinstance(v, float) for v in m.values())
    assert all(abs(v) < 1e-9 for v in m.values()), m


def test_output_equal_to_content(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray]) -> None:
    c, s = pair
    m = meter.measure(c, c, s)
    assert m["content"] < 1e-9
    assert m["style_meanstd"] > 1e-3
    assert m["style_gram"] > 1e-6
    # the style itself as the output is far from the content and perfect for the style
    m2 = meter.measure(s, c, s)
    assert m2["content"] > 1e-2 and m2["style_meanstd"] < 1e-9 and m2["style_gram"] < 1e-12


def test_tensor_and_array_inputs_agree(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray]) -> None:
    c, s = pair
    ct, st = to_tensor01(c), to_tensor01(s)
    assert ct.shape == (1, 3, 48, 64) and ct.dtype == torch.float32
    a = meter.measure(c, c, s)
    b = meter.measure(ct, ct, st)
    for k in METRICS:
        assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-12)
    # deterministic: no hidden state
    assert meter.measure(c, c, s) == a


def test_matches_training_losses(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray]) -> None:
    c, s = pair
    with torch.no_grad():
        fo, fs = meter.vgg(to_tensor01(c)), meter.vgg(to_tensor01(s))
    ms = meanstd_style_loss({k: fo[k] for k in DEFAULT_STYLE_LAYERS}, {k: fs[k] for k in DEFAULT_STYLE_LAYERS})
    gs = gram_style_loss({k: fo[k] for k in DEFAULT_STYLE_LAYERS}, {k: gram(fs[k]) for k in DEFAULT_STYLE_LAYERS})
    m = meter.measure(c, c, s)
    assert m["style_meanstd"] == pytest.approx(float(ms), rel=1e-4)
    assert m["style_gram"] == pytest.approx(float(gs), rel=1e-4)


def test_style_statistics_are_size_independent(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray]) -> None:
    import cv2

    c, s = pair
    s2 = cv2.resize(s, (128, 96), interpolation=cv2.INTER_CUBIC)
    a = meter.measure(c, c, s)
    b = meter.measure(c, c, s2)
    # VGG statistics of an upscaled image drift a little (receptive fields see other scales),
    # but far less than the distance between two different images.
    for k in ("style_meanstd", "style_gram"):
        assert b[k] == pytest.approx(a[k], rel=0.35), (k, a[k], b[k])
    assert b["content"] == a["content"]
    self_vs_big = meter.measure(s, s, s2)
    for k in ("style_meanstd", "style_gram"):
        assert self_vs_big[k] < 0.35 * a[k], (k, self_vs_big[k], a[k])


def test_inputs_validated(meter: QualityMeter, pair: tuple[np.ndarray, np.ndarray]) -> None:
    c, s = pair
    with pytest.raises(ValueError, match="uint8"):
        meter.measure(c.astype(np.float32), c, s)
    with pytest.raises(ValueError, match="H, W, 3"):
        meter.measure(c[..., :2].copy(), c, s)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        meter.measure(to_tensor01(c) * 255, c, s)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        meter.measure(torch.rand(2, 3, 32, 32), c, s)
    with pytest.raises(ValueError, match="floating point"):
        meter.measure(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), c, s)
    with pytest.raises(ValueError, match="same size"):
        meter.measure(c[:32], c, s)
    with pytest.raises(ValueError, match="too small"):
        meter.measure(c[:8, :8].copy(), c[:8, :8].copy(), s)
    with pytest.raises(ValueError, match="numpy array or a float torch tensor"):
        meter.measure([[0]], c, s)  # type: ignore[arg-type]


def test_meter_arguments_validated(meter: QualityMeter) -> None:
    with pytest.raises(ValueError, match="unknown VGG16 layers"):
        QualityMeter(meter.vgg, style_layers=("relu1_1",))
    with pytest.raises(ValueError, match="at least one"):
        QualityMeter(meter.vgg, style_layers=())
    from rtstyle.nn.vgg import VGG16Features

    with pytest.raises(ValueError, match="needs"):
        QualityMeter(VGG16Features(taps=("relu1_2",)))


def test_summarise() -> None:
    rows = [{"style_gram": 1.0, "content": 2.0, "method": "a", "ok": True},
            {"style_gram": 3.0, "content": 4.0, "method": "a", "ok": False},
            {"style_gram": 8.0, "content": float("nan"), "method": "a", "ok": True}]
    s = summarise(rows)
    assert set(s) == {"style_gram", "content"}
    assert s["style_gram"] == {"mean": 4.0, "median": 3.0, "n": 3}
    assert s["content"]["mean"] == 3.0 and s["content"]["n"] == 2
    assert set(summarise(rows, keys=["content"])) == {"content"}
    with pytest.raises(ValueError, match="at least one row"):
        summarise([])
    with pytest.raises(ValueError, match="no row"):
        summarise(rows, keys=["style_meanstd"])
    with pytest.raises(ValueError, match="non-numeric"):
        summarise(rows, keys=["method"])
    assert math.isnan(summarise([{"x": float("inf")}])["x"]["mean"])

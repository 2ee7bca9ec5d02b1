"""WCT at relu3_1 and the multi-level cascade: the coloured features carry the style's covariance; Stylizer with a style swap."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from rtstyle.models import create_model, get_spec
from rtstyle.models.wct import coloring_matrix, feature_covariance, wct


@pytest.fixture(scope="module")
def styles(shared: Path, read_rgb: Callable[..., np.ndarray]) -> dict[str, np.ndarray]:
    root = shared / "media" / "styles"
    return {n: read_rgb(root / f"{n}.jpg", (192, 160)) for n in ("starry_night", "the_scream")}


def test_whiten_color_on_random_features() -> None:
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(8, 8, generator=g, dtype=torch.float64)
    content = (mix @ torch.randn(8, 400, generator=g, dtype=torch.float64)).view(1, 8, 20, 20)
    style = (torch.randn(8, 8, generator=g, dtype=torch.float64) @ torch.randn(8, 500, generator=g, dtype=torch.float64)
             + 3.0).view(1, 8, 20, 25)
    ms, cs = feature_covariance(style)
    out = wct(content, ms, coloring_matrix(cs, 1e-9), 1e-9)
    mo, co = feature_covariance(out)
    torch.testing.assert_close(co, cs, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(mo, ms)


def test_output_features_have_style_covariance(lst: dict[str, Path], content_photo: np.ndarray,
                                               styles: dict[str, np.ndarray],
                                               rgb_tensor: Callable[..., torch.Tensor]) -> None:
    assert get_spec("wct.r31").needs_style_image
    model = create_model("wct.r31", **lst)
    content, style = rgb_tensor(content_photo), rgb_tensor(styles["starry_night"])
    mean, coloring, alpha = model.encode_style(style)
    assert mean.shape == (1, 256, 1, 1) and coloring.shape == (256, 256) and alpha.shape == (1,)
    with torch.no_grad():
        f = model.features(content, mean, coloring, alpha)
        ms, cs = feature_covariance(model.encoder(style))
        y = model(content, mean, coloring, alpha)
    mo, co = feature_covariance(f)
    assert float((co - cs).norm() / cs.norm()) < 1e-3
    assert float((mo - ms).abs().max()) < 1e-3
    assert y.shape == content.shape
    zero = create_model("wct.r31", alpha=0.0, **lst)
    with torch.no_grad():
        rec = model.decoder(model.encoder(content))
        torch.testing.assert_close(zero(content, *zero.encode_style(style)), rec, atol=1e-5, rtol=1e-5)


def test_multi_level_cascade(lst: dict[str, Path], content_photo: np.ndarray, styles: dict[str, np.ndarray],
                              rgb_tensor: Callable[..., torch.Tensor]) -> None:
    """wct.multi: per-level style inputs from one style pass; each level carries the style's covariance
    at that level; at alpha 0 it is the chain of the three reconstructions."""
    model = create_model("wct.multi", **lst)
    assert model.levels == (31, 21, 11) and get_spec("wct.multi").family == "wct"
    content, style = rgb_tensor(content_photo), rgb_tensor(styles["starry_night"])
    inputs = model.encode_style(style)
    assert [tuple(t.shape) for t in inputs[1:6:2]] == [(256, 256), (128, 128), (64, 64)]
    with torch.no_grad():
        x = content
        for i, level in enumerate(model.levels):
            f = model._level(i, x.clamp(0, 1), inputs[2 * i], inputs[2 * i + 1], inputs[-1])
            _, cs = feature_covariance(model.encoders[i](style))
            _, co = feature_covariance(f)
            assert float((co - cs).norm() / cs.norm()) < 1e-3, level
            x = model.decoders[i](f)
        torch.testing.assert_close(model(content, *inputs), x, atol=1e-4, rtol=1e-3)
        zero = create_model("wct.multi", alpha=0.0, **lst)
        rec = content
        for i in range(3):
            rec = zero.decoders[i](zero.encoders[i](rec.clamp(0, 1) if i else rec))
        torch.testing.assert_close(zero(content, *zero.encode_style(style)), rec, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="style inputs"):
        model(content, *inputs[:3])


def test_stylizer_with_style_swap(lst: dict[str, Path], content_photo: np.ndarray,
                                  styles: dict[str, np.ndarray], style_swap_outputs: Callable) -> None:
    from rtstyle.stylizer import Stylizer

    st = Stylizer(create_model("wct.r31", **lst), style_image=styles["starry_night"], frame_size=(160, 120))
    try:
        style_swap_outputs(st, styles["the_scream"], content_photo)
    finally:
        st.close()

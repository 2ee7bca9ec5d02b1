"""adain.multi: AdaIN coarse to fine (relu3_1, relu2_1, relu1_1) with rtstyle's shallow decoders;
each level carries the style's statistics, AdaIN's controls work on it, and it exports."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from rtstyle.models import create_model, get_spec
from rtstyle.models.adain import AdaINMultiNet, adain, channel_stats


@pytest.fixture(scope="module")
def styles(shared: Path, read_rgb: Callable[..., np.ndarray]) -> dict[str, np.ndarray]:
    root = shared / "media" / "styles"
    return {n: read_rgb(root / f"{n}.jpg", (192, 160)) for n in ("starry_night", "the_scream")}


@pytest.fixture(scope="module")
def model(lst: dict[str, Path]) -> AdaINMultiNet:
    return create_model("adain.multi", **lst)


@pytest.fixture(scope="module")
def content(content_photo: np.ndarray, rgb_tensor: Callable[..., torch.Tensor]) -> torch.Tensor:
    return rgb_tensor(content_photo)


def test_every_level_gets_the_style_statistics(model: AdaINMultiNet, content: torch.Tensor,
                                               styles: dict[str, np.ndarray],
                                               rgb_tensor: Callable[..., torch.Tensor],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    spec = get_spec("adain.multi")
    assert spec.family == "adain" and spec.needs_style_image and model.levels == (31, 21, 11)
    style = rgb_tensor(styles["starry_night"])
    monkeypatch.setattr(model, "encoder_precision", "fp32")  # exact statistics (auto: bf16 on AMX / AVX512_BF16)
    mean, std, alpha = model.encode_style(style)
    assert mean.shape == std.shape == (1, 256 + 128 + 64, 1, 1)
    encs = [model.encoder, *model.fine.encoders]
    decs = [model.decoder, *model.fine.decoders]
    with torch.no_grad():
        x, start = content, 0
        for enc, dec, c in zip(encs, decs, model.channels):
            ms, ss = channel_stats(enc(style))
            torch.testing.assert_close(mean[:, start:start + c], ms)  # the deepest encoder's taps = each level's encoder
            f = adain(enc(x.clamp(0, 1)), mean[:, start:start + c], std[:, start:start + c])
            got_m, _ = channel_stats(f)
            torch.testing.assert_close(got_m, ms, atol=1e-3, rtol=1e-3)
            x, start = dec(f), start + c
        torch.testing.assert_close(model(content, mean, std, alpha), x, atol=1e-5, rtol=1e-4)


def test_controls_carry_over(model: AdaINMultiNet, lst: dict[str, Path], content: torch.Tensor,
                             styles: dict[str, np.ndarray], rgb_tensor: Callable[..., torch.Tensor]) -> None:
    a, b = styles["starry_night"], styles["the_scream"]
    alone = model.encode_style(rgb_tensor(a))
    for x, y in zip(model.encode_styles([a, b], [1.0, 0.0]), alone):
        torch.testing.assert_close(x, y)
    mid = model.encode_styles([a, b], [1.0, 1.0])
    torch.testing.assert_close(mid[1], (alone[1] + model.encode_style(rgb_tensor(b))[1]) / 2)
    half = model.with_controls(alpha=0.5)
    assert isinstance(half, AdaINMultiNet) and half.alpha == 0.5
    labels = np.zeros((120, 160), np.int64)
    labels[:, 80:] = 1
    two = create_model("adain.multi", mask=labels, **lst)
    lum = create_model("adain.multi", color="luminance", **lst)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    with torch.no_grad():
        y2 = two(content, *two.encode_styles([a, b]))
        ya = model(content, *alone)
        yb = model(content, *model.encode_style(rgb_tensor(b)))
        yl = lum(content, *lum.encode_style(rgb_tensor(a)))
    left, right = (..., slice(0, 64)), (..., slice(96, 160))
    assert (y2[left] - ya[left]).abs().mean() < 0.5 * (y2[left] - yb[left]).abs().mean()
    assert (y2[right] - yb[right]).abs().mean() < 0.5 * (y2[right] - ya[right]).abs().mean()
    chroma = lambda t: t - (t * luma).sum(1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(chroma(yl), chroma(content), atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_export_parity(backend: str, model: AdaINMultiNet, content: torch.Tensor, styles: dict[str, np.ndarray],
                       tmp_path: Path, rgb_tensor: Callable[..., torch.Tensor]) -> None:
    pytest.importorskip("onnxruntime" if backend == "onnx" else "openvino")
    from helpers import assert_export_parity

    m = model.with_controls(alpha=0.8)
    assert_export_parity(backend, m, content, [m.encode_style(rgb_tensor(styles[n])) for n in ("starry_night", "the_scream")],
                         tmp_path)

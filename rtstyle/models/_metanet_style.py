"""MetaNet's style features: per-channel mean and std of VGG16 activations, and the VGG16 they come from.

A style image (RGB in [0, 1], resized so that its longer side is the meta network's ``style_size``)
goes through the ImageNet VGG16 (:mod:`rtstyle.nn.vgg`); at each of :data:`STYLE_TAPS` its channel
means and standard deviations are taken: ``64 + 128 + 256 + 512`` channels, twice, ``FEATURE_DIM`` =
1920 numbers. :func:`feature_stats` gives the centring and per-block scaling a meta network applies
to them (its ``feat_shift`` / ``feat_scale`` buffers).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..image import resize_tensor_long
from ..nn.vgg import STYLE_LAYERS, VGGMismatchError, check_vgg16_file, load_vgg16
from ..weights import resolve_weight

__all__ = ["FEATURE_DIM", "STYLE_TAPS", "VGGMismatchError", "feature_stats", "load_style_vgg", "resize_long",
           "style_features"]

#: The VGG16 layers whose statistics make the style features (:data:`rtstyle.nn.vgg.STYLE_LAYERS`).
STYLE_TAPS: tuple[str, ...] = STYLE_LAYERS
_TAP_CHANNELS = (64, 128, 256, 512)
FEATURE_DIM = 2 * sum(_TAP_CHANNELS)  # 1920
_FEAT_EPS = 1e-5


def style_features(vgg: nn.Module, style_img01: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and std of the VGG16 relu1_2, relu2_2, relu3_3, relu4_3 activations.

    Args:
        vgg: :class:`rtstyle.nn.vgg.VGG16Features` returning at least those four taps
            (activations in torchvision magnitude whichever VGG16 file was loaded).
        style_img01: ``(N, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(N, 1920)``: for each layer in order, its channel means then its channel stds
        (``sqrt(biased var + 1e-5)``): ``[mean1_2 (64), std1_2 (64), mean2_2 (128), ...]``.
    """
    feats = vgg(style_img01)
    parts = []
    for tap in STYLE_TAPS:
        f = feats[tap].float()
        mean = f.mean((2, 3))
        var = (f - mean[..., None, None]).pow(2).mean((2, 3))
        parts += [mean, (var + _FEAT_EPS).sqrt()]
    return torch.cat(parts, 1)


def _feature_blocks() -> list[int]:
    """Sizes of the 8 (layer, mean|std) blocks of the 1920-vector."""
    return [c for c in _TAP_CHANNELS for _ in range(2)]


def feature_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, 1920)`` features of the training styles -> ``(shift, scale)``, each ``(1920,)``.

    ``shift`` is the per-feature mean over the styles (the features are means and stds of ReLU
    activations: all positive; centred, different styles push the meta network in different
    directions). ``scale`` is one scalar per block (a layer's means or stds, not per channel, so
    that it is well defined from few styles): the RMS of the centred block over all styles (of the
    raw block when the styles do not vary, e.g. a single style).
    """
    feats = feats.float()
    shift = feats.mean(0)
    out = []
    for blk, raw in zip((feats - shift).split(_feature_blocks(), dim=1), feats.split(_feature_blocks(), dim=1)):
        sc = blk.pow(2).mean().sqrt()
        if sc < 1e-4 * raw.pow(2).mean().sqrt():
            sc = raw.pow(2).mean().sqrt()
        out.append(sc.clamp_min(1e-6).expand(blk.shape[1]))
    return shift, torch.cat(out)


#: ``(N, 3, H, W)`` resized so that its longer side is ``side`` (:func:`rtstyle.image.resize_tensor_long`):
#: how style images are brought to ``style_size``, in training and at run time.
resize_long = resize_tensor_long


class _FeatureNet(nn.Module):
    """VGG16 -> :func:`style_features` as one module (what the style encoder converts)."""

    def __init__(self, vgg: nn.Module) -> None:
        super().__init__()
        self.vgg = vgg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return style_features(self.vgg, x)


@lru_cache(maxsize=2)
def _load_vgg_file(path: str) -> nn.Module:
    # one module per file, shared by every meta network loaded with it (its style encoder is cached on it)
    return load_vgg16(path, STYLE_TAPS)


def load_style_vgg(path: str | None, want_sha256: str | None) -> nn.Module:
    """The VGG16 (with :data:`STYLE_TAPS`) from ``path`` or the resolved third-party file, checked
    against the sha256 a meta network recorded.

    Raises:
        VGGMismatchError: the file found is not the one the meta network was trained with.
    """
    file = resolve_weight("vgg16", explicit=path)
    check_vgg16_file(file, want_sha256, "this meta network")
    return _load_vgg_file(str(Path(file).resolve()))

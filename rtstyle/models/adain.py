"""AdaIN arbitrary style transfer (Huang & Belongie 2017) on an encoder/decoder pair.

Two pairs are registered: ``adain.vgg16`` (the ImageNet VGG16 to relu4_1 with a decoder trained by
rtstyle, :mod:`rtstyle.models.vgg_adain`) and ``adain.r31`` (below). ``adain.r31`` encodes the content with the normalised-VGG19 encoder to relu3_1, replaces every
channel's mean and standard deviation with the style's, and decodes with the matching pretrained
decoder. No training is involved: the decoder is LinearStyleTransfer's reconstruction decoder,
which decodes AdaIN-ed features well enough at relu3_1 (a dedicated AdaIN decoder would be sharper).

Style inputs are explicit tensors, computed once per style by :meth:`AdaINNet.encode_style`:

* ``mean``, ``std``: the style's per-channel encoder statistics, ``(K, C, 1, 1)`` (``K = 1``
  except in spatial control with several styles);
* ``alpha``: ``(1,)`` content-style strength. It is an *input* rather than a constant so that a new
  alpha reuses an exported engine (the engine cache is keyed by the weights, not by Python
  attributes) and is a mere tensor swap in the graph;
* ``mask`` (spatial control only): ``(1, K + 1, Hm, Wm)`` soft region weights; channel ``k < K`` is
  style ``k``, the last channel keeps the content. It is resized to the feature map in the graph.

Controls (:class:`AdaINControls`): ``alpha``; ``color`` ``"luminance"`` (stylise, then keep the
output's luma with the content's chroma; done in the graph, so it is recorded in a buffer that
enters the engine cache key) or ``"histogram"`` (the style image's colour mean/covariance is matched
to a content reference before encoding, Gatys et al. 2016); ``mask`` (label map, image file or
``callable(frame_index)``). Interpolating several styles interpolates their statistics, which is
exactly the paper's interpolation of AdaIN outputs because AdaIN is affine in (mean, std).

Use with :class:`rtstyle.stylizer.Stylizer`::

    Stylizer("adain.r31", style_image="starry.jpg")                     # one style
    model = create_model("adain.r31", alpha=0.7, color="luminance")     # controls: a new module
    stylizer.set_style(model=model, style_image="wave.jpg")
    blend = model.with_styles(["a.jpg", "b.jpg"], [0.7, 0.3])          # several styles
    stylizer.set_style(model=blend)                                     # (style tensors explicit)
    stylizer.set_style(model=blend, style_vector=[0.2, 0.8])            # re-weight, no re-encode
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from ._spec import ModelSpec
from ._style_controls import (COLOR_MODES, AdaINControls, ControlledFeatureNet, ImageLike, MaskLike, StyleSet,
                              controls_extra, load_mask, luminance_transfer, mask_to_regions, match_color,
                              resolve_controls, validate_weights)
from .lst import LSTDecoder, LSTEncoder, load_decoder, load_encoder, r31_spec

__all__ = [
    "AdaINControls",
    "AdaINNet",
    "AdaINStyleSet",
    "COLOR_MODES",
    "ImageLike",
    "MaskLike",
    "adain",
    "build_adain",
    "channel_stats",
    "load_mask",
    "luminance_transfer",
    "mask_to_regions",
    "match_color",
    "masked_adain",
    "validate_weights",
]

log = logging.getLogger(__name__)

_EPS = 1e-5


# --------------------------------------------------------------------------- pure functions

def channel_stats(feats: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (biased variance) over the spatial dimensions.

    Shape:
        ``(N, C, H, W)`` -> two ``(N, C, 1, 1)`` tensors.
    """
    mean = feats.mean((2, 3), keepdim=True)
    var = (feats - mean).pow(2).mean((2, 3), keepdim=True)
    return mean, (var + eps).sqrt()


def adain(content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Normalise each content channel, then scale and shift it to the style statistics.

    Args:
        content: ``(N, C, H, W)`` features.
        mean, std: style statistics ``(1, C, 1, 1)``.
        eps: added to the content variance (dead ReLU channels have none).
    """
    c_mean, c_std = channel_stats(content, eps)
    return (content - c_mean) / c_std * std + mean


def masked_adain(
    content: torch.Tensor, means: torch.Tensor, stds: torch.Tensor, weights: torch.Tensor, eps: float = _EPS
) -> torch.Tensor:
    """AdaIN per region: region statistics of the content, one style per region, blended by weight.

    Args:
        content: ``(1, C, h, w)`` features.
        means, stds: ``(K, C, 1, 1)`` statistics of the K styles.
        weights: ``(1, K + 1, h, w)`` soft region weights summing to 1 per position; the last
            channel is the region that keeps the content features.

    Returns:
        ``sum_k weights_k * AdaIN_k(content) + weights_K * content`` where ``AdaIN_k`` normalises
        with the content's statistics *inside* region ``k``.
    """
    k = means.shape[0]
    w = weights[:, :k].unsqueeze(2)  # (1, K, 1, h, w)
    f = content.unsqueeze(1)  # (1, 1, C, h, w)
    mass = w.sum((3, 4), keepdim=True).clamp_min(1e-6)
    mu = (w * f).sum((3, 4), keepdim=True) / mass  # (1, K, C, 1, 1)
    var = (w * (f - mu).pow(2)).sum((3, 4), keepdim=True) / mass
    styled = (f - mu) / (var + eps).sqrt() * stds.unsqueeze(0) + means.unsqueeze(0)
    return (w * styled).sum(1) + weights[:, k:] * content


# --------------------------------------------------------------------------- model

class AdaINNet(ControlledFeatureNet):
    """AdaIN between an encoder and the decoder that inverts it.

    Args:
        encoder: relu3_1 :class:`~rtstyle.models.lst.LSTEncoder` (``adain.r31``) or the VGG16
            relu4_1 :class:`~rtstyle.models.vgg_adain.VGG16Encoder` (``adain.vgg16``).
        decoder: the matching decoder (same ``level``).
        controls: alpha, colour preservation, spatial mask (:class:`AdaINControls`).
        max_style_side: style images are downscaled to at most this longer side before encoding.

    Shape:
        ``forward(content, mean, std, alpha[, mask])``: content ``(1, 3, H, W)`` RGB in [0, 1], H and
        W multiples of the encoder's downsampling (4 for relu3_1, 8 for relu4_1: the spec's
        ``size_multiple``) -> ``(1, 3, H, W)`` in ~[0, 1]. Style tensors come from :meth:`encode_style`
        or :meth:`encode_styles`.
    """

    # a copy made by with_controls keeps the spec it was built with
    _controls_in_spec = False

    def __init__(
        self,
        encoder: LSTEncoder,
        decoder: LSTDecoder,
        controls: AdaINControls | None = None,
        max_style_side: int | None = 512,
    ) -> None:
        if encoder.level != decoder.level or getattr(encoder, "out_channels", None) != getattr(decoder, "in_channels", None):
            raise ValueError(f"encoder and decoder do not pair: levels {encoder.level}/{decoder.level}")
        super().__init__(encoder, decoder, controls, max_style_side)

    def _rebuild(self, controls: AdaINControls) -> "AdaINNet":
        return AdaINNet(self.encoder, self.decoder, controls, self.max_style_side)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ style encoding
    @torch.no_grad()
    def style_stats(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One style image ``(1, 3, H, W)`` in [0, 1] -> its encoder-layer ``(mean, std)``,
        ``(1, C, 1, 1)`` each (after the colour matching of ``color="histogram"``)."""
        return channel_stats(self._encode_style_image(style))

    def style_moments(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The moments several styles interpolate: :meth:`style_stats`."""
        return self.style_stats(style)

    def combine_stats(
        self, stats: Sequence[tuple[torch.Tensor, torch.Tensor]], weights: Sequence[float] | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Per-image ``(mean, std)`` -> style inputs (see :meth:`combine_moments`)."""
        return self.combine_moments(stats, weights)

    def with_styles(self, images: Sequence[ImageLike], weights: Sequence[float] | None = None) -> "AdaINStyleSet":
        """A Stylizer-ready module holding several styles (interpolated, or one per mask region)."""
        return AdaINStyleSet(self, images, weights)

    # ------------------------------------------------------------------ hot path
    def features(self, content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """The transformed encoder features ``alpha * target + (1 - alpha) * content`` (before decoding)."""
        f = self.encoder(content)
        if mask is None:
            target = adain(f, mean, std)
        else:
            weights = F.interpolate(mask, size=f.shape[-2:], mode="bilinear", align_corners=False)
            target = masked_adain(f, mean, std, weights)
        a = alpha.reshape(1, 1, 1, 1)
        return a * target + (1.0 - a) * f


class AdaINStyleSet(StyleSet):
    """Several styles bound to an :class:`AdaINNet` (see :class:`~rtstyle.models._style_controls.StyleSet`).

    Args:
        net: the model (its controls apply: alpha, colour, mask).
        images: style images (arrays, files or tensors).
        weights: interpolation weights (``None``: equal; must be ``None`` with a mask).
    """

    def __init__(self, net: AdaINNet, images: Sequence[ImageLike], weights: Sequence[float] | None = None) -> None:
        super().__init__(net, images, weights, _SPEC)


# --------------------------------------------------------------------------- registry

_SPEC = r31_spec(
    "adain.r31",
    "adain",
    "arbitrary style by AdaIN at relu3_1 (Huang & Belongie 2017), no training; needs --style IMG",
    {"layer": "relu3_1", "alpha": 1.0, "colour": None},
)


def build_adain(
    spec: ModelSpec,
    encoder: nn.Module,
    decoder: nn.Module,
    *,
    controls: AdaINControls | None = None,
    alpha: float | None = None,
    color: str | None = None,
    mask: MaskLike | None = None,
    color_reference: ImageLike | None = None,
    max_style_side: int | None = 512,
    **unknown: Any,
) -> AdaINNet:
    """An :class:`AdaINNet` on a loaded encoder/decoder pair; explicit control kwargs override the
    fields of ``controls``."""
    ctl = resolve_controls(spec, unknown, "max_style_side, encoder_path, decoder_path", controls,
                           alpha=alpha, color=color, mask=mask, color_reference=color_reference)
    net = AdaINNet(encoder, decoder, ctl, max_style_side)  # type: ignore[arg-type]
    net.spec = controls_extra(spec, ctl)  # type: ignore[attr-defined]
    return net


@register_model(_SPEC)
def _adain_r31(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
               **controls: Any) -> nn.Module:
    """Build ``adain.r31`` from the resolved relu3_1 pair; ``controls`` as :func:`build_adain`."""
    return build_adain(spec, load_encoder(31, encoder_path), load_decoder(31, decoder_path), **controls)

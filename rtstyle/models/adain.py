"""AdaIN arbitrary style transfer (Huang & Belongie 2017) on an encoder/decoder pair.

Three models are registered: ``adain.vgg16`` (the ImageNet VGG16 to relu4_1 with a decoder trained by
rtstyle, :mod:`rtstyle.models.vgg_adain`), ``adain.r31`` and ``adain.multi`` (below). ``adain.r31``
encodes the content with the normalised-VGG19 encoder to relu3_1, replaces every
channel's mean and standard deviation with the style's, and decodes with the matching pretrained
decoder. No training is involved: the decoder is LinearStyleTransfer's reconstruction decoder,
which decodes AdaIN-ed features well enough at relu3_1 (a dedicated AdaIN decoder would be sharper).
``adain.multi`` (:class:`AdaINMultiNet`) repeats it coarse to fine at relu2_1 and relu1_1 with
rtstyle's own decoders for those levels, which carries far more of a painting's texture and colour.

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
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import resolve_weight
from ._registry import register_model
from ._spec import ModelSpec
from ._style_controls import (COLOR_MODES, AdaINControls, ControlledFeatureNet, ImageLike, MaskLike, StyleSet,
                              controls_extra, load_mask, luminance_transfer, mask_to_regions, match_color,
                              resolve_controls, validate_weights)
from ._style_encoder import style_encoder_for
from .lst import LSTDecoder, LSTEncoder, load_decoder, load_encoder, r31_spec

__all__ = [
    "AdaINControls",
    "AdaINMultiNet",
    "FineAdaIN",
    "LevelStats",
    "AdaINNet",
    "AdaINStyleSet",
    "COLOR_MODES",
    "ImageLike",
    "MaskLike",
    "adain",
    "build_adain",
    "channel_stats",
    "level_stats",
    "load_fine_adain",
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
        return _blend(self.encoder(content), mean, std, alpha, mask)


def _blend(f: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor,
           mask: torch.Tensor | None) -> torch.Tensor:
    """``alpha * AdaIN(f) + (1 - alpha) * f``, per mask region when a mask is given."""
    if mask is None:
        target = adain(f, mean, std)
    else:
        weights = F.interpolate(mask, size=f.shape[-2:], mode="bilinear", align_corners=False)
        target = masked_adain(f, mean, std, weights)
    a = alpha.reshape(1, 1, 1, 1)
    return a * target + (1.0 - a) * f


class LevelStats(nn.Module):
    """Style image -> the channel ``(mean, std)`` of several encoder levels in one pass, as one tensor
    ``(1, 2 * sum(C), 1, 1)`` (means, then stds): a single-output module, so the style pass of the
    cascades runs on the OpenVINO style encoder (:func:`level_stats`) like AdaIN's own."""

    def __init__(self, encoder: LSTEncoder, levels: Sequence[int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.levels = tuple(levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.encoder.features(x)
        st = [channel_stats(taps[f"r{level}"]) for level in self.levels]
        return torch.cat([m for m, _ in st] + [s for _, s in st], 1)


def level_stats(encoder: LSTEncoder, levels: Sequence[int], style: torch.Tensor,
                runtime: str = "auto", precision: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` of ``levels`` (concatenated in that order) for a prepared style image, through a
    :class:`LevelStats` style encoder cached on ``encoder`` (OpenVINO when installed, else eager; in
    ``precision``, see :mod:`rtstyle.models._style_encoder`)."""
    key = "_rtstyle_level_stats_" + "_".join(str(v) for v in levels)
    enc = style_encoder_for(encoder, key, lambda: LevelStats(encoder, levels), runtime,
                            f"relu{'/'.join(str(v) for v in levels)} statistics",
                            precision=precision)
    out = enc(style)
    c = out.shape[1] // 2
    return out[:, :c], out[:, c:]


class FineAdaIN(nn.Module):
    """AdaIN at relu2_1, then at relu1_1, on an image: the fine levels of a coarse-to-fine cascade.

    A model that set the strokes at relu3_1 (AdaIN in ``adain.multi``, the patch swap in
    ``styleswap.multi``) hands its output (clamped to [0, 1]) to these levels, which match the
    painting's finer texture and colour statistics, as the multi-level WCT of Li et al. 2017 does
    (:class:`rtstyle.models.wct.WCTNet`). The decoders are rtstyle's own (``rtstyle train decoder``).

    Args:
        encoders: the relu2_1 and relu1_1 :class:`~rtstyle.models.lst.LSTEncoder` (any shallow levels,
            coarse to fine).
        decoders: their decoders, same order.

    Shape:
        ``forward(image, mean, std, alpha[, mask])``: ``(1, 3, H, W)`` in ~[0, 1]; ``mean``/``std``
        ``(K, sum of the levels' channels, 1, 1)`` (:func:`level_stats`); ``alpha`` ``(1,)``; ``mask`` as
        :func:`masked_adain`'s region weights, resized to each level.
    """

    def __init__(self, encoders: Sequence[LSTEncoder], decoders: Sequence[LSTDecoder]) -> None:
        super().__init__()
        if not encoders or len(encoders) != len(decoders):
            raise ValueError(f"one decoder per encoder, got {len(encoders)} encoders and {len(decoders)} decoders")
        for e, d in zip(encoders, decoders):
            if e.level != d.level:
                raise ValueError(f"encoder and decoder do not pair: levels {e.level}/{d.level}")
        self.encoders = nn.ModuleList(encoders)
        self.decoders = nn.ModuleList(decoders)
        self.levels = tuple(e.level for e in encoders)
        self.channels = tuple(e.out_channels for e in encoders)

    def forward(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        start = 0
        for enc, dec, c in zip(self.encoders, self.decoders, self.channels):
            x = dec(_blend(enc(x.clamp(0.0, 1.0)), mean[:, start:start + c], std[:, start:start + c], alpha, mask))
            start += c
        return x


def load_fine_adain(encoder_path: str | Path | None = None, decoder21_path: str | Path | None = None,
                    decoder11_path: str | Path | None = None) -> FineAdaIN:
    """The relu2_1 + relu1_1 :class:`FineAdaIN` (encoders from the relu3_1 file, rtstyle's decoders)."""
    enc_file = resolve_weight("lst/vgg_r31", explicit=encoder_path)
    return FineAdaIN([load_encoder(21, enc_file), load_encoder(11, enc_file)],
                     [load_decoder(21, decoder21_path), load_decoder(11, decoder11_path)])


class AdaINMultiNet(AdaINNet):
    """AdaIN coarse to fine: relu3_1, then relu2_1, then relu1_1 (``adain.multi``).

    The relu3_1 level is :class:`AdaINNet`'s; its output goes through :class:`FineAdaIN`. The style
    inputs keep AdaIN's form, every level's channel statistics concatenated (``(K, 256 + 128 + 64, 1,
    1)``), so interpolating several styles, masks (one region map resized to every level), alpha
    (applied at every level) and both colour modes work as on :class:`AdaINNet`, and it exports like it.

    Args:
        encoder, decoder: the relu3_1 pair.
        fine: the shallower levels.
        controls, max_style_side: as :class:`AdaINNet`.
    """

    def __init__(self, encoder: LSTEncoder, decoder: LSTDecoder, fine: FineAdaIN,
                 controls: AdaINControls | None = None, max_style_side: int | None = 512) -> None:
        super().__init__(encoder, decoder, controls, max_style_side)
        if any(level > encoder.level for level in fine.levels):
            raise ValueError(f"the fine levels {fine.levels} must be shallower than relu{encoder.level // 10}_1")
        self.fine = fine
        self.levels = (encoder.level, *fine.levels)
        self.channels = (encoder.out_channels, *fine.channels)

    def _rebuild(self, controls: AdaINControls) -> "AdaINMultiNet":
        return AdaINMultiNet(self.encoder, self.decoder, self.fine, controls, self.max_style_side)  # type: ignore[arg-type]

    @torch.no_grad()
    def style_stats(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One style image -> every level's channel ``(mean, std)``, concatenated coarse to fine (one pass
        of the relu3_1 encoder gives every level's taps; on the OpenVINO style encoder when installed)."""
        return level_stats(self.encoder, self.levels, self._prepare_style(style), self.encoder_runtime,  # type: ignore[arg-type]
                           self.encoder_precision)

    def forward(self, content: torch.Tensor, s0: torch.Tensor, s1: torch.Tensor, alpha: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        c = self.channels[0]
        x = self.decoder(self.features(content, s0[:, :c], s1[:, :c], alpha, mask))
        x = self.fine(x, s0[:, c:], s1[:, c:], alpha, mask)
        if self.controls.color == "luminance":
            x = luminance_transfer(x, content)
        return x


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


_MULTI_SPEC = replace(
    r31_spec(
        "adain.multi",
        "adain",
        "arbitrary style by AdaIN coarse to fine at relu3_1, relu2_1, relu1_1, no style training; needs --style IMG",
        {"layers": ["relu3_1", "relu2_1", "relu1_1"], "alpha": 1.0, "colour": None},
    ),
    weights="lst/vgg_r31.pth + lst/dec_r31.pth + rtstyle's lst_dec_r21/lst_dec_r11 (shipped)",
)


@register_model(_MULTI_SPEC)
def _adain_multi(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
                 decoder21_path: str | Path | None = None, decoder11_path: str | Path | None = None,
                 controls: AdaINControls | None = None, alpha: float | None = None, color: str | None = None,
                 mask: MaskLike | None = None, color_reference: ImageLike | None = None,
                 max_style_side: int | None = 512, **unknown: Any) -> nn.Module:
    """Build ``adain.multi``: the relu3_1 encoder file gives all three encoders (prefixes); the relu2_1 /
    relu1_1 decoders are rtstyle's (``rtstyle train decoder``)."""
    ctl = resolve_controls(spec, unknown, "max_style_side, encoder_path, decoder_path, decoder21_path, decoder11_path",
                           controls, alpha=alpha, color=color, mask=mask, color_reference=color_reference)
    enc_file = resolve_weight("lst/vgg_r31", explicit=encoder_path)
    net = AdaINMultiNet(load_encoder(31, enc_file), load_decoder(31, decoder_path),
                        load_fine_adain(enc_file, decoder21_path, decoder11_path), ctl, max_style_side)
    net.spec = controls_extra(spec, ctl)  # type: ignore[attr-defined]
    return net


@register_model(_SPEC)
def _adain_r31(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
               **controls: Any) -> nn.Module:
    """Build ``adain.r31`` from the resolved relu3_1 pair; ``controls`` as :func:`build_adain`."""
    return build_adain(spec, load_encoder(31, encoder_path), load_decoder(31, decoder_path), **controls)

"""Whitening and colouring transform (Li et al. 2017, "Universal Style Transfer via Feature
Transforms") with the pretrained normalised-VGG19 encoder: at relu3_1 (``wct.r31``), or coarse to
fine at relu3_1, relu2_1 and relu1_1 (``wct.multi``, the paper's multi-level cascade, with rtstyle's
own relu2_1 / relu1_1 decoders).

The content's relu3_1 features are centred and *whitened* with the eigendecomposition of their
covariance (plus ``eps * I``), then *coloured* with the square root of the style's covariance and
shifted to the style's mean. The style side is computed once by :meth:`WCTNet.encode_style`:
the explicit style inputs are ``(mean (1, C, 1, 1), colouring matrix (C, C))`` per level, then
``alpha (1,)``.

The content side needs an eigendecomposition of a 256x256 matrix every frame. ``torch.linalg.eigh``
has no ONNX/OpenVINO export, so the model runs on the eager backend only
(``supported_backends``); the Stylizer moves it there when another backend is asked for.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..weights import resolve_weight
from ._registry import register_model
from ._spec import ModelSpec
from .lst import LSTDecoder, LSTEncoder, cap_style_image, load_decoder, load_encoder, r31_spec

__all__ = ["WCTNet", "coloring_matrix", "feature_covariance", "wct"]

log = logging.getLogger(__name__)


def feature_covariance(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean ``(1, C, 1, 1)`` and covariance ``(C, C)`` (unbiased) of ``(1, C, H, W)`` features."""
    if feats.dim() != 4 or feats.shape[0] != 1:
        raise ValueError(f"features must be (1, C, H, W), got {tuple(feats.shape)}")
    c = feats.shape[1]
    x = feats[0].reshape(c, -1)
    mean = x.mean(1, keepdim=True)
    d = x - mean
    cov = d @ d.t() / max(1, d.shape[1] - 1)
    return mean.view(1, c, 1, 1), cov


def _sym_power(cov: torch.Tensor, power: float, eps: float) -> torch.Tensor:
    """``(cov + eps I)^power`` through the eigendecomposition (cov symmetric PSD)."""
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    val, vec = torch.linalg.eigh(cov + eps * eye)
    return (vec * val.clamp_min(eps).pow(power)) @ vec.t()


def coloring_matrix(cov: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The style's colouring matrix ``E D^(1/2) E^T`` (symmetric square root of its covariance)."""
    return _sym_power(cov, 0.5, eps)


def wct(content: torch.Tensor, style_mean: torch.Tensor, coloring: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Whiten ``(1, C, H, W)`` content features, then colour them with the style's matrix and mean."""
    mean, cov = feature_covariance(content)
    c, h, w = content.shape[1:]
    whitened = _sym_power(cov, -0.5, eps) @ (content[0].reshape(c, -1) - mean.view(c, 1))
    return (coloring @ whitened).view(1, c, h, w) + style_mean


class WCTNet(nn.Module):
    """WCT between pretrained encoder/decoder pairs, one level or coarse-to-fine over several.

    With ``levels (31,)`` (``wct.r31``) the relu3_1 features are whitened/coloured and decoded. With
    several levels (``wct.multi``: 31, 21, 11) it is the multi-level cascade of Li et al. 2017: the
    output of one level (clamped to [0, 1]) is the input of the next, shallower one, so relu3_1 sets
    the strokes and relu2_1 / relu1_1 then match the painting's finer texture and colour statistics.

    Args:
        encoders: one :class:`~rtstyle.models.lst.LSTEncoder` per level, coarse to fine.
        decoders: the decoder of each level, same order.
        alpha: content-style strength in [0, 1], passed as an input tensor each frame; applied at
            every level to that level's input.
        eps: regulariser added to both covariances.
        max_style_side: style images are downscaled to at most this longer side before encoding.

    Shape:
        ``forward(content, mean_1, coloring_1, ..., mean_L, coloring_L, alpha)``: ``(1, 3, H, W)``
        RGB in [0, 1], H and W multiples of 4 -> ``(1, 3, H, W)`` in ~[0, 1].
    """

    supported_backends: tuple[str, ...] = ("eager",)
    preferred_backend = "eager"

    def __init__(self, encoders: list[LSTEncoder] | LSTEncoder, decoders: list[LSTDecoder] | LSTDecoder,
                 alpha: float = 1.0, eps: float = 1e-5, max_style_side: int | None = 512) -> None:
        super().__init__()
        encs = [encoders] if isinstance(encoders, LSTEncoder) else list(encoders)
        decs = [decoders] if isinstance(decoders, LSTDecoder) else list(decoders)
        if not encs or len(encs) != len(decs):
            raise ValueError(f"one decoder per encoder, got {len(encs)} encoders and {len(decs)} decoders")
        for e, d in zip(encs, decs):
            if e.level != d.level:
                raise ValueError(f"encoder/decoder levels differ: {e.level}/{d.level}")
        if not (0.0 <= float(alpha) <= 1.0):
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        if float(eps) <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.encoders = nn.ModuleList(encs)
        self.decoders = nn.ModuleList(decs)
        self.levels = tuple(e.level for e in encs)
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.max_style_side = max_style_side

    @property
    def encoder(self) -> LSTEncoder:
        """The first (coarsest) level's encoder."""
        return self.encoders[0]  # type: ignore[return-value]

    @property
    def decoder(self) -> LSTDecoder:
        """The first (coarsest) level's decoder."""
        return self.decoders[0]  # type: ignore[return-value]

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Style image ``(1, 3, H, W)`` in [0, 1] -> ``(mean, coloring)`` per level, then ``alpha (1,)``.

        The deepest encoder's taps give every level's features in one pass.
        """
        style = cap_style_image(style, self.max_style_side)
        deepest = max(range(len(self.levels)), key=lambda i: self.levels[i])
        taps = self.encoders[deepest].features(style)  # type: ignore[operator]
        out: list[torch.Tensor] = []
        for level in self.levels:
            mean, cov = feature_covariance(taps[f"r{level}"].double())
            out += [mean.float(), coloring_matrix(cov, self.eps).float()]
        return (*out, torch.tensor([self.alpha]))

    def _level(self, i: int, x: torch.Tensor, mean: torch.Tensor, coloring: torch.Tensor,
               alpha: torch.Tensor) -> torch.Tensor:
        f = self.encoders[i](x)
        if f.shape[0] != 1:
            raise ValueError(f"WCT takes one frame at a time, got a batch of {f.shape[0]}")
        a = alpha.reshape(1, 1, 1, 1)
        return a * wct(f, mean, coloring, self.eps) + (1.0 - a) * f

    def features(self, content: torch.Tensor, mean: torch.Tensor, coloring: torch.Tensor,
                 alpha: torch.Tensor) -> torch.Tensor:
        """Transformed features of the first level, ``alpha * WCT(content) + (1 - alpha) * content``."""
        return self._level(0, content, mean, coloring, alpha)

    def forward(self, content: torch.Tensor, *style: torch.Tensor) -> torch.Tensor:
        if len(style) != 2 * len(self.levels) + 1:
            raise ValueError(f"expected {2 * len(self.levels) + 1} style inputs (mean, coloring per level, alpha), "
                             f"got {len(style)}")
        alpha = style[-1]
        x = content
        for i in range(len(self.levels)):
            if i:
                x = x.clamp(0.0, 1.0)
            x = self.decoders[i](self._level(i, x, style[2 * i], style[2 * i + 1], alpha))
        return x


_SPEC = r31_spec(
    "wct.r31",
    "wct",
    "arbitrary style by whitening/colouring at relu3_1 (Li et al. 2017), no training; eager only",
    {"layer": "relu3_1", "alpha": 1.0, "eps": 1e-5},
)


_OPTIONS = "alpha, eps, max_style_side, encoder_path, decoder_path"


def _build(spec: ModelSpec, levels: tuple[int, ...], alpha: float, eps: float, max_style_side: int | None,
           encoder_path: str | Path | None, decoder_paths: dict[int, str | Path | None], unknown: dict[str, Any],
           known: str) -> nn.Module:
    """A :class:`WCTNet` over ``levels``: every encoder from the relu3_1 file (prefixes), the decoder of each
    level from its explicit path or its default (:func:`~rtstyle.models.lst.load_decoder`)."""
    if unknown:
        raise TypeError(f"{spec.name}: unknown options {sorted(unknown)}; known: {known}")
    enc_file = resolve_weight("lst/vgg_r31", explicit=encoder_path)
    net = WCTNet([load_encoder(level, enc_file) for level in levels],
                 [load_decoder(level, decoder_paths.get(level)) for level in levels],
                 alpha=alpha, eps=eps, max_style_side=max_style_side)
    net.spec = replace(spec, extra=dict(spec.extra, alpha=float(alpha), eps=float(eps)))  # type: ignore[attr-defined]
    return net


@register_model(_SPEC)
def _wct_r31(
    spec: ModelSpec,
    *,
    alpha: float = 1.0,
    eps: float = 1e-5,
    max_style_side: int | None = 512,
    encoder_path: str | Path | None = None,
    decoder_path: str | Path | None = None,
    **unknown: Any,
) -> nn.Module:
    """Build ``wct.r31``; weights resolved by :func:`rtstyle.weights.resolve_weight`."""
    return _build(spec, (31,), alpha, eps, max_style_side, encoder_path, {31: decoder_path}, unknown, _OPTIONS)


_MULTI_SPEC = replace(
    r31_spec(
        "wct.multi",
        "wct",
        "arbitrary style by whitening/colouring coarse to fine at relu3_1, relu2_1, relu1_1 (Li et al. 2017), "
        "no style training; eager only",
        {"layers": ["relu3_1", "relu2_1", "relu1_1"], "alpha": 1.0, "eps": 1e-5},
    ),
    weights="lst/vgg_r31.pth + lst/dec_r31.pth + rtstyle's lst_dec_r21/lst_dec_r11 (shipped)",
)


@register_model(_MULTI_SPEC)
def _wct_multi(
    spec: ModelSpec,
    *,
    alpha: float = 1.0,
    eps: float = 1e-5,
    max_style_side: int | None = 512,
    encoder_path: str | Path | None = None,
    decoder_path: str | Path | None = None,
    decoder21_path: str | Path | None = None,
    decoder11_path: str | Path | None = None,
    **unknown: Any,
) -> nn.Module:
    """Build ``wct.multi``: the relu3_1 encoder file gives all three encoders (prefixes), the relu3_1
    decoder is third-party, the relu2_1 / relu1_1 decoders are rtstyle's (``rtstyle train decoder``)."""
    return _build(spec, (31, 21, 11), alpha, eps, max_style_side, encoder_path,
                  {31: decoder_path, 21: decoder21_path, 11: decoder11_path}, unknown,
                  _OPTIONS + ", decoder21_path, decoder11_path")

"""Whitening and colouring transform (Li et al. 2017, "Universal Style Transfer via Feature
Transforms") at relu3_1 with the pretrained normalised-VGG19 encoder and its decoder.

The content's relu3_1 features are centred and *whitened* with the eigendecomposition of their
covariance (plus ``eps * I``), then *coloured* with the square root of the style's covariance and
shifted to the style's mean. The style side is computed once by :meth:`WCTNet.encode_style`:
the explicit style inputs are ``(mean (1, C, 1, 1), colouring matrix (C, C), alpha (1,))``.

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
    """WCT at relu3_1 between the pretrained encoder and decoder.

    Args:
        encoder: relu3_1 :class:`~rtstyle.models.lst.LSTEncoder`.
        decoder: relu3_1 :class:`~rtstyle.models.lst.LSTDecoder`.
        alpha: content-style strength in [0, 1], passed as an input tensor each frame.
        eps: regulariser added to both covariances.
        max_style_side: style images are downscaled to at most this longer side before encoding.

    Shape:
        ``forward(content, mean, coloring, alpha)``: ``(1, 3, H, W)`` RGB in [0, 1], H and W
        multiples of 4 -> ``(1, 3, H, W)`` in ~[0, 1].
    """

    supported_backends: tuple[str, ...] = ("eager",)
    preferred_backend = "eager"

    def __init__(self, encoder: LSTEncoder, decoder: LSTDecoder, alpha: float = 1.0, eps: float = 1e-5,
                 max_style_side: int | None = 512) -> None:
        super().__init__()
        if encoder.level != 31 or decoder.level != 31:
            raise ValueError(f"wct.r31 needs the relu3_1 encoder and decoder, got levels {encoder.level}/{decoder.level}")
        if not (0.0 <= float(alpha) <= 1.0):
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        if float(eps) <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.encoder = encoder
        self.decoder = decoder
        self.alpha = float(alpha)
        self.eps = float(eps)
        self.max_style_side = max_style_side

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Style image ``(1, 3, H, W)`` in [0, 1] -> ``(mean (1, C, 1, 1), coloring (C, C), alpha (1,))``."""
        style = cap_style_image(style, self.max_style_side)
        mean, cov = feature_covariance(self.encoder(style).double())
        color = coloring_matrix(cov, self.eps).float()
        return mean.float(), color, torch.tensor([self.alpha])

    def features(self, content: torch.Tensor, mean: torch.Tensor, coloring: torch.Tensor,
                 alpha: torch.Tensor) -> torch.Tensor:
        """Transformed relu3_1 features ``alpha * WCT(content) + (1 - alpha) * content``."""
        f = self.encoder(content)
        if f.shape[0] != 1:
            raise ValueError(f"wct.r31 takes one frame at a time, got a batch of {f.shape[0]}")
        a = alpha.reshape(1, 1, 1, 1)
        return a * wct(f, mean, coloring, self.eps) + (1.0 - a) * f

    def forward(self, content: torch.Tensor, mean: torch.Tensor, coloring: torch.Tensor,
                alpha: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.features(content, mean, coloring, alpha))


_SPEC = r31_spec(
    "wct.r31",
    "wct",
    "arbitrary style by whitening/colouring at relu3_1 (Li et al. 2017), no training; eager only",
    {"layer": "relu3_1", "alpha": 1.0, "eps": 1e-5},
)


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
    if unknown:
        raise TypeError(f"wct.r31: unknown options {sorted(unknown)}; known: alpha, eps, max_style_side, "
                        "encoder_path, decoder_path")
    net = WCTNet(load_encoder(31, encoder_path), load_decoder(31, decoder_path), alpha=alpha, eps=eps,
                 max_style_side=max_style_side)
    net.spec = replace(spec, extra=dict(spec.extra, alpha=float(alpha), eps=float(eps)))  # type: ignore[attr-defined]
    return net

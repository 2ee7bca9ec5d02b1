"""Perceptual losses and the feature statistics they compare: Gram matrices, channel mean/std, TV.

Features are VGG16 activations (:class:`rtstyle.nn.vgg.VGG16Features`) at torchvision's magnitude.
The Gram matrix is normalised by ``C*H*W`` and the standard deviation is ``sqrt(var + eps)``, so the
training losses and the quality metrics (:mod:`rtstyle.quality`) give comparable numbers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["MEANSTD_EPS", "channel_mean_std", "content_loss", "gram", "gram_style_loss", "meanstd_style_loss",
           "tv_loss"]

#: ``eps`` of the standard deviations ``sqrt(var + eps)`` of the mean/std style loss and metric.
MEANSTD_EPS = 1e-5


def gram(f: torch.Tensor, upcast: bool = True) -> torch.Tensor:
    """Gram matrix normalised by ``C*H*W``.

    Args:
        f: feature maps.
        upcast: compute in float32 (losses under mixed precision); ``False`` keeps ``f``'s dtype
            (inside a model that a backend may run in half precision).

    Shape:
        f: ``(N, C, H, W)`` -> ``(N, C, C)``.
    """
    n, c, h, w = f.shape
    x = f.reshape(n, c, h * w)
    if upcast:
        x = x.float()
    return torch.bmm(x, x.transpose(1, 2)) / (c * h * w)


def channel_mean_std(f: torch.Tensor, eps: float = MEANSTD_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and ``sqrt(var + eps)`` (unbiased variance) of float32 features.

    Shape:
        f: ``(N, C, H, W)`` -> two ``(N, C)``.
    """
    f = f.float()
    return f.mean((2, 3)), (f.var((2, 3)) + eps).sqrt()


def content_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MSE between two feature maps (float32)."""
    return F.mse_loss(a.float(), b.float())


def gram_style_loss(feats: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the MSE between Gram matrices (targets broadcast over the batch)."""
    loss = torch.zeros((), device=next(iter(feats.values())).device)
    for k, g_t in target_grams.items():
        g = gram(feats[k])
        loss = loss + F.mse_loss(g, g_t.expand_as(g))
    return loss


def meanstd_style_loss(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                       eps: float = MEANSTD_EPS) -> torch.Tensor:
    """AdaIN-style loss: MSE of per-channel means plus MSE of per-channel stds (targets broadcast)."""
    loss = torch.zeros((), device=next(iter(feats.values())).device)
    for k, t in targets.items():
        m, s = channel_mean_std(feats[k], eps)
        m_t, s_t = channel_mean_std(t, eps)
        loss = loss + F.mse_loss(m, m_t.expand(m.shape[0], -1))
        loss = loss + F.mse_loss(s, s_t.expand(s.shape[0], -1))
    return loss


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation (mean absolute neighbour difference)."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()

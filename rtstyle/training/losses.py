"""Perceptual losses: content, Gram style, mean/std style, total variation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gram", "content_loss", "gram_style_loss", "meanstd_style_loss", "tv_loss"]


def gram(f: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by ``C*H*W``.

    Shape:
        f: ``(N, C, H, W)`` -> ``(N, C, C)``.
    """
    n, c, h, w = f.shape
    x = f.reshape(n, c, h * w).float()
    return torch.bmm(x, x.transpose(1, 2)) / (c * h * w)


def content_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(a.float(), b.float())


def gram_style_loss(feats: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the MSE between Gram matrices (targets broadcast over the batch)."""
    loss = torch.zeros((), device=next(iter(feats.values())).device)
    for k, g_t in target_grams.items():
        g = gram(feats[k])
        loss = loss + F.mse_loss(g, g_t.expand_as(g))
    return loss


def meanstd_style_loss(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], eps: float = 1e-5) -> torch.Tensor:
    """AdaIN-style loss: MSE of per-channel means plus MSE of per-channel stds."""
    loss = torch.zeros((), device=next(iter(feats.values())).device)
    for k, t in targets.items():
        f = feats[k].float()
        t = t.float()
        loss = loss + F.mse_loss(f.mean((2, 3)), t.mean((2, 3)).expand(f.shape[0], -1))
        loss = loss + F.mse_loss((f.var((2, 3)) + eps).sqrt(), (t.var((2, 3)) + eps).sqrt().expand(f.shape[0], -1))
    return loss


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation (mean absolute neighbour difference)."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()

from __future__ import annotations

import torch

from rtstyle.nn.losses import gram, gram_style_loss, meanstd_style_loss, tv_loss


def test_gram_matches_direct_sum() -> None:
    f = torch.randn(2, 3, 4, 5)
    g = gram(f)
    direct = torch.einsum("nchw,ndhw->ncd", f, f) / (3 * 4 * 5)
    assert torch.allclose(g, direct, atol=1e-6)


def test_style_losses_zero_on_self_and_positive_otherwise() -> None:
    a = {"relu1_2": torch.randn(1, 4, 8, 8)}
    b = {"relu1_2": torch.randn(1, 4, 8, 8) * 3 + 1}
    assert gram_style_loss(a, {k: gram(v) for k, v in a.items()}).item() < 1e-10
    assert gram_style_loss(a, {k: gram(v) for k, v in b.items()}).item() > 0.1
    assert meanstd_style_loss(a, a).item() < 1e-10
    assert meanstd_style_loss(a, b).item() > 0.1


def test_tv_zero_on_flat() -> None:
    assert tv_loss(torch.ones(1, 3, 8, 8)).item() == 0
    assert tv_loss(torch.rand(1, 3, 8, 8)).item() > 0

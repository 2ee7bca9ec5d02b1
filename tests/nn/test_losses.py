"""rtstyle.nn.losses: Gram matrices, channel statistics and the losses built on them."""
from __future__ import annotations

import torch

from rtstyle.nn.losses import MEANSTD_EPS, channel_mean_std, gram, meanstd_style_loss


def test_gram_upcasts_for_losses_and_keeps_the_dtype_inside_models() -> None:
    f = torch.randn(2, 4, 3, 5)
    g = gram(f)
    ref = torch.einsum("nchw,ndhw->ncd", f, f) / (4 * 3 * 5)
    torch.testing.assert_close(g, ref)
    half = f.to(torch.bfloat16)
    assert gram(half).dtype == torch.float32 and gram(half, upcast=False).dtype == torch.bfloat16
    torch.testing.assert_close(gram(half, upcast=False).float(), gram(half), rtol=2e-2, atol=2e-2)


def test_channel_statistics_and_the_meanstd_loss_agree() -> None:
    torch.manual_seed(0)
    f, t = torch.randn(3, 8, 6, 6), torch.randn(1, 8, 6, 6) * 2 + 1
    m, s = channel_mean_std(f)
    torch.testing.assert_close(m, f.mean((2, 3)))
    torch.testing.assert_close(s, (f.var((2, 3)) + MEANSTD_EPS).sqrt())
    mt, st = channel_mean_std(t)
    want = ((m - mt) ** 2).mean() + ((s - st) ** 2).mean()
    torch.testing.assert_close(meanstd_style_loss({"a": f}, {"a": t}), want)
    assert float(meanstd_style_loss({"a": t}, {"a": t})) == 0.0

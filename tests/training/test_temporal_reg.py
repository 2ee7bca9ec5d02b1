"""The compound temporal regulariser: exact for equivariant nets, large for flickering ones; trainer plumbing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rtstyle.training.temporal import TemporalReg, compound_temporal_loss, random_affine, warp


def _shift_theta(n: int, h: int, w: int, dx: float, dy: float) -> torch.Tensor:
    """Output pixel (x, y) sampled from input (x + dx, y + dy): a pure translation, in pixels."""
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 2.0 * dx / w
    theta[:, 1, 2] = 2.0 * dy / h
    return theta


@pytest.fixture()
def photo(content_photo: np.ndarray, rgb_tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return rgb_tensor(content_photo)  # (1, 3, 120, 160) in [0, 1]


def test_integer_shift_is_a_pixel_shift_and_mask_drops_invented_border(photo: torch.Tensor) -> None:
    h, w = photo.shape[-2:]
    out, mask = warp(photo, _shift_theta(1, h, w, 5, -3))
    # out[y, x] = in[y - 3, x + 5] where that lies inside the image
    assert torch.allclose(out[..., 3:, : w - 5], photo[..., : h - 3, 5:], atol=1e-5)
    m = mask[0, 0]
    assert m[3:, : w - 5].all() and not m[:3].any() and not m[:, w - 5 :].any()
    _, mask2 = warp(photo, _shift_theta(1, h, w, 5, -3), margin=2)
    assert int(mask2.sum()) == (h - 3 - 2 - 2) * (w - 5 - 2 - 2)  # the frame's own edge goes too


def test_identity_net_scores_zero(photo: torch.Tensor) -> None:
    reg = TemporalReg(shift=6, rotate=3, zoom=0.05, noise=0.0)
    loss = compound_temporal_loss(lambda z: z, photo, photo, reg, torch.Generator().manual_seed(0))
    assert float(loss) < 1e-10


def test_translation_equivariant_net_scores_zero_on_integer_shifts(photo: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                        nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect"), nn.Sigmoid())
    h, w = photo.shape[-2:]
    reg = TemporalReg(noise=0.0, margin=2)  # the net's receptive field reaches 2 px: its border is excluded
    with torch.no_grad():
        y = net(photo)
        exact = compound_temporal_loss(net, photo, y, reg, theta=_shift_theta(1, h, w, 4, 3))
        # the same net on a sub-pixel shift and rotation is not exactly equivariant (bilinear
        # resampling does not commute with a nonlinear net), but nearly; a flickering net is not
        subpix = compound_temporal_loss(net, photo, y, TemporalReg(shift=2, rotate=1, noise=0.0),
                                        torch.Generator().manual_seed(1))

        def noisy(z: torch.Tensor) -> torch.Tensor:
            return (net(z) + 0.1 * torch.randn_like(z)).clamp(0, 1)

        flicker = compound_temporal_loss(noisy, photo, noisy(photo), reg, theta=_shift_theta(1, h, w, 4, 3))
    assert float(exact) < 1e-10
    assert float(subpix) < 1e-3
    assert float(flicker) > 100 * max(float(subpix), 1e-8) and float(flicker) > 5e-3


def test_noise_term_penalises_a_net_that_passes_noise_through(photo: torch.Tensor) -> None:
    theta = _shift_theta(1, *photo.shape[-2:], 0, 0)
    reg = TemporalReg(noise=0.05, margin=0)
    ident = compound_temporal_loss(lambda z: z, photo, photo, reg, torch.Generator().manual_seed(0), theta=theta)
    # the identity copies the noise into its output: loss = noise variance
    assert float(ident) == pytest.approx(0.05 ** 2, rel=0.1)


def test_jpeg_term_penalises_a_net_that_passes_codec_artefacts_through(photo: torch.Tensor) -> None:
    theta = _shift_theta(1, *photo.shape[-2:], 0, 0)
    clean = compound_temporal_loss(lambda z: z, photo, photo, TemporalReg(noise=0.0, margin=0), theta=theta)
    coded = compound_temporal_loss(lambda z: z, photo, photo, TemporalReg(noise=0.0, margin=0, jpeg=10),
                                   torch.Generator().manual_seed(0), theta=theta)
    assert float(clean) < 1e-12 and float(coded) > 1e-5  # the identity copies the artefacts into its output
    # a net that ignores fine detail (a 5x5 box blur) passes little of the 8x8 block noise on
    blur = lambda z: torch.nn.functional.avg_pool2d(z, 5, 1, 2, count_include_pad=False)  # noqa: E731
    y = blur(photo)
    blurred = compound_temporal_loss(blur, photo, y, TemporalReg(noise=0.0, margin=3, jpeg=10),
                                     torch.Generator().manual_seed(0), theta=theta)
    assert float(blurred) < 0.5 * float(coded)


def test_jpeg_artefacts_are_blocky_and_keep_the_picture(photo: torch.Tensor) -> None:
    from rtstyle.training.temporal import jpeg_artefacts

    y = jpeg_artefacts(photo.repeat(2, 1, 1, 1), 10, torch.Generator().manual_seed(0))
    assert y.shape == (2, *photo.shape[1:]) and y.dtype == photo.dtype
    err = (y - photo).abs()
    assert 0.003 < float(err.mean()) < 0.1
    # the codec's 8x8 grid: the step across a block boundary exceeds the step inside a block
    d = (y[..., 1:] - y[..., :-1]).abs().mean(dim=(0, 1, 2))
    cols = torch.arange(d.shape[0])
    assert float(d[cols % 8 == 7].mean()) > float(d[cols % 8 == 3].mean())


def test_random_affine_respects_bounds() -> None:
    reg = TemporalReg(shift=3, rotate=0, zoom=0)
    th = random_affine(500, 100, 200, reg, torch.Generator().manual_seed(0))
    assert th.shape == (500, 2, 3)
    assert torch.allclose(th[:, :, :2], torch.eye(2).expand(500, 2, 2))
    assert (th[:, 0, 2].abs() <= 2 * 3 / 200 + 1e-6).all() and (th[:, 1, 2].abs() <= 2 * 3 / 100 + 1e-6).all()
    assert th[:, 0, 2].abs().max() > 2 * 2.5 / 200  # the range is used, not just its centre
    rot = random_affine(200, 64, 64, TemporalReg(shift=0, rotate=2, zoom=0), torch.Generator().manual_seed(0))
    ang = torch.atan2(rot[:, 1, 0], rot[:, 0, 0]).abs().max()
    assert np.degrees(float(ang)) <= 2 + 1e-4 and np.degrees(float(ang)) > 1.5


def test_bad_arguments_are_refused(photo: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="shift"):
        TemporalReg(shift=-1)
    with pytest.raises(ValueError, match="jpeg"):
        TemporalReg(jpeg=100)
    with pytest.raises(ValueError, match="theta"):
        warp(photo, torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="N, C, H, W"):
        warp(photo[0], torch.zeros(1, 2, 3))


@pytest.fixture()
def tiny_data(shared: Path, tmp_path: Path) -> Path:
    import cv2

    d = tmp_path / "data"
    d.mkdir()
    for i, p in enumerate(sorted((shared / "media" / "photos" / "train_256").glob("*"))[:4]):
        cv2.imwrite(str(d / f"{i}.jpg"), cv2.resize(cv2.imread(str(p)), (64, 64)))
    return d


def test_trainer_options_plumb_through(shared: Path, vgg16_path: Path, tiny_data: Path, tmp_path: Path) -> None:
    from rtstyle.models import create_model
    from rtstyle.training.johnson import JohnsonTrainConfig, train_johnson

    style = str(shared / "media" / "styles" / "wave.jpg")
    base = JohnsonTrainConfig(style=style, data=str(tiny_data), out=str(tmp_path / "a"), name="johnson.tiny_a",
                              vgg=str(vgg16_path), steps=2, batch=1, size=48, style_size=64, width=4, n_res=1,
                              checkpoint_every=100, preview_every=100, command="test")
    first = train_johnson(base, progress=False)
    assert "temporal" not in json.loads((tmp_path / "a" / "history.json").read_text())[0]

    # init_from with lr 0: the fine-tune starts from (and here stays at) the given net's weights
    cfg = JohnsonTrainConfig(style=style, data=str(tiny_data), out=str(tmp_path / "b"), name="johnson.tiny_b",
                             vgg=str(vgg16_path), steps=2, batch=1, size=48, style_size=64, width=4, n_res=1, lr=0.0,
                             temporal_weight=1e6, temporal_shift=3.0, temporal_noise=0.02, temporal_jpeg=30,
                             init_from=str(first),
                             checkpoint_every=100, preview_every=100, command="test")
    second = train_johnson(cfg, progress=False)
    hist = json.loads((tmp_path / "b" / "history.json").read_text())
    assert all(h["temporal"] > 0 for h in hist)
    a, b = create_model(first), create_model(second)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    extra = b.spec.extra
    assert extra["weights"]["temporal"] == 1e6 and extra["initialised_from"] == str(first)
    assert extra["temporal_regulariser"]["shift_px"] == 3.0 and extra["temporal_regulariser"]["noise_std"] == 0.02
    assert extra["temporal_regulariser"]["jpeg_lowest_quality"] == 30

    cfg.out, cfg.width = str(tmp_path / "c"), 8
    with pytest.raises(ValueError, match="does not match"):
        train_johnson(cfg, progress=False)

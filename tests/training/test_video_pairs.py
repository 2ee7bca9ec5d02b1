"""The video temporal loss (output and feature level): frame pairs with exact and estimated flow, crops
that keep the flow's meaning, ~0 for a net whose output moves with the scene and large for one that
flickers or sticks to the screen, and the trainers' plumbing (flags, history, the spec's record of the
clips, the evaluation's refusal)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import small_training_folders, train_tiny_with_video
from rtstyle.temporal.warp import backward_warp
from rtstyle.training.temporal import TemporalOptions, TemporalTerm, trained_clips
from rtstyle.training.video_pairs import (FlowPair, FlowPairSampler, downsample_flow, flow_warp, load_flow_pairs,
                                          pairs_from_frames, video_temporal_loss, video_temporal_losses)


@pytest.fixture(scope="module")
def exact_pairs(shared: Path):  # type: ignore[no-untyped-def]
    """The camera-motion clip with exact flow in ``shared/media/flow/synthetic`` (make_synthetic_flow_seq.py)."""
    return load_flow_pairs([shared / "media" / "flow" / "synthetic"], max_frames=5)


def _shifted_pair(photo: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``b`` is ``a`` moved by (dx, dy) whole pixels: the exact flow a -> b is (dx, dy) everywhere."""
    h, w = photo.shape[:2]
    a = np.ascontiguousarray(photo[8 : h - 8, 8 : w - 8])
    b = np.ascontiguousarray(photo[8 - dy : h - 8 - dy, 8 - dx : w - 8 - dx])
    flow = np.zeros((*a.shape[:2], 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return a, b, flow


def test_flow_warp_is_backward_warp_in_torch(content_photo: np.ndarray,
                                             rgb_tensor) -> None:  # type: ignore[no-untyped-def]
    img = content_photo.astype(np.float32) / 255.0
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.stack([3.3 * np.sin(yy / 17.0), -2.1 * np.cos(xx / 23.0)], -1).astype(np.float32)
    want = backward_warp(img, flow)
    flow_t = torch.from_numpy(flow).permute(2, 0, 1)[None]
    got = flow_warp(rgb_tensor(content_photo), flow_t)[0].permute(1, 2, 0).numpy()
    inner = (slice(4, h - 4), slice(4, w - 4))  # the two differ only in how they fill outside the frame
    np.testing.assert_allclose(got[inner], want[inner], atol=2e-3)


def test_exact_flow_folder_gives_exact_pairs(exact_pairs) -> None:  # type: ignore[no-untyped-def]
    assert len(exact_pairs) == 4 and all(q.exact and q.source == "synthetic" for q in exact_pairs)
    for q in exact_pairs:  # the flow's convention: b warped by the flow a -> b reproduces a
        err = np.abs(backward_warp(q.b.astype(np.float32), q.flow) - q.a.astype(np.float32)).mean(-1)
        assert err[q.mask].mean() < 4.0 and q.mask.mean() > 0.8


def test_sampler_crops_and_flips_keep_the_flow_meaning(exact_pairs) -> None:  # type: ignore[no-untyped-def]
    sampler = FlowPairSampler(exact_pairs, 64, torch.Generator().manual_seed(0))
    a, b, flow, mask = sampler.batch(8)
    assert a.shape == b.shape == (8, 3, 64, 64) and flow.shape == (8, 2, 64, 64) and mask.shape == (8, 1, 64, 64)
    err = (flow_warp(b, flow) - a).abs().mean(1, keepdim=True)
    assert float((err * mask).sum() / mask.sum()) < 4.0 / 255.0
    # against the wrong flow (the x component not mirrored with the crop) the frames do not match
    wrong = flow.clone()
    wrong[:, 0] = wrong[:, 0].abs()
    err_wrong = (flow_warp(b, wrong) - a).abs().mean(1, keepdim=True)
    assert float((err_wrong * mask).sum() / mask.sum()) > 2 * float((err * mask).sum() / mask.sum())


def test_a_pair_smaller_than_the_crop_is_upscaled_with_its_flow(content_photo: np.ndarray) -> None:
    # a wide clip (here 160x96) with crops of 128 px: one batch mixes it with a larger pair
    wide = content_photo[12:108]
    a, b, flow = _shifted_pair(wide, 3, 1)
    small = FlowPair(a, b, flow, np.ones(a.shape[:2], bool), "wide", True)
    big_photo = cv2.resize(content_photo, (320, 240), interpolation=cv2.INTER_LINEAR)
    a2, b2, f2 = _shifted_pair(big_photo, 2, 2)
    big = FlowPair(a2, b2, f2, np.ones(a2.shape[:2], bool), "big", True)
    sampler = FlowPairSampler([small, big], 128, torch.Generator().manual_seed(0))
    at, bt, ft, mt = sampler.batch(8)
    assert at.shape == (8, 3, 128, 128) and ft.shape == (8, 2, 128, 128)
    # the upscaled pair's flow grew with it: b warped by it still reproduces a
    err = (flow_warp(bt, ft) - at).abs().mean(1, keepdim=True)
    assert float((err * mt).sum() / mt.sum()) < 6.0 / 255.0
    scaled = sampler._at_least(0, 128)
    assert min(scaled.a.shape[:2]) == 128
    assert abs(float(np.abs(scaled.flow[..., 0]).mean()) - 3 * 128 / a.shape[0]) < 0.1


def test_loss_is_zero_when_the_output_moves_with_the_scene_and_large_otherwise(content_photo: np.ndarray) -> None:
    a, b, flow = _shifted_pair(content_photo, 3, -2)
    (pair,) = pairs_from_frames([a, b], "shift", flows=[flow])
    at, bt, ft, mt = FlowPairSampler([pair], 96, torch.Generator().manual_seed(1)).batch(4)
    identity = video_temporal_loss(lambda z: z, at, bt, ft, mt)
    g = torch.Generator().manual_seed(2)
    flicker = video_temporal_loss(lambda z: (z + 0.05 * torch.randn(z.shape, generator=g)).clamp(0, 1), at, bt, ft, mt)
    texture = torch.rand(1, 3, 96, 96, generator=g)
    sticks = video_temporal_loss(lambda z: 0.5 * z + 0.5 * texture, at, bt, ft, mt)  # strokes fixed to the screen
    assert float(identity) < 1e-10
    assert float(flicker) > 1e-3 and float(sticks) > 1e-3


def test_downsampled_flow_is_in_feature_pixels_and_the_mask_is_all_or_nothing() -> None:
    flow = torch.zeros(1, 2, 16, 16)
    flow[:, 0], flow[:, 1] = 8.0, -4.0
    mask = torch.ones(1, 1, 16, 16)
    mask[0, 0, 5, 9] = 0  # one occluded pixel voids its whole 4x4 cell, and only that one
    f4, m4 = downsample_flow(flow, mask, 4)
    assert f4.shape == (1, 2, 4, 4) and torch.allclose(f4[:, 0], torch.full((1, 4, 4), 2.0))
    assert torch.allclose(f4[:, 1], torch.full((1, 4, 4), -1.0))
    assert m4[0, 0, 1, 2] == 0 and m4.sum() == 15
    with pytest.raises(ValueError, match="multiple"):
        downsample_flow(flow[..., :15], mask[..., :15], 4)


def test_feature_loss_is_zero_when_features_move_with_the_scene_and_large_otherwise(content_photo: np.ndarray) -> None:
    # a whole-pixel shift by a multiple of the features' stride: encoder features that move with the scene
    # (here a 4x4 average of the frame) match exactly through the downscaled flow
    a, b, flow = _shifted_pair(content_photo, 4, -8)
    (pair,) = pairs_from_frames([a, b], "shift", flows=[flow])
    at, bt, ft, mt = FlowPairSampler([pair], 96, torch.Generator().manual_seed(3)).batch(4)

    def moves(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.nn.functional.avg_pool2d(z, 4), z

    out_loss, feat_loss = video_temporal_losses(moves, at, bt, ft, mt)
    assert float(out_loss) < 1e-10 and float(feat_loss) < 1e-8
    assert float(out_loss) == pytest.approx(float(video_temporal_loss(lambda z: z, at, bt, ft, mt)), abs=1e-12)
    g = torch.Generator().manual_seed(4)
    texture = torch.rand(1, 3, 24, 24, generator=g)

    def sticks(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # features fixed to the screen, output fine
        return 0.5 * torch.nn.functional.avg_pool2d(z, 4) + 0.5 * texture, z

    out_s, feat_s = video_temporal_losses(sticks, at, bt, ft, mt)
    assert float(out_s) < 1e-10 and float(feat_s) > 1e-3
    with pytest.raises(ValueError, match="whole factor"):
        video_temporal_losses(lambda z: (z[..., :7, :7], z), at, bt, ft, mt)


def test_johnson_encode_decode_is_the_forward_pass() -> None:
    from rtstyle.models.johnson import TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(4, 2).eval()
    x = torch.rand(1, 3, 32, 48) * 255
    with torch.no_grad():
        feats = net.encode(x)
        assert feats.shape == (1, 16, 8, 12)
        torch.testing.assert_close(net.decode(feats), net(x))


def test_estimated_flow_on_a_real_clip(shared: Path) -> None:
    pairs = load_flow_pairs([shared / "media" / "videos" / "imageio_realshort.mp4"], max_frames=4, stride=2)
    assert len(pairs) == 2 and not pairs[0].exact and pairs[0].a.shape[1] <= 320
    for q in pairs:
        assert 0.3 < q.mask.mean() <= 1.0
        err = np.abs(backward_warp(q.b.astype(np.float32), q.flow) - q.a.astype(np.float32)).mean(-1)
        assert err[q.mask].mean() < err[~q.mask].mean() if (~q.mask).any() else True


def test_options_are_checked_and_recorded(shared: Path) -> None:
    with pytest.raises(ValueError, match="needs at least one"):
        TemporalOptions(temporal_video_weight=1.0).temporal_reg()
    with pytest.raises(ValueError, match="video weight"):
        TemporalOptions(temporal_video_weight=-1.0).temporal_reg()
    with pytest.raises(FileNotFoundError):
        load_flow_pairs([shared / "no_such_clip.mp4"])
    clip = str(shared / "media" / "flow" / "synthetic")
    extra = TemporalOptions(temporal_video=(clip,), temporal_video_weight=5.0).record_temporal({})
    assert extra["weights"]["temporal_video"] == 5.0 and extra["temporal_video"]["clips"] == ["synthetic"]
    assert trained_clips(extra) == {"synthetic"} and trained_clips(None) == set()
    off = TemporalOptions().record_temporal({})
    assert off["temporal_video"] is None and trained_clips(off) == set()


def test_term_adds_the_video_loss(shared: Path) -> None:
    from rtstyle.training._loop import resolve_amp

    amp = resolve_amp("fp32", "cpu")
    opts = TemporalOptions(temporal_video=(str(shared / "media" / "flow" / "synthetic"),), temporal_video_weight=10.0,
                           temporal_video_frames=4)
    term = TemporalTerm(opts, 0)
    x = torch.rand(2, 3, 48, 48)
    logged: dict[str, float] = {}
    # identity net: the output moves with the scene (the clip's frames are resampled from one photo each,
    # so a frame warped by the exact flow matches the next to interpolation error only, < 4/255)
    total = term.add(torch.tensor(1.0), logged, lambda z: z, x, x, amp)
    assert "temporal" not in logged and 0 <= logged["temporal_video"] < 10.0 * (4 / 255) ** 2
    assert float(total) == pytest.approx(1.0 + logged["temporal_video"])
    still = logged["temporal_video"]
    total = term.add(torch.tensor(1.0), logged, lambda z: z * 0 + 127.5 + 60 * torch.randn_like(z), x, x, amp)
    assert logged["temporal_video"] > max(0.3, 100 * still)
    assert float(total) == pytest.approx(1.0 + logged["temporal_video"])


def test_feature_term_is_refused_without_clips_or_an_encoder_and_recorded(shared: Path) -> None:
    with pytest.raises(ValueError, match="needs at least one"):
        TemporalOptions(temporal_feature_weight=1.0).temporal_reg()
    with pytest.raises(ValueError, match="feature weight"):
        TemporalOptions(temporal_feature_weight=-1.0).temporal_reg()
    clip = str(shared / "media" / "flow" / "synthetic")
    opts = TemporalOptions(temporal_video=(clip,), temporal_feature_weight=3.0, temporal_video_frames=4)
    with pytest.raises(ValueError, match="encoder"):
        TemporalTerm(opts, 0)  # MSG-Net's and MetaNet's trainers: no encoder to compare
    with pytest.raises(ValueError, match="encoder"):
        opts.check_temporal(features=False)  # what those trainers check first, before any data loads
    opts.check_temporal(features=True)
    extra = opts.record_temporal({})
    assert extra["weights"]["temporal_feature"] == 3.0 and extra["temporal_video"]["feature_weight"] == 3.0
    assert "ReCoNet" in extra["temporal_video"]["feature_method"] and trained_clips(extra) == {"synthetic"}


def test_johnson_trainer_trains_with_the_feature_term(shared: Path, vgg16_path: Path, tmp_path: Path) -> None:
    from rtstyle.cli import main
    from rtstyle.models import create_model

    content, _ = small_training_folders(shared, tmp_path, styles=(), photos=3)
    out = tmp_path / "run"
    assert main(["-q", "train", "johnson", "--style", str(shared / "media" / "styles" / "wave.jpg"),
                 "--data", str(content), "--out", str(out), "--name", "johnson.tiny_feat", "--vgg", str(vgg16_path),
                 "--steps", "2", "--batch", "1", "--size", "48", "--style-size", "64", "--width", "4", "--n-res", "1",
                 "--preview-every", "0", "--temporal-video", str(shared / "media" / "flow" / "synthetic"),
                 "--temporal-video-weight", "1e6", "--temporal-feature-weight", "1e4",
                 "--temporal-video-frames", "4"]) == 0
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 2 and all(h["temporal_video"] > 0 and h["temporal_feature"] > 0 for h in hist)
    (weights,) = out.glob("*.safetensors")
    video = create_model(str(weights)).spec.extra["temporal_video"]
    assert video["weight"] == 1e6 and video["feature_weight"] == 1e4 and video["clips"] == ["synthetic"]


def test_johnson_trainer_trains_and_records_the_clips(shared: Path, vgg16_path: Path, tmp_path: Path) -> None:
    from rtstyle.models import create_model

    content, _ = small_training_folders(shared, tmp_path, styles=(), photos=3)
    weights = train_tiny_with_video(shared, vgg16_path, content, tmp_path / "run")
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(hist) == 2 and all(h["temporal_video"] > 0 and "temporal" not in h for h in hist)
    extra = create_model(str(weights)).spec.extra
    assert extra["temporal_video"]["clips"] == ["synthetic"] and extra["temporal_video"]["weight"] == 1e6
    assert extra["temporal_video"]["stride"] == 1 and extra["temporal_regulariser"] is None


def test_a_missing_clip_is_one_line_and_leaves_no_run_folder(shared: Path, vgg16_path: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from rtstyle.cli import main

    content, _ = small_training_folders(shared, tmp_path, styles=(), photos=2)
    out = tmp_path / "run"
    rc = main(["-q", "train", "johnson", "--style", str(shared / "media" / "styles" / "wave.jpg"), "--data",
               str(content), "--out", str(out), "--vgg", str(vgg16_path), "--steps", "1", "--size", "48",
               "--width", "4", "--n-res", "1", "--temporal-video", str(tmp_path / "nope.mp4"),
               "--temporal-video-weight", "1"])
    err = capsys.readouterr().err
    assert rc != 0 and "temporal video source not found" in err and "Traceback" not in err
    assert not out.exists()

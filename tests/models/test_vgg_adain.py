"""AdaIN at VGG16 relu4_1 (``adain.vgg16`` machinery): encoder, decoder files, the encoder checksum,
statistics, alpha, masks, interpolation and a scheduled style swap in a Pipeline.

The decoder is a small untrained one built here with a fixed seed (no trained decoder ships yet);
its last layer is scaled so that its output actually varies with the features. Every property
tested holds for any decoder: the AdaIN statistics are checked on the features, the output checks
are relative (nearer one style than the other, equal to a reference run).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from rtstyle.models.adain import AdaINNet, build_adain, channel_stats, validate_weights
from rtstyle.models.vgg_adain import (
    RELU_N1,
    AdaINDecoder,
    EncoderMismatchError,
    VGG16Encoder,
    _vgg_adain_factory,
    load_decoder_file,
    load_pair,
    load_vgg16_encoder,
    save_decoder,
    vgg16_adain_spec,
)

DARK, BRIGHT = "shipwreck_minotaur", "candy"  # mean grey ~75 vs a bright, saturated one ~137


def _decoder(seed: int = 0) -> AdaINDecoder:
    torch.manual_seed(seed)
    dec = AdaINDecoder(base=8)
    with torch.no_grad():  # a freshly initialised decoder barely reacts to its input: amplify it
        dec.convs[-1].weight.mul_(10.0)
        dec.convs[-1].bias.fill_(0.5)
    return dec.eval()


@pytest.fixture(scope="module")
def enc(vgg16_path: Path) -> VGG16Encoder:
    return load_vgg16_encoder(vgg16_path)


@pytest.fixture(scope="module")
def spec(enc: VGG16Encoder):
    assert enc.sha256 is not None
    return vgg16_adain_spec("adain.test", 8, enc.sha256, {})


@pytest.fixture(scope="module")
def dec_file(enc: VGG16Encoder, spec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_decoder(_decoder(), spec, tmp_path_factory.mktemp("dec") / "dec.safetensors", enc.sha256)


@pytest.fixture(scope="module")
def net(spec, vgg16_path: Path, dec_file: Path) -> AdaINNet:
    return _vgg_adain_factory(spec, encoder_path=vgg16_path, decoder_path=dec_file, max_style_side=128)


@pytest.fixture(scope="module")
def styles(shared: Path, read_rgb: Callable[..., np.ndarray]) -> dict[str, np.ndarray]:
    root = shared / "media" / "styles"
    return {n: read_rgb(root / f"{n}.jpg", (128, 128)) for n in (DARK, BRIGHT, "starry_night")}


@pytest.fixture(scope="module")
def content(content_photo: np.ndarray, rgb_tensor: Callable[..., torch.Tensor]) -> torch.Tensor:
    return rgb_tensor(content_photo)  # 160x120: multiples of 8


@pytest.fixture(scope="module")
def square(shared: Path, read_rgb: Callable[..., np.ndarray], rgb_tensor: Callable[..., torch.Tensor]) -> torch.Tensor:
    return rgb_tensor(read_rgb(shared / "media" / "photos" / "content" / "palapeli_cincinnati-bridge.jpg", (128, 128)))


# --------------------------------------------------------------------------- encoder

def test_encoder_keys_shapes_scale_and_taps(enc: VGG16Encoder, content: torch.Tensor) -> None:
    convs = [0, 2, 5, 7, 10, 12, 14, 17]  # conv1_1 .. conv4_1 in torchvision's vgg16().features
    assert list(enc.state_dict()) == [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")]
    assert enc.act_scale == 255.0, "the Caffe-scale shared VGG16 must be detected"
    assert enc.sha256 is not None and len(enc.sha256) == 64
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training
    with torch.no_grad():
        f = enc(content)
        taps = enc.taps(content)
    assert f.shape == (1, 512, 15, 20) and enc.level == 41 and enc.out_channels == 512
    assert list(taps) == ["r11", "r21", "r31", "r41"] and set(RELU_N1) == set(taps)
    for (k, ch), div in zip((("r11", 64), ("r21", 128), ("r31", 256), ("r41", 512)), (1, 2, 4, 8)):
        assert taps[k].shape == (1, ch, 120 // div, 160 // div), k
        assert (taps[k] >= 0).all(), f"{k} is a ReLU output"
    torch.testing.assert_close(taps["r41"], f, rtol=0, atol=0)
    # activations are brought to torchvision's magnitude (~1), not Caffe's (~255)
    assert 0.05 < float(f.mean()) < 20
    # the first tap is the first conv + ReLU of the normalised image, scaled
    with torch.no_grad():
        r11 = torch.relu(enc.features[0]((content - enc.mean) / enc.std)) / 255.0
    torch.testing.assert_close(taps["r11"], r11)


def test_torchvision_scale_file_and_bad_files(vgg16_path: Path, tmp_path: Path) -> None:
    sd = torch.load(vgg16_path, map_location="cpu", weights_only=True)
    small = {k: v for k, v in sd.items() if int(k.split(".")[1]) <= 17}
    small["features.0.weight"] = small["features.0.weight"] / 50.0  # |w| ~ 0.2: torchvision's scale
    p = tmp_path / "tv.pth"
    torch.save(small, p)
    enc = load_vgg16_encoder(p)
    assert enc.act_scale == 1.0
    assert enc.sha256 != load_vgg16_encoder(vgg16_path).sha256
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="torchvision key names"):
        load_vgg16_encoder(tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):  # refused when resolved (weights.check_weight_file)
        load_vgg16_encoder(tmp_path / "junk.pth")


# --------------------------------------------------------------------------- AdaIN itself

def test_features_take_the_style_statistics(net: AdaINNet, content: torch.Tensor, styles: dict[str, np.ndarray],
                                            rgb_tensor: Callable[..., torch.Tensor],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "encoder_precision", "fp32")  # exact statistics (auto is bf16 on AMX / AVX512_BF16 hosts)
    mean, std, alpha = net.encode_style(rgb_tensor(styles["starry_night"]))
    assert mean.shape == std.shape == (1, 512, 1, 1) and alpha.shape == (1,) and float(alpha) == 1.0
    with torch.no_grad():
        ref_m, ref_s = channel_stats(net.encoder(rgb_tensor(styles["starry_night"])))
        f = net.encoder(content)
        out = net.features(content, mean, std, torch.ones(1))
    torch.testing.assert_close(mean, ref_m)
    torch.testing.assert_close(std, ref_s)
    got_m, got_s = channel_stats(out)
    live = f.var((2, 3), unbiased=False).view(-1) > 1e-2  # the 1e-5 eps matters only below
    assert live.float().mean() > 0.95
    torch.testing.assert_close(got_m, mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_s.view(-1)[live], std.view(-1)[live], atol=1e-4, rtol=1e-3)
    # and the statistics really changed: the content's own are far from the style's
    c_m, _ = channel_stats(f)
    assert (c_m - mean).abs().mean() > 100 * (got_m - mean).abs().mean()


def test_alpha_zero_is_the_reconstruction_and_alpha_is_monotone(net: AdaINNet, content: torch.Tensor,
                                                                styles: dict[str, np.ndarray],
                                                                rgb_tensor: Callable[..., torch.Tensor]) -> None:
    style = rgb_tensor(styles[BRIGHT])
    feats, dists = [], []
    with torch.no_grad():
        f = net.encoder(content)
        rec = net.decoder(f)
        for a in (0.0, 0.25, 0.5, 0.75, 1.0):
            m = net.with_controls(alpha=a)
            ins = m.encode_style(style)
            feats.append(float((m.features(content, *ins) - f).norm()))
            y = m(content, *ins)
            if a == 0.0:
                torch.testing.assert_close(y, rec, rtol=0, atol=0)  # exactly decoder(encoder(content))
            dists.append(float((y - rec).abs().mean()))
    # the features move linearly towards the AdaIN target, the output away from the reconstruction
    np.testing.assert_allclose(feats, [feats[-1] * a for a in (0.0, 0.25, 0.5, 0.75, 1.0)], rtol=1e-4, atol=1e-4)
    assert all(x < y for x, y in zip(dists, dists[1:])), dists
    assert dists[-1] > 0.01
    with pytest.raises(ValueError, match="alpha"):
        net.with_controls(alpha=-0.1)


# --------------------------------------------------------------------------- decoder files and the checksum

def test_decoder_round_trip_is_fp16(dec_file: Path, content: torch.Tensor, enc: VGG16Encoder) -> None:
    loaded, meta = load_decoder_file(dec_file)
    assert meta["encoder_sha256"] == enc.sha256 and meta["base"] == "8"
    assert meta["format"] == "rtstyle.adain-decoder/1" and '"adain.test"' in meta["spec"]
    assert loaded.base == 8 and not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    from safetensors import safe_open

    with safe_open(str(dec_file), framework="pt") as fh:
        assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float16}
    rounded = _decoder()
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.half().float())
        for k, v in rounded.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0)
        f = enc(content)
        torch.testing.assert_close(loaded(f), rounded(f), rtol=0, atol=0)
        assert loaded(f).shape == (1, 3, 120, 160)
        # fp16 storage changes the output only a little
        assert float((loaded(f) - _decoder()(f)).abs().max()) < 0.05


def test_decoder_refuses_another_encoder(enc: VGG16Encoder, spec, vgg16_path: Path, tmp_path: Path) -> None:
    wrong = "0" * 64
    p = save_decoder(_decoder(), spec, tmp_path / "wrong.safetensors", wrong)
    with pytest.raises(EncoderMismatchError) as ei:
        load_pair(p, vgg16_path)
    msg = str(ei.value)
    assert isinstance(ei.value, ValueError)  # the CLI reports it as a user error
    assert wrong[:16] in msg and enc.sha256[:16] in msg  # expected and found
    assert "rtstyle train adain" in msg and "RTSTYLE_WEIGHTS" in msg  # what to do
    with pytest.raises(EncoderMismatchError):
        _vgg_adain_factory(spec, encoder_path=vgg16_path, decoder_path=p)
    e2, d2, meta = load_pair(p, vgg16_path, verify=False)
    assert meta["encoder_sha256"] == wrong and d2.base == 8 and e2.sha256 == enc.sha256


def test_non_decoder_files_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ValueError, match="not an rtstyle AdaIN decoder"):
        load_decoder_file(p)
    save_file({"w": torch.zeros(2)}, str(p), metadata={"format": "something/else"})
    with pytest.raises(ValueError, match="not an rtstyle AdaIN decoder"):
        load_decoder_file(p)
    junk = tmp_path / "junk.safetensors"  # corrupt: a ValueError too (the CLI's user errors), not a library one
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="cannot read the AdaIN decoder"):
        load_decoder_file(junk)


def test_encoder_decoder_must_pair(enc: VGG16Encoder, spec) -> None:
    class R31Decoder(torch.nn.Module):
        level, in_channels = 31, 256

    with pytest.raises(ValueError, match="do not pair"):
        AdaINNet(enc, R31Decoder())  # type: ignore[arg-type]
    net = build_adain(spec, enc, _decoder(), alpha=0.5)
    assert net.alpha == 0.5 and net.spec.name == "adain.test" and net.spec.size_multiple == 8
    assert net.spec.extra["encoder_sha256"] == enc.sha256 and net.spec.extra["layer"] == "relu4_1"
    with pytest.raises(TypeError, match="unknown options"):
        build_adain(spec, enc, _decoder(), brush=3)


# --------------------------------------------------------------------------- controls

def test_mask_puts_each_style_in_its_half(net: AdaINNet, square: torch.Tensor, styles: dict[str, np.ndarray],
                                          rgb_tensor: Callable[..., torch.Tensor],
                                          stats_dist: Callable[..., float]) -> None:
    a, b = styles[DARK], styles[BRIGHT]
    labels = np.zeros((128, 128), np.int64)
    labels[:, 64:] = 1  # relu4_1 is 16x16: feature columns 0..7 are style a, 8..15 style b
    two = net.with_controls(mask=labels)
    ins = two.encode_styles([a, b])
    assert ins[0].shape == (2, 512, 1, 1) and ins[3].shape == (1, 3, 128, 128)
    (ma, sa), (mb, sb) = net.style_stats(rgb_tensor(a)), net.style_stats(rgb_tensor(b))
    with torch.no_grad():
        feats = two.features(square, *ins)
        f = net.encoder(square)
        y = two(square, *ins)
        ya = net(square, *net.encode_style(rgb_tensor(a)))
        yb = net(square, *net.encode_style(rgb_tensor(b)))
    # features: each half carries exactly its own style's statistics
    for cols, (m, s), m_other in ((slice(0, 8), (ma, sa), mb), (slice(8, 16), (mb, sb), ma)):
        hm, hs = channel_stats(feats[..., cols])
        torch.testing.assert_close(hm, m, atol=1e-3, rtol=1e-3)
        assert (hm - m).abs().mean() < 1e-3 * (hm - m_other).abs().mean()
        live = f[..., cols].var((2, 3), unbiased=False).view(-1) > 1e-2  # the eps matters only below
        assert live.float().mean() > 0.9
        torch.testing.assert_close(hs.view(-1)[live], s.view(-1)[live], atol=1e-3, rtol=1e-2)

    # output: each half's colour statistics are much nearer its style's plain output than the other's
    left, right = (..., slice(0, 48)), (..., slice(80, 128))

    assert stats_dist(y, ya, left) < 0.5 * stats_dist(y, yb, left)
    assert stats_dist(y, yb, right) < 0.5 * stats_dist(y, ya, right)

    # label -1 keeps the content: those features are the encoder's, and away from the boundary
    # (farther than the decoder's receptive field) the output is the reconstruction itself
    keep = labels.copy()
    keep[:, 64:] = -1
    one = net.with_controls(mask=keep)
    ins1 = one.encode_style(rgb_tensor(a))
    with torch.no_grad():
        f = net.encoder(square)
        f1 = one.features(square, *ins1)
        y1 = one(square, *ins1)
        rec = net.decoder(f)
    torch.testing.assert_close(f1[..., 8:], f[..., 8:], rtol=0, atol=0)
    torch.testing.assert_close(y1[..., 104:], rec[..., 104:], rtol=1e-5, atol=1e-5)
    assert (y1[left] - rec[left]).abs().mean() > 0.5 * (ya[left] - rec[left]).abs().mean() > 0.002
    assert stats_dist(y1, ya, left) < 0.5 * stats_dist(rec, ya, left)
    with pytest.raises(ValueError, match="weights do not apply"):
        two.encode_styles([a, b], [0.5, 0.5])
    assert one.encode_styles([a, b, a])[0].shape == (3, 512, 1, 1)  # labels 0 and -1: fine with 3 styles
    with pytest.raises(ValueError, match="labels"):
        two.encode_styles([a])  # label 1 with one style


def test_interpolation_weights_are_validated(net: AdaINNet, content: torch.Tensor, styles: dict[str, np.ndarray],
                                             rgb_tensor: Callable[..., torch.Tensor]) -> None:
    a, b = styles[DARK], styles[BRIGHT]
    for bad in ([1.0, -0.5], [1.0], [1.0, 0.5, 0.5], [0.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(ValueError):
            net.encode_styles([a, b], bad)
        with pytest.raises(ValueError):
            net.with_styles([a, b], bad)
    with pytest.raises(ValueError):
        validate_weights([], 0)
    assert validate_weights([1, 3], 2) == [0.25, 0.75]
    only_b = net.encode_styles([a, b], [0.0, 2.0])
    alone = net.encode_style(rgb_tensor(b))
    for x, y in zip(only_b, alone):
        torch.testing.assert_close(x, y)
    mid = net.encode_styles([a, b], [1.0, 1.0])
    (ma, sa), (mb, sb) = net.style_stats(rgb_tensor(a)), net.style_stats(rgb_tensor(b))
    torch.testing.assert_close(mid[0], (ma + mb) / 2)
    torch.testing.assert_close(mid[1], (sa + sb) / 2)
    blend = net.with_styles([a, b], [1.0, 0.0])
    assert blend.spec.styles == ("style0", "style1") and not blend.spec.needs_style_image
    with torch.no_grad():
        torch.testing.assert_close(blend(content, *blend.encode_style_vector([1.0, 0.0])),
                                   net(content, *net.encode_style(rgb_tensor(a))))


# --------------------------------------------------------------------------- Stylizer and Pipeline

def test_scheduled_style_swap_in_a_pipeline(net: AdaINNet, content_photo: np.ndarray,
                                            styles: dict[str, np.ndarray], tmp_path: Path,
                                            list_source: type, collect_sink: type) -> None:
    import cv2

    from rtstyle.pipeline import Pipeline, ScheduledSwap
    from rtstyle.stylizer import Stylizer

    paths = {}
    for n in (DARK, BRIGHT):
        paths[n] = tmp_path / f"{n}.png"
        cv2.imwrite(str(paths[n]), cv2.cvtColor(styles[n], cv2.COLOR_RGB2BGR))
    imgs = [np.ascontiguousarray(np.roll(content_photo, 4 * i, axis=1)) for i in range(10)]

    swap_at = 4
    sink = collect_sink()
    st = Stylizer(net, style_image=str(paths[DARK]), frame_size=(160, 120))
    refs = {n: Stylizer(net, style_image=str(paths[n]), frame_size=(160, 120)) for n in (DARK, BRIGHT)}
    try:
        pipe = Pipeline(list_source(imgs, fps=25.0), st, [sink], queue_size=2,
                        schedule=[ScheduledSwap(net, at_frame=swap_at, style_image=str(paths[BRIGHT]))])
        stats = pipe.run()
        assert stats.frames_in == stats.frames_out == len(imgs) and stats.frames_dropped == 0
        assert [f.index for f in sink.frames] == list(range(len(imgs)))
        names = [f.meta["style"] for f in sink.frames]
        assert len(set(names[:swap_at])) == 1 and len(set(names[swap_at:])) == 1 and names[0] != names[-1]
        for i, f in enumerate(sink.frames):
            want = refs[DARK if i < swap_at else BRIGHT].stylize(imgs[i])
            assert f.image.shape == imgs[i].shape
            np.testing.assert_array_equal(f.image, want, err_msg=f"frame {i}")
        # the swap is visible: the two styles give clearly different frames
        other = refs[DARK].stylize(imgs[swap_at]).astype(float)
        assert np.abs(sink.frames[swap_at].image.astype(float) - other).mean() > 2
    finally:
        st.close()
        for r in refs.values():
            r.close()

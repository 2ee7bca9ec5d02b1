"""MetaNet: generated nets are plain Johnson nets (exact layout, save/reload, same output as the
differentiable path), styles change the weights, the size budget, files, registry and the Stylizer."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.models import create_model
from rtstyle.models.johnson import TransformerNet, save_rtstyle_weights
from rtstyle.models.metanet import (
    FEATURE_DIM,
    MetaNet,
    MetaNetArch,
    VGGMismatchError,
    count_parameters,
    generated_layers,
    load_metanet,
    metanet_spec,
    save_metanet,
    style_features,
)
from rtstyle.stylizer import Stylizer

STYLE_SIZE = 64  # small style images keep the VGG16 passes cheap


@pytest.fixture(scope="module")
def vgg(vgg16_path: Path) -> torch.nn.Module:
    from rtstyle.models.metanet import STYLE_TAPS
    from rtstyle.nn.vgg import load_vgg16

    return load_vgg16(vgg16_path, STYLE_TAPS)


@pytest.fixture(scope="module")
def style_pair(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    from rtstyle.image import read_image

    return tuple(read_image(shared / "media" / "styles" / f"{n}.jpg", max_side=96) for n in ("starry_night", "mondrian"))


def _t01(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0


def _tiny(vgg: torch.nn.Module, styles: tuple[np.ndarray, ...], seed: int = 0, width: int = 4, n_res: int = 1) -> MetaNet:
    """A random meta network whose generated nets give visible, unclipped outputs."""
    torch.manual_seed(seed)
    meta = MetaNet(width, n_res, hidden=8, style_size=STYLE_SIZE).attach_vgg(vgg).eval()
    with torch.no_grad():
        meta.fixed.deconv3.conv2d.weight.mul_(40.0)
        meta.fixed.deconv3.conv2d.bias.add_(128.0)
        meta.set_feature_stats(torch.cat([meta.encode(_t01(s)) for s in styles]))
    return meta


# --------------------------------------------------------------------------- layout and maths
@pytest.mark.parametrize("width,n_res", [(8, 5), (4, 2)])
def test_generated_state_dict_has_the_exact_transformernet_layout(width: int, n_res: int) -> None:
    meta = MetaNet(width, n_res, hidden=4)
    ref = TransformerNet(width, n_res).state_dict()
    with torch.no_grad():
        sd = meta.generate_state_dict(torch.rand(1, FEATURE_DIM))
    assert set(sd) == set(ref)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in ref.items()}
    gen = {f"{lay.path}.conv2d.{p}" for lay in generated_layers(width, n_res) for p in ("weight", "bias")}
    shared = {k for k, _ in meta.fixed.named_parameters()}
    assert shared | gen == set(ref) and not shared & gen
    # as in the paper: the first and last convs and every instance-norm affine are trained, not generated
    assert {"conv1.conv2d.weight", "deconv3.conv2d.weight", "in1.weight", "res1.in2.bias"} <= shared
    net = TransformerNet(width, n_res)
    net.load_state_dict({k: v.detach() for k, v in sd.items()}, strict=True)


class _Const(torch.nn.Module):
    """Stands in for the style-norm head: always outputs ``d``."""

    def __init__(self, d: torch.Tensor) -> None:
        super().__init__()
        self.d = d

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.d[None].expand(h.shape[0], -1)


def test_style_norms_extend_a_trained_meta_network_without_changing_it(content_photo: np.ndarray) -> None:
    """A meta network with style norms warm-started from one without starts out generating the same nets
    (the head starts at zero); the nets keep the exact TransformerNet layout and reload as plain nets."""
    torch.manual_seed(1)
    old = MetaNet(4, 2, hidden=4)
    with torch.no_grad():
        old.fixed.deconv3.conv2d.weight.mul_(40.0)
        old.fixed.deconv3.conv2d.bias.add_(128.0)
    new = MetaNet(4, 2, hidden=4, style_norms=True).init_from_meta(old)
    assert new.arch.style_norms and count_parameters(new.arch)["total"] == sum(p.numel() for p in new.parameters())
    x = torch.from_numpy(content_photo[:64, :96].copy()).permute(2, 0, 1)[None].float()
    f = torch.randn(1, FEATURE_DIM)
    with torch.no_grad():
        torch.testing.assert_close(new.stylize(x, f), old.stylize(x, f), rtol=0, atol=0)
        torch.nn.init.normal_(new.norm_head.weight)  # now the norms and colours depend on the style
        a, b = new.generate_from_features(f), new.generate_from_features(torch.randn(1, FEATURE_DIM))
        assert not torch.equal(a.in1.weight, b.in1.weight) and not torch.equal(a.res2.in2.bias, b.res2.in2.bias)
        assert not torch.equal(a.deconv3.conv2d.weight, b.deconv3.conv2d.weight)
        plain = TransformerNet(4, 2).eval()
        plain.load_state_dict(a.state_dict(), strict=True)
        torch.testing.assert_close(plain(x), new.stylize(x, f), rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="style norms"):
        MetaNet(4, 2, hidden=4).init_from_meta(new)
    with pytest.raises(ValueError, match="hidden"):
        MetaNet(4, 2, hidden=8, style_norms=True).init_from_meta(old)
    with pytest.raises(ValueError, match="style_size"):
        MetaNet(4, 2, hidden=4, style_size=128, style_norms=True).init_from_meta(old)


def test_style_norms_set_the_norm_affines_and_fold_a_color_transform_into_the_last_conv() -> None:
    """The head's numbers, in order: each instance norm's scale and shift deltas, a 3x3 colour matrix
    (about the identity), an offset in units of 64 levels; the colour transform is exactly
    ``y -> M y + c`` on the net's output."""
    torch.manual_seed(2)
    meta = MetaNet(4, 1, hidden=4, style_norms=True).eval()
    f = torch.randn(1, FEATURE_DIM)
    x = torch.rand(1, 3, 32, 48) * 255
    with torch.no_grad():
        base = meta.stylize(x, f)
        n_norm = meta.norm_head.out_features - 12
        dm, dc = torch.tensor([[0.1, -0.2, 0.0], [0.05, 0.3, 0.1], [0.0, 0.0, -0.4]]), torch.tensor([0.5, -1.0, 0.25])
        meta.norm_head = _Const(torch.cat([torch.zeros(n_norm), dm.flatten(), dc]))
        got = meta.stylize(x, f)
        want = torch.einsum("oc,nchw->nohw", torch.eye(3) + dm, base) + 64.0 * dc.view(1, 3, 1, 1)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)
        d = torch.zeros(n_norm + 12)
        d[0] = 0.5  # in1: scale of channel 0
        d[4 + 1] = -0.25  # in1 (4 channels): shift of channel 1
        meta.norm_head = _Const(d)
        sd = meta.generate_state_dict(f)
        torch.testing.assert_close(sd["in1.weight"] - meta.fixed.in1.weight, torch.tensor([0.5, 0, 0, 0]))
        torch.testing.assert_close(sd["in1.bias"] - meta.fixed.in1.bias, torch.tensor([0, -0.25, 0, 0]))
        torch.testing.assert_close(sd["res1.in1.weight"], meta.fixed.res1.in1.weight)


def test_generated_nets_are_checked_finite_and_marked_prechecked() -> None:
    """Every generated tensor is checked finite when the net is built (so the eager CPU backend need not
    run it before a style change goes live); a non-finite one is refused with the style named."""
    torch.manual_seed(5)
    meta = MetaNet(4, 1, hidden=4).eval()
    net = meta.generate_from_features(torch.randn(1, FEATURE_DIM), "good")
    assert net.prechecked
    other = meta.generate_from_features(torch.randn(1, FEATURE_DIM), "other")  # built from the same skeleton
    assert not {id(m) for m in net.modules()} & {id(m) for m in other.modules()}
    assert not torch.equal(net.conv2.conv2d.weight, other.conv2.conv2d.weight)
    other.register_forward_hook(lambda *a: None)
    other.res1.in1.weight = torch.nn.Parameter(torch.zeros(16))
    assert not net._forward_hooks and float(net.res1.in1.weight.abs().sum()) > 0
    x = torch.rand(1, 3, 32, 32) * 255
    ref = TransformerNet(4, 1).eval()
    ref.load_state_dict(net.state_dict())
    torch.testing.assert_close(net(x), ref(x), rtol=0, atol=0)
    with torch.no_grad():
        meta.heads["conv2"].out.bias[0] = float("nan")
    with pytest.raises(ValueError, match="non-finite.*conv2.*bad"):
        meta.generate_from_features(torch.randn(1, FEATURE_DIM), "bad")


def test_stylize_equals_generate_then_forward_and_is_differentiable() -> None:
    torch.manual_seed(0)
    meta = MetaNet(4, 2, hidden=8)
    feats = torch.rand(1, FEATURE_DIM) * 3
    x = torch.rand(2, 3, 20, 24) * 255
    y = meta.stylize(x, feats)
    net = meta.generate_from_features(feats, name="probe")
    assert isinstance(net, TransformerNet) and type(net) is TransformerNet
    assert net.spec.family == "johnson" and net.spec.styles == ("probe",)
    with torch.no_grad():
        torch.testing.assert_close(y, net(x), rtol=0, atol=1e-4)
    y.mean().backward()
    assert meta.fc.weight.grad is not None and meta.fc.weight.grad.abs().sum() > 0
    assert meta.heads["res1_conv1"].out.weight.grad.abs().sum() > 0
    assert meta.fixed.conv1.conv2d.weight.grad.abs().sum() > 0  # shared parameters train too
    assert meta.fixed.in3.weight.grad.abs().sum() > 0


def test_generated_filters_stay_bounded_whatever_the_heads_output() -> None:
    torch.manual_seed(1)
    meta = MetaNet(4, 1, hidden=8)
    feats = torch.rand(1, FEATURE_DIM)
    x = torch.rand(1, 3, 16, 16) * 255
    with torch.no_grad():
        w0, s0 = meta.generate_weights(feats, with_stats=True)
        y0 = meta.stylize(x, feats)
        for head in meta.heads.values():  # a drift of the raw outputs by 1000x
            head.out.weight.mul_(1000.0)
            head.out.bias.mul_(1000.0)
        w1, s1 = meta.generate_weights(feats, with_stats=True)
        y1 = meta.stylize(x, feats)
    assert s0.max() < 2.0 and s1.min() > 500.0  # the tracked raw norm sees the drift ...
    for lay in meta.layers:  # ... the generated net does not: He-scale filters, |bias| < 1
        w = w1[f"{lay.path}.conv2d.weight"]
        torch.testing.assert_close(w.pow(2).mean((1, 2, 3)).sqrt(), torch.full((lay.cout,), lay.init_std), rtol=1e-3, atol=0)
        assert w1[f"{lay.path}.conv2d.bias"].abs().max() <= 1.0
        torch.testing.assert_close(w1[f"{lay.path}.conv2d.weight"], w0[f"{lay.path}.conv2d.weight"], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(y1, y0, rtol=1e-3, atol=1e-2)  # instance norm removes the bias; scale is fixed


def test_warm_start_generates_the_given_net_for_every_style(content_photo: np.ndarray) -> None:
    """``init_from``: with no style gain every generated net computes the trained net (here the shipped
    wave lite net) on a real photo; with a small gain styles start near it but apart from each other."""
    net = create_model("johnson.wave_lite").float().eval()
    assert isinstance(net, TransformerNet)
    x = torch.from_numpy(np.ascontiguousarray(content_photo[:128, :160])).permute(2, 0, 1)[None].float()
    torch.manual_seed(0)
    meta = MetaNet(8, 5).init_from(net, style_gain=0.0).eval()
    f1, f2 = torch.randn(1, FEATURE_DIM), torch.randn(1, FEATURE_DIM)
    with torch.no_grad():
        ref = net(x)
        torch.testing.assert_close(meta.stylize(x, f1), ref, rtol=0, atol=0.05 * float(ref.abs().mean()))
        meta.init_from(net, style_gain=0.1)
        y1, y2 = meta.stylize(x, f1), meta.stylize(x, f2)
    near, apart = float((y1 - ref).abs().mean()), float((y1 - y2).abs().mean())
    assert 0.3 < near < 20.0 and 0.3 < apart < 20.0, (near, apart)
    with pytest.raises(ValueError, match="width=4"):
        MetaNet(4, 1).init_from(net)


def test_features_one_style_in_batch_only() -> None:
    meta = MetaNet(4, 1, hidden=4)
    with pytest.raises(ValueError, match="one style"):
        meta.generate_weights(torch.rand(2, FEATURE_DIM))


# --------------------------------------------------------------------------- size budget
def test_default_meta_network_is_at_most_25_mb_in_fp16() -> None:
    meta = MetaNet()
    n = sum(p.numel() for p in meta.parameters())
    counts = count_parameters(MetaNetArch())
    assert n == counts["total"] == 8_490_595
    assert counts["generated"] == 104_072 and meta.width == 8 and meta.n_res == 5
    assert (n + meta.feat_scale.numel() + meta.feat_shift.numel()) * 2 <= 25_000_000
    # the paper's 128-wide groups would not fit; width 16 fits with rank-16 heads
    assert count_parameters(MetaNetArch(hidden=128))["total"] * 2 > 25_000_000
    wide = MetaNetArch(width=16, hidden=64, rank=16)
    assert count_parameters(wide)["total"] * 2 <= 25_000_000
    assert sum(p.numel() for p in MetaNet(16, 5, 64, rank=16).parameters()) == count_parameters(wide)["total"]


# --------------------------------------------------------------------------- style images
def test_style_features_are_channel_means_and_stds(vgg: torch.nn.Module, style_pair) -> None:
    s = _t01(style_pair[0])
    f = style_features(vgg, s)
    assert f.shape == (1, FEATURE_DIM)
    r12 = vgg(s)["relu1_2"]
    torch.testing.assert_close(f[0, :64], r12.mean((2, 3))[0])
    torch.testing.assert_close(f[0, 64:128], (r12.var((2, 3), unbiased=False)[0] + 1e-5).sqrt())


def test_different_styles_give_different_nets(vgg: torch.nn.Module, style_pair) -> None:
    meta = _tiny(vgg, style_pair)
    a, b = (meta.generate(s) for s in style_pair)
    a2 = meta.generate(style_pair[0])
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        if k in {f"{lay.path}.conv2d.weight" for lay in meta.layers}:
            rel = (sa[k] - sb[k]).norm() / sa[k].norm()
            assert rel > 0.05, f"{k} barely depends on the style ({rel:.3g})"
        elif not k.endswith(".conv2d.bias"):
            assert torch.equal(sa[k], sb[k])  # shared parameters
    assert all(torch.equal(v, a2.state_dict()[k]) for k, v in sa.items())  # deterministic
    x = torch.rand(1, 3, 32, 32) * 255
    with torch.no_grad():
        assert (a(x) - b(x)).abs().mean() > 1.0


def test_generated_net_saves_and_reloads_as_a_plain_johnson_model(vgg: torch.nn.Module, style_pair, tmp_path: Path,
                                                                  content_photo: np.ndarray) -> None:
    meta = _tiny(vgg, style_pair, width=4, n_res=2)
    net = meta.generate(style_pair[1], name="mondrian")
    p = save_rtstyle_weights(net, net.spec, tmp_path / "mondrian_meta.safetensors")
    back = create_model(p)
    assert type(back) is TransformerNet and back.width == 4 and back.n_res == 2
    assert back.spec.family == "johnson" and back.spec.styles == ("mondrian",)
    x = torch.from_numpy(content_photo).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        assert torch.equal(back(x), net(x))


# --------------------------------------------------------------------------- files and registry
def _saved(tmp_path: Path, vgg: torch.nn.Module, styles, vgg_sha: str | None, name: str = "metanet.test",
           dtype: torch.dtype = torch.float32) -> Path:
    meta = _tiny(vgg, styles)
    meta.vgg_sha256 = vgg_sha
    spec = metanet_spec(name, meta.arch, licence="test", weights="metanet_test.safetensors")
    return save_metanet(meta, spec, tmp_path / "metanet_test.safetensors", dtype=dtype)


def test_save_and_load_round_trip(vgg: torch.nn.Module, style_pair, tmp_path: Path, vgg16_path: Path) -> None:
    from safetensors import safe_open

    from rtstyle.nn.vgg import file_sha256

    sha = file_sha256(vgg16_path)
    p = _saved(tmp_path, vgg, style_pair, sha)
    with safe_open(str(p), framework="pt") as f:
        md = f.metadata()
    assert md["format"] == "rtstyle.metanet/1" and md["vgg_sha256"] == sha
    assert json.loads(md["arch"]) == {"width": 4, "n_res": 1, "hidden": 8, "rank": None, "style_size": STYLE_SIZE,
                                      "style_norms": False}
    for ref in (f"metanet:{p}", str(p)):  # forced family, and detected from a bare path
        meta = create_model(ref, vgg=vgg16_path)
        assert isinstance(meta, MetaNet) and meta.spec.family == "metanet" and meta.spec.needs_style_image
    orig = _tiny(vgg, style_pair)
    assert all(torch.equal(v, orig.state_dict()[k]) for k, v in meta.state_dict().items())
    net = meta.generate(style_pair[0])  # loads the VGG16 itself (checked against the recorded sha256)
    torch.testing.assert_close(net.state_dict(), orig.generate(style_pair[0]).state_dict())
    half = load_metanet(_saved(tmp_path, vgg, style_pair, sha, dtype=torch.float16), vgg=vgg16_path)
    x = torch.rand(1, 3, 24, 24) * 255
    with torch.no_grad():
        torch.testing.assert_close(half.generate(style_pair[0])(x), net(x), rtol=0, atol=2.0)


def test_another_vgg16_file_is_refused(vgg: torch.nn.Module, style_pair, tmp_path: Path, vgg16_path: Path) -> None:
    meta = create_model(f"metanet:{_saved(tmp_path, vgg, style_pair, '0' * 64)}", vgg=vgg16_path)
    with pytest.raises(VGGMismatchError, match="sha256"):
        meta.generate(style_pair[0])


def test_shipped_entries_register_and_are_checksummed(vgg: torch.nn.Module, style_pair, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, vgg16_path: Path,
                                                       content_photo: np.ndarray) -> None:
    from contextlib import nullcontext

    from rtstyle.models import _registry, get_spec, list_models
    from rtstyle.models import metanet as mn
    from rtstyle.weights import sha256_file

    p = _saved(tmp_path, vgg, style_pair, None, name="metanet.shipped_probe")
    spec = json.loads(load_metanet(p).spec.to_json())
    spec["sha256"] = sha256_file(p)
    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))  # restored after the test
    monkeypatch.setattr(mn, "_shipped_entries", lambda: [{"spec": spec}])
    monkeypatch.setattr(mn, "_shipped_file", lambda s: nullcontext(p))
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(vgg16_path.parent))
    mn._register_shipped()
    assert "metanet.shipped_probe" in list_models("metanet.*")
    assert get_spec("metanet.shipped_probe").needs_style_image
    out = Stylizer("metanet.shipped_probe", style_image=style_pair[0], frame_size=(160, 120)).stylize(content_photo)
    assert out.shape == content_photo.shape
    import dataclasses

    entry = _registry._MODELS["metanet.shipped_probe"]
    with pytest.raises(ValueError, match="sha256"):
        entry.factory(dataclasses.replace(entry.spec, sha256="0" * 64))


# --------------------------------------------------------------------------- through the Stylizer
def test_stylizer_runs_the_generated_johnson_net_and_swaps_style_images(
        vgg: torch.nn.Module, style_pair, tmp_path: Path, vgg16_path: Path, content_photo: np.ndarray,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rtstyle.backends.eager import EagerRunner
    from rtstyle.nn.vgg import file_sha256

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(vgg16_path.parent))  # how a user's VGG16 is found
    path = _saved(tmp_path, vgg, style_pair, file_sha256(vgg16_path))
    # fp32 on both sides: precision auto may pick bf16 on a host with bf16 in hardware, and decides per
    # net, so the two paths would be compared at different precisions
    st = Stylizer(f"metanet:{path}", backend="eager", precision="fp32", style_image=style_pair[0],
                  frame_size=(160, 120))
    assert isinstance(st.state.model, MetaNet) and st.state.spec.family == "metanet"
    runner = st.state.runner
    assert isinstance(runner, EagerRunner) and type(runner.model) is TransformerNet  # a plain Johnson net ...
    assert st.state.style_inputs == ()  # ... with no style inputs per frame
    a = st.stylize(content_photo)

    def ref(style: np.ndarray) -> np.ndarray:  # the same net, saved and run as any Johnson model
        net = load_metanet(path, vgg=vgg16_path).generate(style, name="ref")
        p = save_rtstyle_weights(net, net.spec, tmp_path / "ref.safetensors")
        return Stylizer(p, backend="eager", precision="fp32", frame_size=(160, 120)).stylize(content_photo)

    np.testing.assert_array_equal(a, ref(style_pair[0]))
    st.set_style(style_image=style_pair[1], wait=True)  # mid-run swap to another style image
    b = st.stylize(content_photo)
    np.testing.assert_array_equal(b, ref(style_pair[1]))
    assert np.abs(a.astype(int) - b).mean() > 1.0
    assert isinstance(st.state.model, MetaNet) and st.state.style_source[0] == "image"
    st.set_style(style_image=style_pair[0], wait=True)  # back: the prepared state is reused
    np.testing.assert_array_equal(st.stylize(content_photo), a)
    with pytest.raises(ValueError, match="needs a style image"):
        Stylizer(f"metanet:{path}", backend="eager")


def test_stylizer_hands_metanet_style_images_at_twice_the_style_size(
        vgg: torch.nn.Module, style_pair, tmp_path: Path, vgg16_path: Path, content_photo: np.ndarray,
        monkeypatch: pytest.MonkeyPatch, shared: Path) -> None:
    """Style images (files or arrays) reach ``specialise`` shrunk to ``style_image_side`` (as in
    training), not at 1024 px; the generated net is the one ``generate`` makes from that image."""
    from rtstyle.nn.vgg import file_sha256
    from rtstyle.stylizer import load_style_image

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(vgg16_path.parent))
    path = _saved(tmp_path, vgg, style_pair, file_sha256(vgg16_path))
    st = Stylizer(f"metanet:{path}", backend="eager", style_image=style_pair[0], frame_size=(160, 120))
    meta = st.state.model
    assert meta.style_image_side == 2 * STYLE_SIZE
    seen: list[tuple[int, ...]] = []
    real = meta.specialise
    monkeypatch.setattr(meta, "specialise", lambda s: (seen.append(tuple(s.shape)), real(s))[1])
    big_file = shared / "media" / "styles" / "starry_night.jpg"
    big_array = load_style_image(big_file)
    assert max(big_array.shape[:2]) > 2 * STYLE_SIZE
    for style in (big_file, big_array):
        st.prepare(meta, style_image=style)
    assert [max(s[-2:]) for s in seen] == [2 * STYLE_SIZE, 2 * STYLE_SIZE], seen
    small = load_style_image(big_file, max_side=2 * STYLE_SIZE)
    assert max(small.shape[:2]) == 2 * STYLE_SIZE and load_style_image(small, max_side=999) is small


def test_generated_net_runs_on_onnx(vgg: torch.nn.Module, style_pair, tmp_path: Path, vgg16_path: Path,
                                    content_photo: np.ndarray) -> None:
    pytest.importorskip("onnxruntime")
    from rtstyle.backends import BackendOptions
    from rtstyle.bench import psnr

    meta = _tiny(vgg, style_pair)
    meta.spec = metanet_spec("metanet.onnx_probe", meta.arch, licence="test")
    opts = BackendOptions(cache_dir=tmp_path / "engines")
    ref = Stylizer(meta, backend="eager", style_image=style_pair[1], frame_size=(160, 120)).stylize(content_photo)
    out = Stylizer(meta, backend="onnx", style_image=style_pair[1], frame_size=(160, 120), options=opts).stylize(content_photo)
    assert psnr(out, ref) >= 40.0


def test_auto_backend_runs_generated_nets_eager_on_cpu(vgg: torch.nn.Module, style_pair, content_photo: np.ndarray) -> None:
    """``auto`` would mean OpenVINO (an export + compile per style change): generated nets say eager."""
    from rtstyle.backends.eager import EagerRunner

    meta = _tiny(vgg, style_pair)
    meta.spec = metanet_spec("metanet.auto_probe", meta.arch, licence="test")
    st = Stylizer(meta, backend="auto", style_image=style_pair[0], frame_size=(160, 120))
    assert isinstance(st.state.runner, EagerRunner)
    assert st.state.runner.model is not None and st.state.runner.shared  # the generated net itself, not a copy
    ref = Stylizer(meta, backend="eager", style_image=style_pair[0], frame_size=(160, 120)).stylize(content_photo)
    np.testing.assert_array_equal(st.stylize(content_photo), ref)

"""MSG-Net: the authors' checkpoint layout, the CoMatch maths, explicit style inputs and live controls."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtstyle.models import create_model
from rtstyle.models._spec import ModelSpec
from rtstyle.models.msgnet import (
    MSGNet,
    MSGNetArch,
    MSGStyleBank,
    comatch,
    convert_21styles,
    gram_matrix,
    save_msgnet,
)
from rtstyle.stylizer import Stylizer

ARCH = MSGNetArch(ngf=8, n_blocks=2, stem=8, down1=4, up1=4, up2=4)


# --------------------------------------------------------------------------- an independent reference
def _authors_state_dict(a: MSGNetArch, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict laid out as the authors' ``Net`` saves it (old PyTorch): ``model1.*``, ``ins.weight``,
    ``model.0.*``/``model.1.*`` repeating them, instance-norm running statistics, random values."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(key: str, cin: int, cout: int, k: int) -> None:
        sd[key + ".weight"] = torch.randn(cout, cin, k, k, generator=g) * (1.0 / (cin * k * k)) ** 0.5
        sd[key + ".bias"] = torch.randn(cout, generator=g) * 0.01

    def norm(key: str, c: int) -> None:
        sd[key + ".running_mean"] = torch.zeros(c)
        sd[key + ".running_var"] = torch.ones(c)

    def bottleneck(p: str, cin: int, planes: int, down: bool, up: bool = False) -> None:
        if down:
            conv(p + ".residual_layer", cin, planes * 4, 1)
        if up:
            conv(p + ".residual_layer.conv2d", cin, planes * 4, 1)
        norm(p + ".conv_block.0", cin)
        conv(p + ".conv_block.2", cin, planes, 1)
        norm(p + ".conv_block.3", planes)
        conv(p + ".conv_block.5.conv2d", planes, planes, 3)
        norm(p + ".conv_block.6", planes)
        conv(p + ".conv_block.8", planes, planes * 4, 1)

    conv("model1.0.conv2d", 3, a.stem, 7)
    norm("model1.1", a.stem)
    bottleneck("model1.3", a.stem, a.down1, True)
    bottleneck("model1.4", a.down1 * 4, a.ngf, True)
    sd["ins.weight"] = torch.rand(1, a.ngf * 4, a.ngf * 4, generator=g) * 0.02
    for k in [k for k in sd if k.startswith("model1.")]:
        sd["model.0." + k[len("model1."):]] = sd[k]
    sd["model.1.weight"] = sd["ins.weight"]
    i = 2
    for _ in range(a.n_blocks):
        bottleneck(f"model.{i}", a.ngf * 4, a.ngf, False)
        i += 1
    bottleneck(f"model.{i}", a.ngf * 4, a.up1, False, up=True)
    bottleneck(f"model.{i + 1}", a.up1 * 4, a.up2, False, up=True)
    norm(f"model.{i + 2}", a.up2 * 4)
    conv(f"model.{i + 4}.conv2d", a.up2 * 4, 3, 7)
    return sd


def _reference_forward(sd: dict[str, torch.Tensor], a: MSGNetArch, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The authors' forward written out functionally from the raw keys (setTarget, then model)."""
    def conv(h: torch.Tensor, key: str, k: int, stride: int = 1, up: bool = False) -> torch.Tensor:
        if up:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        if k > 1:
            h = F.pad(h, (k // 2,) * 4, mode="reflect")
        return F.conv2d(h, sd[key + ".weight"], sd[key + ".bias"], stride)

    def inr(h: torch.Tensor) -> torch.Tensor:
        return F.relu(F.instance_norm(h, eps=1e-5))

    def block(h: torch.Tensor, p: str, stride: int = 1, down: bool = False, up: bool = False) -> torch.Tensor:
        if up:
            res = conv(h, p + ".residual_layer.conv2d", 1, up=True)
        elif down:
            res = F.conv2d(h, sd[p + ".residual_layer.weight"], sd[p + ".residual_layer.bias"], stride)
        else:
            res = h
        y = conv(inr(h), p + ".conv_block.2", 1)
        y = conv(inr(y), p + ".conv_block.5.conv2d", 3, stride=stride, up=up)
        y = conv(inr(y), p + ".conv_block.8", 1)
        return res + y

    def model1(h: torch.Tensor) -> torch.Tensor:
        h = inr(conv(h, "model1.0.conv2d", 7))
        h = block(h, "model1.3", 2, down=True)
        return block(h, "model1.4", 2, down=True)

    f = model1(style)
    n, c, hh, ww = f.shape
    flat = f.reshape(n, c, -1)
    gram = flat @ flat.transpose(1, 2) / (c * hh * ww)
    p = sd["ins.weight"] @ gram
    h = model1(x)
    h = (p.transpose(1, 2) @ h.reshape(1, c, -1)).reshape(h.shape)
    i = 2
    for _ in range(a.n_blocks):
        h = block(h, f"model.{i}")
        i += 1
    h = block(h, f"model.{i}", up=True)
    h = block(h, f"model.{i + 1}", up=True)
    h = inr(h)
    return conv(h, f"model.{i + 4}.conv2d", 7)


@pytest.fixture(scope="module")
def authors_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("msg") / "21styles_like.model"
    torch.save(_authors_state_dict(ARCH), p)
    return p


def _img(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(photo).permute(2, 0, 1)[None].float()


# --------------------------------------------------------------------------- checkpoint layout
def test_authors_layout_loads_and_matches_reference(authors_file: Path, content_photo: np.ndarray) -> None:
    sd = torch.load(authors_file, weights_only=True)
    ours, arch = convert_21styles(sd)
    assert arch == ARCH
    assert not any(k.startswith(("model.0.", "model.1.")) or "running_" in k for k in ours)
    model = create_model(f"msgnet:{authors_file}")
    assert model.spec.color_order == "BGR" and model.spec.needs_style_image  # no bank in the authors' file
    x = _img(content_photo)  # 160x120, 0..255
    style = x.flip(-1)[..., :96, :128].contiguous()
    with torch.no_grad():
        ref = _reference_forward(sd, ARCH, x, style)
        g = model.net.style_gram(style)
        out = model.net(x, g)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-3)


def test_paper_width_layout_is_detected(tmp_path: Path) -> None:
    paper = MSGNetArch()  # the authors' 21styles widths
    sd = _authors_state_dict(paper)
    _, arch = convert_21styles(sd)
    assert arch == paper and arch.channels == 512
    net = MSGNet(arch)
    missing, unexpected = net.load_state_dict(convert_21styles(sd)[0], strict=False)
    assert [k for k in missing if k != "graph_flags"] == [] and unexpected == []


def test_not_an_msgnet_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an MSG-Net"):
        convert_21styles({"conv1.weight": torch.zeros(1)})


# --------------------------------------------------------------------------- explicit style input
def test_comatch_is_w_g_transposed_times_x() -> None:
    torch.manual_seed(0)
    x, w, g = torch.randn(2, 6, 3, 5), torch.rand(1, 6, 6), torch.randn(1, 6, 6)
    y = comatch(x, w, g)
    p = (w[0] @ g[0]).t()
    torch.testing.assert_close(y[1, :, 2, 4], p @ x[1, :, 2, 4])


def test_style_is_an_input_not_module_state(content_photo: np.ndarray) -> None:
    torch.manual_seed(0)
    net = MSGNet(ARCH).eval()
    x = _img(content_photo)
    with torch.no_grad():
        ga = net.style_gram(x.flip(1))
        gb = net.style_gram(255.0 - x)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        ya, yb, ya2 = net(x, ga), net(x, gb), net(x, ga)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # style_gram set nothing
    torch.testing.assert_close(ya, ya2)
    assert (ya - yb).abs().mean() > 1e-3
    assert ga.shape == (1, ARCH.channels, ARCH.channels)


def test_alpha_zero_uses_the_frames_own_gram(content_photo: np.ndarray) -> None:
    torch.manual_seed(1)
    net = MSGNet(ARCH).eval()
    x = _img(content_photo)
    with torch.no_grad():
        g = net.style_gram(x.flip(1))
        own = gram_matrix(net.model1(x))
        torch.testing.assert_close(net(x, g, torch.tensor([0.0])), net(x, own), rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(net(x, g, torch.tensor([1.0])), net(x, g), rtol=1e-4, atol=1e-3)


# --------------------------------------------------------------------------- bank, brush size, controls
def _bank_model(tmp_path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = MSGNet(ARCH).eval()
    with torch.no_grad():  # random weights, output centred in 0..255 and spread so nothing clips to black
        net.model[-1].conv2d.weight.mul_(20.0)
        net.model[-1].conv2d.bias.add_(128.0)
    bank = {}
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("alpha_style", "beta_style"):
            img = torch.rand(1, 3, 64, 96, generator=gen) * 255
            for size in (64, 128):
                bank[f"{name}.{size}"] = net.style_gram(F.interpolate(img, scale_factor=size / 96, mode="bilinear"))
    spec = ModelSpec(name="msgnet.test", family="msgnet", styles=("alpha_style", "beta_style"), size_multiple=4)
    return save_msgnet(net, spec, tmp_path / "msgnet_test.safetensors", bank, dtype=torch.float32)


def test_bank_selection_and_brush_interpolation(tmp_path: Path) -> None:
    model = create_model(f"msgnet:{_bank_model(tmp_path)}", brush=96)
    bank: MSGStyleBank = model.bank
    assert bank.names == ("alpha_style", "beta_style") and bank.sizes("beta_style") == [64, 128]
    mid = bank.gram("beta_style", 96)
    torch.testing.assert_close(mid, 0.5 * bank.gram(1, 64) + 0.5 * bank.gram(1, 128))
    torch.testing.assert_close(bank.gram("beta_style", 10), bank.gram(1, 64))  # clamped to the stored range
    with pytest.raises(ValueError, match="did you mean beta_style"):
        bank.gram("beta_styl", 96)
    with pytest.raises(ValueError, match="out of range"):
        bank.gram(5, 96)
    assert model.parse_style_vector("beta_style") == [0.0, 1.0]
    g, _ = model.encode_style_vector(model.parse_style_vector("alpha_style:0.25,beta_style:0.75"))
    torch.testing.assert_close(g, 0.25 * bank.gram(0, 96) + 0.75 * bank.gram(1, 96))


def test_brush_size_changes_the_gram_of_a_style_image(tmp_path: Path, content_photo: np.ndarray) -> None:
    model = create_model(f"msgnet:{_bank_model(tmp_path)}")
    style = torch.from_numpy(content_photo).permute(2, 0, 1)[None].float() / 255
    small = model.with_controls(brush=64).encode_style(style)[0]
    large = model.with_controls(brush=256).encode_style(style)[0]
    assert (small - large).abs().max() > 1e-4


def test_luminance_keeps_the_frames_colors(tmp_path: Path, content_photo: np.ndarray) -> None:
    model = create_model(f"msgnet:{_bank_model(tmp_path)}", color="luminance")
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x = _img(content_photo)
    with torch.no_grad():
        y = model(x, *model.encode_style_vector([1.0, 0.0]))
    chroma = lambda t: t - (t * luma).sum(1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(chroma(y), chroma(x), rtol=1e-4, atol=1e-3)


def test_controls_are_validated(tmp_path: Path) -> None:
    path = _bank_model(tmp_path)
    for bad in (dict(alpha=1.5), dict(color="histogram"), dict(brush=4)):
        with pytest.raises(ValueError):
            create_model(f"msgnet:{path}", **bad)


# --------------------------------------------------------------------------- through the Stylizer
def test_stylizer_swaps_bank_style_image_and_brush(tmp_path: Path, content_photo: np.ndarray) -> None:
    path = _bank_model(tmp_path)
    st = Stylizer(f"msgnet:{path}", backend="eager", frame_size=(160, 120))
    a = st.stylize(content_photo)
    st.set_style(style_vector="beta_style", wait=True)
    b = st.stylize(content_photo)
    assert np.abs(a.astype(int) - b).mean() > 0.05
    style_img = np.ascontiguousarray(content_photo[::-1])
    st.set_style(style_image=style_img, wait=True)
    c = st.stylize(content_photo)
    st.set_style(options={"brush": 512}, wait=True)  # a control change keeps the style image
    d = st.stylize(content_photo)
    assert st.state.style_source is not None and st.state.style_source[0] == "image"
    ref = Stylizer(create_model(f"msgnet:{path}", brush=512), backend="eager", style_image=style_img,
                   frame_size=(160, 120)).stylize(content_photo)
    np.testing.assert_array_equal(d, ref)
    assert np.abs(c.astype(int) - d).mean() > 0.0


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_exported_graph_takes_the_style_as_input(tmp_path: Path, content_photo: np.ndarray, backend: str) -> None:
    pytest.importorskip("onnxruntime" if backend == "onnx" else "openvino")
    from rtstyle.bench import psnr

    path = _bank_model(tmp_path)
    ref = Stylizer(f"msgnet:{path}", backend="eager", frame_size=(160, 120))
    st = Stylizer(f"msgnet:{path}", backend=backend, frame_size=(160, 120))
    for style in ("alpha_style", "beta_style"):
        ref.set_style(style_vector=style, wait=True)
        st.set_style(style_vector=style, wait=True)
        assert psnr(st.stylize(content_photo), ref.stylize(content_photo)) >= 35.0


def test_mid_file_style_and_brush_swaps_land_on_exact_frames(tmp_path: Path, content_photo: np.ndarray,
                                                             list_source: type, collect_sink: type) -> None:
    from rtstyle.pipeline import Pipeline, parse_schedule

    path = _bank_model(tmp_path)
    name = f"msgnet:{path}"
    sched = parse_schedule(f"#4={name}?style=beta_style,0.8s={name}?style=beta_style&brush=64")
    by_frame = {s.at_frame: s for s in sched}
    assert by_frame[4].style_vector == "beta_style" and by_frame[4].options is None
    assert by_frame[None].options == {"brush": 64} and by_frame[None].at_s == 0.8
    sink = collect_sink()
    Pipeline(list_source([content_photo] * 12, fps=10.0), Stylizer(name, backend="eager", frame_size=(160, 120)), [sink], schedule=sched).run()
    outs = [f.image for f in sink.frames]
    assert [f.index for f in sink.frames] == list(range(12))  # nothing dropped or duplicated

    def ref(**kw) -> np.ndarray:
        opts = kw.pop("options", {})
        return Stylizer(create_model(name, **opts), backend="eager", frame_size=(160, 120), **kw).stylize(content_photo)

    first = ref()
    model_b = create_model(name).with_controls(weights=[0.0, 1.0])
    second = Stylizer(model_b, backend="eager", frame_size=(160, 120)).stylize(content_photo)
    third = Stylizer(model_b.with_controls(brush=64), backend="eager", frame_size=(160, 120)).stylize(content_photo)
    assert all(np.array_equal(o, first) for o in outs[:4])
    assert all(np.array_equal(o, second) for o in outs[4:8])
    assert all(np.array_equal(o, third) for o in outs[8:])
    assert not np.array_equal(second, third)


def test_hotkeys_cycle_the_bank_and_scale_the_brush(tmp_path: Path, content_photo: np.ndarray) -> None:
    from rtstyle.pipeline import Pipeline

    path = _bank_model(tmp_path)
    st = Stylizer(f"msgnet:{path}", backend="eager", frame_size=(160, 120))
    pipe = Pipeline.__new__(Pipeline)  # controls only: no source/sink threads needed
    pipe.stylizer, pipe.styles, pipe._style_idx = st, [], 0

    def settle() -> None:
        st._executor.submit(lambda: None).result()  # one worker: earlier swaps are done

    pipe.next_style()
    settle()
    assert st.state.model.default_style_vector() == [1.0, 0.0]  # module unchanged; the vector is the style
    assert st.state.style_source == ("vector", [0.0, 1.0])
    brush = st.state.model.brush
    pipe.brush_larger()
    settle()
    assert st.state.model.brush == pytest.approx(brush * 1.25)
    assert st.state.style_source == ("vector", [0.0, 1.0])  # the brush change kept the style
    pipe.previous_style()
    settle()
    assert st.state.style_source == ("vector", [1.0, 0.0])

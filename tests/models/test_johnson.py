"""Johnson nets: layouts, checkpoint detection and the Engstrom port against TF semantics."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtstyle.models import UnknownModelError, create_model, list_models
from rtstyle.models.johnson import EngstromNet, TransformerNet, detect_layout, save_rtstyle_weights
from rtstyle.models._spec import ModelSpec


def test_examples_key_layout_matches_pytorch_examples() -> None:
    keys = set(TransformerNet().state_dict())
    # the key names of pytorch/examples fast_neural_style TransformerNet
    for k in ["conv1.conv2d.weight", "in1.weight", "in1.bias", "conv3.conv2d.bias", "res1.conv1.conv2d.weight",
              "res5.in2.bias", "deconv1.conv2d.weight", "in5.weight", "deconv3.conv2d.weight"]:
        assert k in keys
    assert len(keys) == 62


def test_shapes_and_width() -> None:
    for w, n in [(32, 5), (8, 3)]:
        net = TransformerNet(w, n).eval()
        y = net(torch.rand(1, 3, 64, 48) * 255)
        assert y.shape == (1, 3, 64, 48)
        assert net.conv1.conv2d.out_channels == w and net.conv3.conv2d.out_channels == 4 * w


def test_loads_examples_checkpoint_with_legacy_running_stats(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = TransformerNet(16, 5)
    sd = net.state_dict()
    # old pytorch/examples checkpoints carry InstanceNorm running stats the loader must drop
    sd["in1.running_mean"] = torch.zeros(16)
    sd["in1.running_var"] = torch.ones(16)
    p = tmp_path / "user.model"
    torch.save(sd, p)
    m = create_model(str(p))
    assert isinstance(m, TransformerNet) and m.width == 16 and m.n_res == 5
    x = torch.rand(1, 3, 32, 32) * 255
    with torch.no_grad():
        assert torch.allclose(m(x), net.eval()(x), atol=1e-4)


def test_safetensors_roundtrip_keeps_spec(tmp_path: Path) -> None:
    net = TransformerNet(4, 1)
    spec = ModelSpec(name="johnson.test", family="johnson", styles=("x",), licence="CC0-1.0")
    p = save_rtstyle_weights(net, spec, tmp_path / "m.safetensors")
    m = create_model(p)
    assert m.spec.name == "johnson.test" and m.spec.styles == ("x",)


def test_layout_detection_and_errors(tmp_path: Path) -> None:
    assert detect_layout(TransformerNet(4, 1).state_dict()) == "examples"
    assert detect_layout(EngstromNet().state_dict()) == "engstrom"
    bad = tmp_path / "bad.pth"
    torch.save({"foo.weight": torch.zeros(3)}, bad)
    with pytest.raises(UnknownModelError):
        create_model(bad)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):  # refused before any loader (weights.check_weight_file)
        create_model(corrupt)
    with pytest.raises(FileNotFoundError):
        create_model(tmp_path / "missing.pth")


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(UnknownModelError) as e:
        create_model("johnson.starry_nite_lite")
    names = list_models("johnson.*")
    if names:
        assert "did you mean" in str(e.value)


# ---------------------------------------------------------------- Engstrom vs TF semantics
def _tf_same(n: int, k: int, s: int) -> tuple[int, int]:
    out = math.ceil(n / s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _tf_conv2d_same(x: torch.Tensor, w: torch.Tensor, s: int) -> torch.Tensor:
    k = w.shape[-1]
    pt, pb = _tf_same(x.shape[2], k, s)
    pl, pr = _tf_same(x.shape[3], k, s)
    return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, stride=s)


def _tf_conv2d_transpose_same(x: torch.Tensor, w_in_out: torch.Tensor) -> torch.Tensor:
    """TF defines conv2d_transpose as the gradient of conv2d w.r.t. its input: compute exactly that."""
    n, _, h, wd = x.shape
    z = torch.zeros(n, w_in_out.shape[1], 2 * h, 2 * wd, dtype=x.dtype, requires_grad=True)
    y = _tf_conv2d_same(z, w_in_out, 2)  # conv2d maps 'out' channels back to 'in' channels
    assert y.shape[-2:] == x.shape[-2:]
    (g,) = torch.autograd.grad(y, z, grad_outputs=x)
    return g


def _tf_instance_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    mu = x.mean((2, 3), keepdim=True)
    var = ((x - mu) ** 2).mean((2, 3), keepdim=True)
    return scale.view(1, -1, 1, 1) * (x - mu) / (var + 1e-3) ** 0.5 + shift.view(1, -1, 1, 1)


def _engstrom_reference(sd: dict[str, torch.Tensor], img: torch.Tensor) -> torch.Tensor:
    def block(x, name, s, relu=True, transpose=False):
        w = sd[f"{name}.conv.weight"].double()
        y = _tf_conv2d_transpose_same(x, w) if transpose else _tf_conv2d_same(x, w, s)
        y = _tf_instance_norm(y, sd[f"{name}.norm.scale"].double(), sd[f"{name}.norm.shift"].double())
        return torch.relu(y) if relu else y

    x = block(img, "conv1", 1)
    x = block(x, "conv2", 2)
    x = block(x, "conv3", 2)
    for i in range(5):
        x = x + block(block(x, f"res.{i}.c1", 1), f"res.{i}.c2", 1, relu=False)
    x = block(x, "up1", 2, transpose=True)
    x = block(x, "up2", 2, transpose=True)
    x = block(x, "out", 1, relu=False)
    return torch.tanh(x) * 150 + 255.0 / 2


@pytest.mark.parametrize("hw", [(120, 160), (61, 83)])
def test_engstrom_matches_tf_definition(engstrom_udnie: Path, content_photo: np.ndarray, hw: tuple[int, int]) -> None:
    import cv2

    h, w = hw
    img = cv2.resize(content_photo, (w, h), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    sd = torch.load(engstrom_udnie, map_location="cpu", weights_only=True)
    ref = _engstrom_reference(sd, x).clamp(0, 255)
    net = create_model(engstrom_udnie)
    assert isinstance(net, EngstromNet)
    with torch.no_grad():
        y = net(x.float()).clamp(0, 255).double()
    # output size follows TF: ceil twice down, x2 twice up
    assert y.shape == ref.shape
    assert (y - ref).abs().max().item() <= 1.0, "Engstrom port differs from the TF definition by more than 1/255"
    # and it really stylises: far from the input
    assert (y[..., :h, :w] - x).abs().mean().item() > 10

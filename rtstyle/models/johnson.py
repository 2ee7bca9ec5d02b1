"""Johnson et al. feed-forward transform nets.

Two layouts are supported:

* :class:`TransformerNet` - the pytorch/examples ``fast_neural_style`` network (reflection
  padding, instance norm, nearest-upsample-then-conv), state-dict compatible with its
  checkpoints, with a ``width`` setting (base channels; 32 in the paper) and a number of
  residual blocks for lighter real-time variants. rtstyle's own trained models use it.
* :class:`EngstromNet` - Logan Engstrom's TensorFlow variant (TF 'SAME' zero padding, transposed
  convolutions, bias-free convs, instance norm with eps 1e-3, ``tanh*150+127.5`` output), so
  users' existing checkpoints converted from it run unchanged.

Both take and return RGB float in [0, 255].
"""
from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import ConvLayer, ResidualBlock, UpsampleConvLayer
from ._registry import register_model, register_path_loader
from ._safetensors_io import write_safetensors
from ._spec import ModelSpec

__all__ = ["TransformerNet", "EngstromNet", "load_johnson_checkpoint", "save_rtstyle_weights", "shipped_manifest"]

log = logging.getLogger(__name__)


class TransformerNet(nn.Module):
    """Johnson et al. transform net (pytorch/examples key names).

    Args:
        width: channels of the first conv; the net uses ``width, 2*width, 4*width``.
        n_res: number of residual blocks (5 in the paper).

    Shape:
        ``(N, 3, H, W)`` RGB in [0, 255] -> ``(N, 3, H, W)`` (unclamped; the stylizer clamps).
        ``H`` and ``W`` should be multiples of 4 for an exact size round trip.

    Attributes:
        spec: the contract, set by whoever builds the net (loader, registry, MetaNet).
        prechecked: True when the builder checked layout and weights (MetaNet's generated nets;
            see :class:`rtstyle.models._abilities.Prechecked`).
        auto_backend: what ``--backend auto`` means for this net (``None``: the usual for the device).
    """

    spec: ModelSpec
    prechecked: bool = False
    auto_backend: str | None = None

    def __init__(self, width: int = 32, n_res: int = 5) -> None:
        super().__init__()
        w = int(width)
        self.width, self.n_res = w, int(n_res)
        self.conv1 = ConvLayer(3, w, 9, 1)
        self.in1 = nn.InstanceNorm2d(w, affine=True)
        self.conv2 = ConvLayer(w, 2 * w, 3, 2)
        self.in2 = nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3 = ConvLayer(2 * w, 4 * w, 3, 2)
        self.in3 = nn.InstanceNorm2d(4 * w, affine=True)
        for i in range(1, self.n_res + 1):
            self.add_module(f"res{i}", ResidualBlock(4 * w))
        self.deconv1 = UpsampleConvLayer(4 * w, 2 * w, 3, 1, upsample=2)
        self.in4 = nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2 = UpsampleConvLayer(2 * w, w, 3, 1, upsample=2)
        self.in5 = nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = ConvLayer(w, 3, 9, 1)
        self.relu = nn.ReLU()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder half: ``(N, 3, H, W)`` -> the residual blocks' output ``(N, 4*width, H/4, W/4)``
        (the features the feature-level temporal loss of ReCoNet compares)."""
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for i in range(1, self.n_res + 1):
            y = getattr(self, f"res{i}")(y)
        return y

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """The decoder half: :meth:`encode`'s features -> the output image."""
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    # TF 'SAME': total = max((ceil(n/s) - 1)*s + k - n, 0). For k >= s (every layer here) that is
    # (-n) % s + k - s, which torch.export traces much faster on symbolic sizes than ceil/max.
    total = (-n) % s + k - s
    return total // 2, total - total // 2


class _TFInstanceNorm(nn.Module):
    def __init__(self, ch: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(ch))
        self.shift = nn.Parameter(torch.zeros(ch))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean((2, 3), keepdim=True)
        var = (x - mu).pow(2).mean((2, 3), keepdim=True)  # biased, as tf.nn.moments
        return (x - mu) / torch.sqrt(var + self.eps) * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)


class _TFConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, bias=False)
        self.norm = _TFInstanceNorm(cout)
        self.k, self.s, self.relu = k, s, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pt, pb = _same_pad(h, self.k, self.s)
        pl, pr = _same_pad(w, self.k, self.s)
        y = self.norm(self.conv(F.pad(x, (pl, pr, pt, pb))))
        return F.relu(y) if self.relu else y


class _TFConvT(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, 2, padding=0, bias=False)
        self.norm = _TFInstanceNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.conv(x)[..., : 2 * h, : 2 * w]  # TF 'SAME' transposed conv: pad 0 before, 1 after
        return F.relu(self.norm(y))


class _TFRes(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.c1 = _TFConv(ch, ch, 3, 1)
        self.c2 = _TFConv(ch, ch, 3, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(self.c1(x))


class EngstromNet(nn.Module):
    """Engstrom's TensorFlow fast-style-transfer net, ported op for op.

    Shape:
        ``(N, 3, H, W)`` RGB in [0, 255] -> ``(N, 3, H, W)`` in [0, 255] (any H, W).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _TFConv(3, 32, 9, 1)
        self.conv2 = _TFConv(32, 64, 3, 2)
        self.conv3 = _TFConv(64, 128, 3, 2)
        self.res = nn.ModuleList([_TFRes(128) for _ in range(5)])
        self.up1 = _TFConvT(128, 64)
        self.up2 = _TFConvT(64, 32)
        self.out = _TFConv(32, 3, 9, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))
        for r in self.res:
            y = r(y)
        y = self.out(self.up2(self.up1(y)))
        return torch.tanh(y) * 150.0 + 255.0 / 2


# --------------------------------------------------------------------------- loading

_RUNNING_STATS = re.compile(r"in\d+\.running_(mean|var)$|\.num_batches_tracked$")


def _read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or not a torch file
        raise ValueError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state dict")
    return obj, {}


def detect_layout(sd: dict[str, torch.Tensor]) -> str | None:
    """``"examples"`` (pytorch/examples / rtstyle), ``"engstrom"``, or ``None``."""
    if "conv1.conv2d.weight" in sd and "deconv3.conv2d.weight" in sd:
        return "examples"
    if "conv1.conv.weight" in sd and "res.0.c1.conv.weight" in sd and "up1.conv.weight" in sd:
        return "engstrom"
    return None


def _build_from_sd(sd: dict[str, torch.Tensor], name: str) -> tuple[nn.Module, str]:
    layout = detect_layout(sd)
    if layout == "examples":
        sd = {k: v for k, v in sd.items() if not _RUNNING_STATS.search(k)}
        width = int(sd["conv1.conv2d.weight"].shape[0])
        n_res = len({k.split(".")[0] for k in sd if re.match(r"res\d+\.", k)})
        net: nn.Module = TransformerNet(width, n_res)
    elif layout == "engstrom":
        net = EngstromNet()
    else:
        raise ValueError(f"{name}: keys are neither the pytorch/examples TransformerNet nor the Engstrom layout")
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"{name}: checkpoint does not match the {layout} layout "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net, layout


def load_johnson_checkpoint(path: str | Path, **_: Any) -> nn.Module | None:
    """Load a Johnson-family checkpoint, detecting its layout from the keys.

    Accepts pytorch/examples ``.pth`` / ``.model`` files, Engstrom-layout ``.pth`` files and
    rtstyle ``.safetensors`` (whose metadata carries the spec). Returns ``None`` when the file
    is a readable state dict of another family.
    """
    path = Path(path)
    sd, meta = _read_state_dict(path)
    if detect_layout(sd) is None:
        return None
    net, layout = _build_from_sd(sd, str(path))
    if "spec" in meta:
        spec = ModelSpec.from_json(meta["spec"])
    else:
        spec = ModelSpec(
            name=f"{'engstrom' if layout == 'engstrom' else 'johnson'}:{path.name}",
            family="johnson",
            description=f"user checkpoint ({layout} layout)",
            size_multiple=4 if layout == "examples" else 1,
            styles=(path.stem,),
            licence="user-supplied",
            weights=str(path),
            extra={"layout": layout},
        )
    net.spec = spec  # type: ignore[attr-defined]
    return net


register_path_loader("johnson", load_johnson_checkpoint)


def save_rtstyle_weights(net: TransformerNet, spec: ModelSpec, path: str | Path) -> Path:
    """Write a TransformerNet as safetensors with its spec in the metadata."""
    sd = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    return write_safetensors(path, sd, {"spec": spec.to_json(), "format": "rtstyle.johnson/1"})


# --------------------------------------------------------------------------- shipped models

_PKG_WEIGHTS = "rtstyle.weights_data"


@lru_cache(maxsize=1)
def shipped_manifest() -> dict[str, dict[str, Any]]:
    """``manifest.json`` of the weights shipped in the package (name -> entry)."""
    try:
        text = resources.files(_PKG_WEIGHTS).joinpath("manifest.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return {}
    return {e["spec"]["name"]: e for e in json.loads(text)["models"]}


def _shipped_factory(spec: ModelSpec, **_: Any) -> nn.Module:
    from ..weights import sha256_file

    ref = resources.files(_PKG_WEIGHTS).joinpath(str(spec.weights))
    with resources.as_file(ref) as p:
        if spec.sha256 and sha256_file(p) != spec.sha256:
            raise ValueError(f"{spec.name}: shipped weights {p.name} fail their sha256 check (reinstall rtstyle)")
        sd, _ = _read_state_dict(Path(p))
    net, _ = _build_from_sd(sd, spec.name)
    net.spec = spec  # type: ignore[attr-defined]
    return net


def _register_shipped() -> None:
    for name, entry in shipped_manifest().items():
        if entry["spec"].get("family") != "johnson":
            continue  # other families register their own shipped entries
        spec = ModelSpec.from_json(json.dumps(entry["spec"]))
        register_model(spec)(_shipped_factory)


_register_shipped()

"""MSG-Net: multi-style generative network with the CoMatch layer (Zhang & Dana 2017).

Architecture (module names follow the authors' PyTorch ``Net``, so their ``21styles.model``
loads; see :func:`convert_21styles`):

* ``model1`` — the Siamese encoder, shared by the content and style branches: 7x7 conv (reflection
  pad) -> instance norm -> ReLU -> two stride-2 pre-activation bottlenecks (expansion 4), giving
  ``C = 4 * ngf`` channels at a quarter of the resolution;
* ``ins`` — the CoMatch ("Inspiration") layer: with the style's Gram matrix ``G`` of the encoder
  features (``C x C``) and a learned ``W``, ``y = (W G)^T x`` per position;
* ``model.2 ..`` — ``n_blocks`` bottlenecks, two upsampling bottlenecks (nearest upsampling then an
  integer-stride conv: no transposed convolution, no checkerboard), instance norm, ReLU, 7x7 conv.

Unlike the authors' code, the style is an **explicit input**: ``forward(x, gram, alpha)`` with
``gram`` ``(1, C, C)``; there is no ``setTarget`` state, so the graph exports to ONNX/TensorRT with
the style as an input and switching styles is a tensor swap. ``alpha`` (content-style strength) blends
the style Gram with the frame's own Gram in the graph (``alpha = 0``: the frame's own statistics).

Input contract: RGB 0..255 (the authors' checkpoints are BGR 0..255: their spec says so), H and W
multiples of 4.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..nn.losses import gram as _gram  # ``gram`` names the style input here
from ._registry import register_path_loader
from ._safetensors_io import write_safetensors
from ._shipped import register_entries, shipped_entries, shipped_file
from ._spec import ModelSpec

__all__ = [
    "MSGNet",
    "MSGNetArch",
    "MSGStyleBank",
    "MSGStyled",
    "comatch",
    "convert_21styles",
    "gram_matrix",
    "load_msgnet",
    "save_msgnet",
]

log = logging.getLogger(__name__)
FORMAT = "rtstyle.msgnet/1"
_EXP = 4  # bottleneck expansion


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, C)`` normalised by ``C * H * W`` (as the authors' GramMatrix), in
    ``f``'s dtype (:func:`rtstyle.nn.losses.gram` without the float32 upcast)."""
    return _gram(f, upcast=False)


def comatch(x: torch.Tensor, weight: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """The CoMatch layer: ``y = (W G)^T x`` at every position.

    Shape:
        x ``(N, C, H, W)``, weight ``(1, C, C)``, gram ``(1 or N, C, C)`` -> ``(N, C, H, W)``.
    """
    n, c, h, w = x.shape
    p = torch.matmul(weight, gram)  # (B, C, C)
    return torch.matmul(p.transpose(1, 2), x.reshape(n, c, h * w)).reshape(n, c, h, w)


class _Conv(nn.Module):
    """Reflection-padded conv (key ``conv2d``), optionally after nearest upsampling."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, upsample: int | None = None) -> None:
        super().__init__()
        self.pad = k // 2
        self.upsample = upsample
        self.conv2d = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=float(self.upsample), mode="nearest")
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.conv2d(x)


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c)  # affine=False, no running stats: no state-dict keys


class _Bottleneck(nn.Module):
    """Pre-activation bottleneck; with ``down`` a 1x1 strided ``residual_layer``."""

    def __init__(self, cin: int, planes: int, stride: int = 1, down: bool = False) -> None:
        super().__init__()
        self.residual_layer = nn.Conv2d(cin, planes * _EXP, 1, stride) if down else None
        self.conv_block = nn.Sequential(
            _norm(cin), nn.ReLU(), nn.Conv2d(cin, planes, 1),
            _norm(planes), nn.ReLU(), _Conv(planes, planes, 3, stride),
            _norm(planes), nn.ReLU(), nn.Conv2d(planes, planes * _EXP, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.residual_layer is None else self.residual_layer(x)
        return res + self.conv_block(x)


class _UpBottleneck(nn.Module):
    """Upsampling bottleneck: nearest x2 then integer-stride convs, in both branches."""

    def __init__(self, cin: int, planes: int) -> None:
        super().__init__()
        self.residual_layer = _Conv(cin, planes * _EXP, 1, upsample=2)
        self.conv_block = nn.Sequential(
            _norm(cin), nn.ReLU(), nn.Conv2d(cin, planes, 1),
            _norm(planes), nn.ReLU(), _Conv(planes, planes, 3, upsample=2),
            _norm(planes), nn.ReLU(), nn.Conv2d(planes, planes * _EXP, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual_layer(x) + self.conv_block(x)


@dataclass(frozen=True)
class MSGNetArch:
    """Widths of an MSG-Net. The authors' model is ``MSGNetArch(128, 6, 64, 32, 32, 16)``.

    Attributes:
        ngf: bottleneck width (CoMatch channels ``C = 4 * ngf``).
        n_blocks: residual bottlenecks after CoMatch.
        stem: output channels of the first 7x7 conv.
        down1: planes of the first downsampling bottleneck.
        up1, up2: planes of the two upsampling bottlenecks.
    """

    ngf: int = 128
    n_blocks: int = 6
    stem: int = 64
    down1: int = 32
    up1: int = 32
    up2: int = 16

    @property
    def channels(self) -> int:
        return self.ngf * _EXP


class MSGNet(nn.Module):
    """MSG-Net with the style Gram as an explicit input.

    Shape:
        ``forward(x, gram, alpha)``: x ``(N, 3, H, W)`` 0..255 (H, W multiples of 4), gram
        ``(1, C, C)`` from :meth:`style_gram`, alpha ``(1,)`` in [0, 1] -> ``(N, 3, H, W)`` 0..255.
    """

    def __init__(self, arch: MSGNetArch = MSGNetArch()) -> None:
        super().__init__()
        a = self.arch = arch
        self.model1 = nn.Sequential(
            _Conv(3, a.stem, 7), _norm(a.stem), nn.ReLU(),
            _Bottleneck(a.stem, a.down1, 2, down=True),
            _Bottleneck(a.down1 * _EXP, a.ngf, 2, down=True),
        )
        self.ins = _CoMatchWeight(a.channels)
        # indices 0 and 1 are model1 and ins in the authors' Sequential; Identity keeps the numbering
        body: list[nn.Module] = [nn.Identity(), nn.Identity()]
        body += [_Bottleneck(a.channels, a.ngf) for _ in range(a.n_blocks)]
        body += [_UpBottleneck(a.channels, a.up1), _UpBottleneck(a.up1 * _EXP, a.up2),
                 _norm(a.up2 * _EXP), nn.ReLU(), _Conv(a.up2 * _EXP, 3, 7)]
        self.model = nn.Sequential(*body)
        # graph-shaping flag (colour preservation) enters the engine cache key via the weights hash
        self.register_buffer("graph_flags", torch.zeros(1))

    @property
    def channels(self) -> int:
        return self.arch.channels

    def style_gram(self, style: torch.Tensor) -> torch.Tensor:
        """Style image ``(1, 3, H, W)`` 0..255 -> its CoMatch target ``(1, C, C)`` (the Siamese branch)."""
        return gram_matrix(self.model1(style))

    def forward(self, x: torch.Tensor, gram: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
        f = self.model1(x)
        if alpha is not None:
            a = alpha.reshape(1, 1, 1)
            gram = a * gram + (1.0 - a) * gram_matrix(f)
        h = comatch(f, self.ins.weight, gram)
        for m in list(self.model)[2:]:
            h = m(h)
        return h


class _CoMatchWeight(nn.Module):
    """Holds the CoMatch weight ``W`` (key ``ins.weight``, shape ``(1, C, C)``)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, c, c).uniform_(0.0, 0.02))


# --------------------------------------------------------------------------- checkpoints

_DROP = re.compile(r"(running_mean|running_var|num_batches_tracked)$|^model\.[01]\.")


def convert_21styles(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], MSGNetArch]:
    """The authors' ``Net`` state dict (``21styles.model`` layout) -> ours, and its widths.

    Their ``model.0`` / ``model.1`` repeat ``model1`` / ``ins`` (the same modules registered twice)
    and old PyTorch saved instance-norm running statistics; both are dropped.
    """
    if "model1.0.conv2d.weight" not in sd or "ins.weight" not in sd:
        raise ValueError("not an MSG-Net state dict (no model1.0.conv2d.weight / ins.weight)")
    out = {k: v for k, v in sd.items() if not _DROP.search(k)}
    blocks = sorted({int(m.group(1)) for k in out if (m := re.match(r"model\.(\d+)\.", k))})
    n_up = 2
    n_blocks = sum(1 for i in blocks if f"model.{i}.conv_block.5.conv2d.weight" in out
                   and f"model.{i}.residual_layer.conv2d.weight" not in out)
    ups = [i for i in blocks if f"model.{i}.residual_layer.conv2d.weight" in out]
    if len(ups) != n_up:
        raise ValueError(f"MSG-Net state dict: expected 2 upsampling blocks, found {len(ups)}")
    arch = MSGNetArch(
        ngf=int(out["model1.4.conv_block.2.weight"].shape[0]),
        n_blocks=n_blocks,
        stem=int(out["model1.0.conv2d.weight"].shape[0]),
        down1=int(out["model1.3.conv_block.2.weight"].shape[0]),
        up1=int(out[f"model.{ups[0]}.conv_block.2.weight"].shape[0]),
        up2=int(out[f"model.{ups[1]}.conv_block.2.weight"].shape[0]),
    )
    return out, arch


def save_msgnet(net: MSGNet, spec: ModelSpec, path: str | Path, bank: dict[str, torch.Tensor] | None = None,
                dtype: torch.dtype = torch.float16) -> Path:
    """Write weights (+ an optional style bank of Grams, keys ``bank.<style>.<size>``) as safetensors."""
    from dataclasses import asdict

    sd = {k: v.detach().to(dtype).contiguous().cpu() for k, v in net.state_dict().items() if k != "graph_flags"}
    for k, v in (bank or {}).items():
        sd[f"bank.{k}"] = v.detach().to(dtype).contiguous().cpu()
    meta = {"format": FORMAT, "spec": spec.to_json(), "arch": json.dumps(asdict(net.arch))}
    return write_safetensors(path, sd, meta)


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k).float() for k in f.keys()}, dict(f.metadata() or {})
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or not a torch file
        raise ValueError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state dict")
    return {k: v.float() for k, v in obj.items()}, {}


def load_msgnet(path: str | Path) -> tuple[MSGNet, dict[str, torch.Tensor], dict[str, str]]:
    """An MSG-Net from an rtstyle file or an authors'-layout checkpoint; its Gram bank; metadata."""
    path = Path(path)
    sd, meta = _read(path)
    bank = {k[5:]: v for k, v in sd.items() if k.startswith("bank.")}
    sd = {k: v for k, v in sd.items() if not k.startswith("bank.")}
    if meta.get("format") == FORMAT:
        arch = MSGNetArch(**json.loads(meta["arch"]))
    else:
        sd, arch = convert_21styles(sd)
    net = MSGNet(arch)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k != "graph_flags"]
    if missing or unexpected:
        raise ValueError(f"{path}: does not match the MSG-Net layout (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), bank, meta


# --------------------------------------------------------------------------- styles and controls

def _bank_sizes(bank: dict[str, torch.Tensor], style: str) -> list[int]:
    return sorted(int(k.rsplit(".", 1)[1]) for k in bank if k.rsplit(".", 1)[0] == style)


class MSGStyleBank:
    """The Grams a model was shipped with: ``style name -> {style size -> (1, C, C)}``.

    A Gram for a brush size between two stored sizes is interpolated linearly between them.
    """

    def __init__(self, bank: dict[str, torch.Tensor]) -> None:
        self.names: tuple[str, ...] = tuple(dict.fromkeys(k.rsplit(".", 1)[0] for k in bank))
        self._bank = bank

    def __len__(self) -> int:
        return len(self.names)

    def sizes(self, style: str) -> list[int]:
        return _bank_sizes(self._bank, style)

    def resolve(self, style: str | int) -> str:
        if isinstance(style, int) or (isinstance(style, str) and style.isdigit()):
            i = int(style)
            if not 0 <= i < len(self.names):
                raise ValueError(f"style index {i} out of range 0..{len(self.names) - 1}")
            return self.names[i]
        if style not in self.names:
            import difflib

            close = difflib.get_close_matches(str(style), self.names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"no style {style!r} in this model's bank ({len(self.names)} styles){hint}")
        return str(style)

    def gram(self, style: str | int, size: float) -> torch.Tensor:
        name = self.resolve(style)
        sizes = self.sizes(name)
        size = float(np.clip(size, sizes[0], sizes[-1]))
        hi = next(s for s in sizes if s >= size)
        lo = max(s for s in sizes if s <= size)
        g_lo, g_hi = self._bank[f"{name}.{lo}"], self._bank[f"{name}.{hi}"]
        t = 0.0 if hi == lo else (size - lo) / (hi - lo)
        return ((1 - t) * g_lo + t * g_hi).float()


class MSGStyled(nn.Module):
    """An MSG-Net bound to controls, driven by the Stylizer's explicit style inputs.

    Style inputs are ``(gram (1, C, C), alpha (1,))``, built by :meth:`encode_style` (a style image
    the user gives) or :meth:`encode_style_vector` (weights over the shipped bank: a one-hot vector
    selects a style, two non-zero weights interpolate). Everything here is computed once per style
    change, off the hot path; the frame path only runs :meth:`forward`.

    Args:
        net: the MSG-Net.
        bank: the Grams shipped with it (may be empty for a bare checkpoint).
        brush: brush-stroke size as the style image's longer side in pixels (the paper's style
            scale: larger style image, larger strokes). Bank Grams are interpolated between sizes.
        alpha: content-style strength in [0, 1].
        colour: ``None`` or ``"luminance"`` (keep the frame's colours: only luma is stylised).
        style: default style (bank name or index) when no style image is given.
    """

    def __init__(self, net: MSGNet, bank: MSGStyleBank, *, brush: float = 256.0, alpha: float = 1.0,
                 color: str | None = None, style: str | int | None = None, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        if color not in (None, "luminance"):
            raise ValueError(f"color must be None or 'luminance' for MSG-Net, got {color!r}")
        if not 16 <= brush <= 2048:
            raise ValueError(f"brush size (style image side in pixels) must be within 16..2048, got {brush}")
        self.net = net
        self.bank = bank
        self.brush = float(brush)
        self.alpha = float(alpha)
        self.color = color
        self.default_style = style
        self.weights = None if weights is None else list(weights)
        self.register_buffer("graph_flags", torch.tensor([float(color == "luminance")]))

    def with_controls(self, **changes: Any) -> "MSGStyled":
        """A new bound model sharing the network (cheap); ``brush=``, ``alpha=``, ``color=``, ``style=``."""
        kw = dict(brush=self.brush, alpha=self.alpha, color=self.color, style=self.default_style, weights=self.weights)
        kw.update(changes)
        new = MSGStyled(self.net, self.bank, **kw)  # type: ignore[arg-type]
        spec = getattr(self, "spec", None)
        if spec is not None:
            new.spec = replace(spec, extra=dict(spec.extra, brush=new.brush, alpha=new.alpha, color=new.color))  # type: ignore[attr-defined]
        return new

    # ------------------------------------------------------------------ style inputs
    def _alpha(self) -> torch.Tensor:
        return torch.tensor([self.alpha])

    @torch.no_grad()
    def gram_of_image(self, style: torch.Tensor) -> torch.Tensor:
        """A style image ``(1, 3, H, W)`` in [0, 1] RGB, resized so its longer side is the brush size."""
        h, w = style.shape[-2:]
        s = self.brush / max(h, w)
        size = (max(16, round(h * s)), max(16, round(w * s)))
        img = F.interpolate(style.float(), size=size, mode="bilinear", align_corners=False, antialias=s < 1)
        spec = getattr(self, "spec", None)
        if spec is not None and spec.color_order == "BGR":
            img = img.flip(1)
        return self.net.style_gram(img * 255.0)

    def encode_style(self, style: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Style image -> ``(gram, alpha)`` (already-encoded inputs pass through)."""
        if isinstance(style, (tuple, list)):
            return tuple(style)
        return self.gram_of_image(style), self._alpha()

    def default_style_vector(self) -> list[float]:
        if not len(self.bank):
            raise ValueError("this MSG-Net has no shipped style bank: give a style image (--style IMG)")
        if self.weights is not None:
            return list(self.weights)
        v = [0.0] * len(self.bank)
        v[self.bank.names.index(self.bank.resolve(self.default_style if self.default_style is not None else 0))] = 1.0
        return v

    def parse_style_vector(self, value: Any) -> list[float]:
        """Bank weights from a style name or index (``"wave"``, ``3``), a blend (``"wave:0.5,udnie:0.5"``)
        or one weight per bank style."""
        from ._style_vector import parse_style_vector

        if not len(self.bank):
            raise ValueError("this MSG-Net has no shipped style bank: give a style image")
        return parse_style_vector(value, len(self.bank), styles=self.bank.names,
                                  what=f"{getattr(getattr(self, 'spec', None), 'name', 'msgnet')} style")

    def encode_style_vector(self, vector: Any) -> tuple[torch.Tensor, ...]:
        """Weights over the bank -> ``(gram, alpha)``: one-hot selects, several weights interpolate."""
        from .adain import validate_weights

        w = validate_weights(list(np.ravel(np.asarray(vector, dtype=float))), len(self.bank))
        gram = sum(wi * self.bank.gram(i, self.brush) for i, wi in enumerate(w) if wi > 0)
        return gram, self._alpha()  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, gram: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        out = self.net(x, gram, alpha)
        if self.color == "luminance":
            from .adain import luminance_transfer

            out = luminance_transfer(out, x)
        return out


# --------------------------------------------------------------------------- registry


def _spec_for_file(path: Path, meta: dict[str, str], bank: MSGStyleBank) -> ModelSpec:
    if "spec" in meta:
        return ModelSpec.from_json(meta["spec"])
    return ModelSpec(
        name=f"msgnet:{path.name}",
        family="msgnet",
        description="user MSG-Net checkpoint (authors' layout: BGR 0..255); give --style IMG",
        color_order="BGR",
        input_range=(0.0, 255.0),
        output_range=(0.0, 255.0),
        size_multiple=4,
        needs_style_image=not len(bank),
        styles=bank.names,
        licence="user-supplied",
        weights=str(path),
        extra={"layout": "21styles"},
    )


def build_msgnet(net: MSGNet, bank: dict[str, torch.Tensor], spec: ModelSpec, **controls: Any) -> MSGStyled:
    sb = MSGStyleBank(bank)
    model = MSGStyled(net, sb, **controls)
    # ``extra`` is persisted with the weights: the colour mode keeps the key of the files shipped so far
    model.spec = replace(spec, styles=sb.names, needs_style_image=not len(sb),  # type: ignore[attr-defined]
                         extra=dict(spec.extra, brush=model.brush, alpha=model.alpha, **{"colour": model.color}))
    return model


def load_msgnet_checkpoint(path: str | Path, **controls: Any) -> nn.Module | None:
    """Registry path loader (``msgnet:PATH`` or a bare path): ``None`` if not an MSG-Net file."""
    path = Path(path)
    try:
        sd, meta = _read(path)
    except ValueError:
        return None
    if meta.get("format") != FORMAT and "ins.weight" not in sd:
        return None
    net, bank, meta = load_msgnet(path)
    return build_msgnet(net, bank, _spec_for_file(path, meta, MSGStyleBank(bank)), **controls)


register_path_loader("msgnet", load_msgnet_checkpoint)


def _shipped_factory(spec: ModelSpec, **controls: Any) -> nn.Module:
    from ..weights import sha256_file

    with shipped_file(spec) as p:
        if spec.sha256 and sha256_file(p) != spec.sha256:
            raise ValueError(f"{spec.name}: shipped weights {p.name} fail their sha256 check (reinstall rtstyle)")
        net, bank, _ = load_msgnet(Path(p))
    return build_msgnet(net, bank, spec, **controls)


register_entries(shipped_entries("msgnet"), _shipped_factory)

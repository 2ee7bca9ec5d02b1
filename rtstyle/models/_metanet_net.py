"""MetaNet's architecture: style features -> the weights of a Johnson TransformerNet.

See :mod:`rtstyle.models.metanet` for the family, its input contract and its file format.
Warm starts (:meth:`MetaNet.init_from`, :meth:`MetaNet.init_from_meta`) live here, not in
``training/``: they write the heads' base outputs, which are part of this parametrisation.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Literal, TypeVar, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..image import check_image, to_tensor
from ._metanet_style import FEATURE_DIM, _FeatureNet, feature_stats, load_style_vgg, resize_long
from ._spec import ModelSpec
from ._style_encoder import sample_frames, style_encoder_for
from .johnson import TransformerNet

__all__ = ["GenLayer", "MetaNet", "MetaNetArch", "count_parameters", "generated_layers"]

_COLOR_PARAMS = 12  # a 3x3 colour matrix (about the identity) and an offset, folded into deconv3
_COLOR_OFFSET_SCALE = 64.0  # the offset's unit in output levels (0..255)
_STYLE_NORM_GAIN = 0.25  # the style-norm head's equalised-learning-rate multiplier, x 1/sqrt(fan-in)


@dataclass(frozen=True)
class GenLayer:
    """One generated conv of the transform net: ``<path>.conv2d.{weight,bias}``."""

    path: str
    cout: int
    cin: int
    k: int = 3

    @property
    def key(self) -> str:  # ModuleDict key (no dots)
        return self.path.replace(".", "_")

    @property
    def n_weight(self) -> int:
        return self.cout * self.cin * self.k * self.k

    @property
    def n_out(self) -> int:
        return self.n_weight + self.cout

    @property
    def init_std(self) -> float:
        return math.sqrt(2.0 / (self.cin * self.k * self.k))


def generated_layers(width: int, n_res: int) -> list[GenLayer]:
    """The convolutions of ``TransformerNet(width, n_res)`` that a meta network generates."""
    w = int(width)
    layers = [GenLayer("conv2", 2 * w, w), GenLayer("conv3", 4 * w, 2 * w)]
    for i in range(1, int(n_res) + 1):
        layers += [GenLayer(f"res{i}.conv1", 4 * w, 4 * w), GenLayer(f"res{i}.conv2", 4 * w, 4 * w)]
    layers += [GenLayer("deconv1", 2 * w, 4 * w), GenLayer("deconv2", w, 2 * w)]
    return layers


@dataclass(frozen=True)
class MetaNetArch:
    """Settings of a meta network.

    Attributes:
        width: base width of the generated TransformerNet (8 = the shipped lite nets).
        n_res: residual blocks of the generated net.
        hidden: FC features per generated layer (the paper: 128).
        rank: ``None`` (0) for full heads ``Linear(hidden, P)``; else each head is factorised as
            ``Linear(hidden, rank, bias=False) -> Linear(rank, P)``.
        style_size: the style image's longer side (pixels) when its features are taken, in
            training and at run time (the statistics depend on scale).
        style_norms: also generate every instance norm's scale and shift (as conditional instance
            norm does per style) and a colour transform folded into the last conv (see
            :class:`MetaNet`); ``False`` in meta networks written before this setting existed.
    """

    width: int = 8
    n_res: int = 5
    hidden: int = 64
    rank: int | None = None
    style_size: int = 256
    style_norms: bool = False


def count_parameters(arch: MetaNetArch) -> dict[str, int]:
    """Parameter counts of a meta network (without building it): ``fc``, ``heads``, ``shared``, ``total``,
    and ``generated`` (numbers in the generated net's generated layers)."""
    layers = generated_layers(arch.width, arch.n_res)
    n_gen = sum(lay.n_out for lay in layers)
    fc = FEATURE_DIM * arch.hidden * len(layers) + arch.hidden * len(layers)
    if arch.rank:
        heads = sum(arch.hidden * arch.rank + (arch.rank + 1) * lay.n_out for lay in layers)
    else:
        heads = (arch.hidden + 1) * n_gen
    with torch.device("meta"):
        net = TransformerNet(arch.width, arch.n_res)
    full = sum(p.numel() for p in net.parameters())
    shared = full - n_gen
    if arch.style_norms:
        n_norm = _n_style_norm_outputs(_norm_layers(net))
        heads += arch.hidden * len(layers) * n_norm
        n_gen += n_norm
    return {"fc": fc, "heads": heads, "shared": shared, "total": fc + heads + shared, "generated": n_gen}


def _norm_layers(net: TransformerNet) -> list[tuple[str, int]]:
    """``(path, channels)`` of every instance norm of ``net``, in module order."""
    return [(name, m.num_features) for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)]


def _n_style_norm_outputs(norm_layers: list[tuple[str, int]]) -> int:
    """Numbers the style-norm head writes: every instance norm's scale and shift, and the 3x3 + 3 colour
    transform of the last conv."""
    return 2 * sum(c for _, c in norm_layers) + _COLOR_PARAMS


class _ScaledLinear(nn.Linear):
    """``nn.Linear`` whose weight is used times a fixed ``mult`` ("equalised learning rate", Karras et
    al. 2018): the stored weight is O(1), so Adam's O(lr) steps move every layer's output at a similar
    relative rate, however wide its input. Keys and shapes are those of ``nn.Linear``."""

    def __init__(self, fan_in: int, fan_out: int, mult: float, bias: bool = True) -> None:
        super().__init__(fan_in, fan_out, bias=bias)
        self.mult = float(mult)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # scale the (small) input, not the weight: the same product without copying a weight matrix
        # of up to 6.7 M numbers per call
        return F.linear(x * self.mult, self.weight, self.bias)


class _Head(nn.Module):
    """Group features -> raw ``(1, P)`` filters and biases of one layer (optionally low rank).

    The raw output is ``B + s * A h / sqrt(d)`` (``s``: the layer's He scale): the bias ``B`` is a
    style-independent base net drawn at the He scale (a sane random transform net for any style, and
    trained by Adam exactly like a plain net's weights), the style-dependent part starts at half that.
    """

    def __init__(self, hidden: int, layer: GenLayer, rank: int | None, style_gain: float = 0.5) -> None:
        super().__init__()
        self.proj = _ScaledLinear(hidden, rank, 1.0 / math.sqrt(hidden), bias=False) if rank else None
        d = rank or hidden
        self.out = _ScaledLinear(d, layer.n_out, layer.init_std / math.sqrt(d))
        with torch.no_grad():
            if self.proj is not None:
                nn.init.normal_(self.proj.weight)
            nn.init.normal_(self.out.weight, std=style_gain)
            self.out.bias.zero_()
            self.out.bias[: layer.n_weight].normal_(std=layer.init_std)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.proj(h) if self.proj is not None else h)


class MetaNet(nn.Module):
    """The meta network: style features -> the weights of a Johnson TransformerNet.

    Args:
        width, n_res: the generated ``TransformerNet(width, n_res)``.
        hidden: FC features per generated layer.
        rank: ``None`` for full heads, else the rank of factorised heads.
        style_size: longer side of style images when encoded.
        style_norms: also generate the instance norms' affines and an output colour transform per
            style (see :mod:`rtstyle.models.metanet`).

    Also a Stylizer model: ``forward(content, feats)`` stylises with the net generated from
    ``feats`` (:meth:`encode_style` gives them); :meth:`specialise` returns the generated net itself,
    which the Stylizer then runs as a plain Johnson net.

    Shape:
        ``forward(x, feats)``: x ``(N, 3, H, W)`` RGB 0..255, feats ``(1, 1920)`` -> ``(N, 3, H, W)``.
    """

    spec: ModelSpec  # set by the registry or a loader; a bare meta network under training has none
    encoder_precision: str

    def __init__(self, width: int = 8, n_res: int = 5, hidden: int = 64, rank: int | None = None,
                 style_size: int = 256, style_norms: bool = False) -> None:
        super().__init__()
        self.arch = MetaNetArch(int(width), int(n_res), int(hidden), int(rank) if rank else None, int(style_size),
                                bool(style_norms))
        self.layers = generated_layers(width, n_res)
        # The transform net with the generated convs' parameters removed: what stays (conv1, deconv3,
        # instance-norm affines) are the shared trained parameters, under their TransformerNet names.
        self.fixed = TransformerNet(width, n_res)
        for lay in self.layers:
            conv = self.fixed.get_submodule(f"{lay.path}.conv2d")
            conv.register_parameter("weight", None)
            conv.register_parameter("bias", None)
        self.register_buffer("feat_shift", torch.zeros(FEATURE_DIM))
        self.register_buffer("feat_scale", torch.ones(FEATURE_DIM))
        self.fc = _ScaledLinear(FEATURE_DIM, self.arch.hidden * len(self.layers), math.sqrt(2.0 / FEATURE_DIM))
        nn.init.normal_(self.fc.weight)  # He init through the multiplier
        nn.init.zeros_(self.fc.bias)
        self.heads = nn.ModuleDict({lay.key: _Head(self.arch.hidden, lay, self.arch.rank) for lay in self.layers})
        self.norm_layers = _norm_layers(self.fixed)
        self.norm_head: _ScaledLinear | None = None
        if self.arch.style_norms:
            # style-dependent deltas only (no bias: the shared trained affines are the base); zero at
            # first, so a meta network extended with this head starts out computing what it computed
            fan = self.arch.hidden * len(self.layers)
            n_out = _n_style_norm_outputs(self.norm_layers)
            self.norm_head = _ScaledLinear(fan, n_out, _STYLE_NORM_GAIN / math.sqrt(fan), bias=False)
            nn.init.zeros_(self.norm_head.weight)
        self.vgg_path: str | None = None  # where to load the VGG16 from (None: resolve_weight)
        self.vgg_sha256: str | None = None  # the VGG16 the meta network was trained with
        self.__dict__["_vgg"] = None  # not a submodule: the encoder is not part of the saved weights
        self.encoder_runtime = "auto"  # style encoder: "auto" (OpenVINO on CPU if installed) | "eager"
        # style encoder precision: "auto" (bf16 on AMX / AVX512_BF16 hosts, else fp32) | "fp32" | "bf16" | "int8"
        # (OpenVINO + NNCF: faster style changes, slightly different features; what ``rtstyle live``
        # picks when it can)
        self.encoder_precision = "auto"

    @torch.no_grad()
    def init_from(self, net: TransformerNet, style_gain: float = 0.1) -> "MetaNet":
        """Warm start: make every generated net start as ``net`` (a trained ``TransformerNet`` of the
        same width and depth), whatever the style.

        The shared parameters (``conv1``, ``deconv3``, instance-norm affines) are copied; each head's
        bias (the style-independent base of its raw output) becomes the trained filters, each output
        filter rescaled to the He RMS the weight normalisation gives it (the following instance norm
        removes per-filter scale, so the generated net computes what ``net`` computes); the
        style-dependent weights are redrawn at ``style_gain`` (the default init: 0.5), so the nets of
        different styles start close to ``net`` and training moves them apart. Training then starts
        from a net that already keeps the content's structure instead of from noise (MetaNet needs
        tens of thousands of steps from scratch, which a CPU cannot give it).
        """
        if (getattr(net, "width", None), getattr(net, "n_res", None)) != (self.width, self.n_res):
            raise ValueError(f"warm start needs a TransformerNet(width={self.width}, n_res={self.n_res}), got "
                             f"width={getattr(net, 'width', None)}, n_res={getattr(net, 'n_res', None)}")
        src = net.state_dict()
        for name, p in self.fixed.named_parameters():
            p.copy_(src[name].to(p))
        for lay in self.layers:
            w = src[f"{lay.path}.conv2d.weight"].float()
            rms = w.pow(2).mean((1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
            w = w * (lay.init_std / rms)
            b = src[f"{lay.path}.conv2d.bias"].float().clamp(-0.99, 0.99)
            head = self.heads[lay.key]
            head.out.bias[: lay.n_weight].copy_(w.flatten())
            head.out.bias[lay.n_weight :].copy_(torch.atanh(b))
            nn.init.normal_(head.out.weight, std=float(style_gain))
        return self

    @torch.no_grad()
    def init_from_meta(self, other: "MetaNet") -> "MetaNet":
        """Warm start from a trained meta network of the same width, depth, hidden size, rank and style
        size (its features, hence its FC, depend on it): every tensor is copied (feature centring and
        scaling included); a style-norm head that ``other`` lacks stays at zero, so this meta network
        starts out generating exactly ``other``'s nets."""
        mine, theirs = asdict(self.arch), asdict(other.arch)
        for k in ("width", "n_res", "hidden", "rank", "style_size"):
            if mine[k] != theirs[k]:
                raise ValueError(f"warm start from a meta network with {k}={theirs[k]!r}, this one has {mine[k]!r}")
        if other.arch.style_norms and not self.arch.style_norms:
            raise ValueError("warm start from a meta network with style norms needs style_norms=True")
        missing, unexpected = self.load_state_dict(other.state_dict(), strict=False)
        if unexpected or any(not k.startswith("norm_head.") for k in missing):
            raise ValueError(f"meta network layouts differ (missing {missing[:3]}, unexpected {unexpected[:3]})")
        self.vgg_sha256 = other.vgg_sha256
        return self

    @property
    def style_image_side(self) -> int:
        """Longest side a style image needs before :meth:`encode` (the Stylizer shrinks larger images
        to it on load): twice ``style_size``, as in training (style images decoded at that size, then
        cropped and resized)."""
        return 2 * self.arch.style_size

    @property
    def width(self) -> int:
        return self.arch.width

    @property
    def n_res(self) -> int:
        return self.arch.n_res

    # ------------------------------------------------------------------ encoder
    def attach_vgg(self, vgg: nn.Module) -> "MetaNet":
        """Use this VGG16 (:class:`~rtstyle.nn.vgg.VGG16Features` with the four style taps)."""
        self.__dict__["_vgg"] = vgg
        return self

    @property
    def vgg(self) -> nn.Module:
        """The VGG16 encoder, loaded on first use (``vgg_path`` or the resolved third-party file) and
        checked against the file the meta network was trained with."""
        if self.__dict__["_vgg"] is None:
            self.__dict__["_vgg"] = load_style_vgg(self.vgg_path, self.vgg_sha256)
        return self.__dict__["_vgg"]

    def set_feature_stats(self, feats: torch.Tensor) -> None:
        """Fix the input centring and scaling from the training styles' features ``(S, 1920)``."""
        shift, scale = feature_stats(feats)
        self.feat_shift.copy_(shift.to(self.feat_shift))
        self.feat_scale.copy_(scale.to(self.feat_scale))

    def encode(self, style01: torch.Tensor) -> torch.Tensor:
        """Style image ``(1, 3, H, W)`` RGB [0, 1] -> features ``(1, 1920)`` (resized to ``style_size``).

        Runs the frozen VGG16 + statistics through :class:`~rtstyle.models._style_encoder.StyleEncoder`
        (OpenVINO on the CPU when installed, ``encoder_runtime`` = ``"auto"``; ``"eager"`` forces
        PyTorch), in ``encoder_precision`` (``"auto"``: bf16 on AMX / AVX512_BF16 hosts, else fp32;
        ``"fp32"``, ``"bf16"``, or
        ``"int8"``, calibrated on the bundled sample clip): the largest part of a style change's latency.
        """
        vgg = self.vgg
        dev = next(vgg.parameters()).device
        img = resize_long(style01.float().to(dev), self.arch.style_size)
        # cached on the VGG16 module, which is shared by every meta network loaded from the same file
        enc = style_encoder_for(vgg, "_rtstyle_metanet_encoder", lambda: _FeatureNet(vgg), self.encoder_runtime,
                                "MetaNet style encoder (VGG16 mean/std)", precision=self.encoder_precision,
                                calibration=partial(sample_frames, self.arch.style_size))
        return enc(img).to(self.feat_scale.device)

    # ------------------------------------------------------------------ generation
    @overload
    def generate_weights(self, feats: torch.Tensor, with_stats: Literal[False] = False) -> dict[str, torch.Tensor]: ...

    @overload
    def generate_weights(self, feats: torch.Tensor, with_stats: Literal[True]
                         ) -> tuple[dict[str, torch.Tensor], torch.Tensor]: ...

    def generate_weights(self, feats: torch.Tensor, with_stats: bool = False
                         ) -> dict[str, torch.Tensor] | tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Features ``(1, 1920)`` -> the generated layers' tensors (differentiable), keyed as in
        ``TransformerNet.state_dict()``; with style norms also every instance norm's affine and the
        last conv (its colour transform folded in).

        With ``with_stats``, also returns ``(L,)``: each layer's raw (pre-normalisation) filter RMS in
        units of its He scale (about 1 at initialisation): what grows if training drifts.
        """
        if feats.dim() != 2 or feats.shape != (1, FEATURE_DIM):
            raise ValueError(f"features must be (1, {FEATURE_DIM}) (one style), got {tuple(feats.shape)}")
        z = (feats.to(self.feat_scale.dtype) - self.feat_shift) / self.feat_scale
        groups = F.relu(self.fc(z)).split(self.arch.hidden, dim=1)
        out: dict[str, torch.Tensor] = {}
        stats = []
        for lay, h in zip(self.layers, groups):
            raw = self.heads[lay.key](h)[0]
            v = raw[: lay.n_weight].view(lay.cout, lay.cin, lay.k, lay.k)
            ms = v.pow(2).mean((1, 2, 3), keepdim=True)
            out[f"{lay.path}.conv2d.weight"] = v * (lay.init_std * torch.rsqrt(ms + (1e-3 * lay.init_std) ** 2))
            out[f"{lay.path}.conv2d.bias"] = torch.tanh(raw[lay.n_weight:])
            if with_stats:
                stats.append(ms.detach().mean().sqrt() / lay.init_std)
        if self.norm_head is not None:
            out.update(self._style_norms(self.norm_head(torch.cat(groups, 1))[0]))
        if with_stats:
            return out, torch.stack(stats)
        return out

    def _style_norms(self, d: torch.Tensor) -> dict[str, torch.Tensor]:
        """The style-norm head's output -> every instance norm's affine (shared + delta) and the last conv
        with the colour transform ``y -> M y + c`` folded in (exact: nothing follows ``deconv3``)."""
        out: dict[str, torch.Tensor] = {}
        i = 0
        for path, c in self.norm_layers:
            norm = self.fixed.get_submodule(path)
            out[f"{path}.weight"] = norm.weight + d[i : i + c]
            out[f"{path}.bias"] = norm.bias + d[i + c : i + 2 * c]
            i += 2 * c
        m = torch.eye(3, dtype=d.dtype, device=d.device) + d[i : i + 9].view(3, 3)
        last = self.fixed.deconv3.conv2d
        out["deconv3.conv2d.weight"] = torch.einsum("oc,cikl->oikl", m, last.weight)
        out["deconv3.conv2d.bias"] = m @ last.bias + _COLOR_OFFSET_SCALE * d[i + 9 : i + 12]
        return out

    def generate_state_dict(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features ``(1, 1920)`` -> the complete state dict of ``TransformerNet(width, n_res)``
        (shared trained parameters + generated ones; differentiable)."""
        sd: dict[str, torch.Tensor] = dict(self.fixed.named_parameters())
        sd.update(self.generate_weights(feats))
        return sd

    def run(self, content: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """The transform net with generated ``weights`` (from :meth:`generate_weights`) on RGB 0..255."""
        from torch.func import functional_call

        return functional_call(self.fixed, weights, (content,))

    def stylize(self, content: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """Differentiable: content ``(N, 3, H, W)`` RGB 0..255 with the net generated from ``feats``
        (identical to ``generate`` then the TransformerNet's forward)."""
        return self.run(content, self.generate_weights(feats))

    forward = stylize

    @torch.no_grad()
    def generate_from_features(self, feats: torch.Tensor, name: str = "style") -> TransformerNet:
        """A plain ``TransformerNet(width, n_res)`` (frozen, eval) with the weights generated from ``feats``."""
        # A copy of a parameterless template with the generated tensors put in place: cheaper per
        # style change than building a TransformerNet (64 module constructors) and load_state_dict,
        # or a deepcopy of the template.
        tpl, keys = self.__dict__.get("_net_template") or (None, None)
        if tpl is None:
            with torch.device("meta"):  # no random init of weights that are replaced at once
                tpl = TransformerNet(self.width, self.n_res).eval()
            keys = frozenset(tpl.state_dict())
            for mod in tpl.modules():  # a skeleton: every parameter slot empty
                for pname in mod._parameters:
                    mod._parameters[pname] = None
            self.__dict__["_net_template"] = (tpl, keys)  # not a submodule: not in the state dict
        net: TransformerNet = _clone_skeleton(tpl)
        mods = dict(net.named_modules())
        sd = self.generate_state_dict(feats)
        if set(sd) != keys:  # the exact TransformerNet layout, as load_state_dict would check
            raise RuntimeError(f"generated keys do not match TransformerNet({self.width}, {self.n_res})")
        for key, v in sd.items():
            if not bool(torch.isfinite(v).all()):
                raise ValueError(f"the meta network generated non-finite weights ({key}) for style {name}")
            owner, _, pname = key.rpartition(".")
            mods[owner]._parameters[pname] = nn.Parameter(v.detach().clone(), requires_grad=False)
        net.spec = self._generated_spec(name)
        # Layout and weights are checked above: the eager CPU backend need not run the net once before
        # a style change goes live (``prechecked`` is declared by TransformerNet, default False).
        net.prechecked = True
        return net

    def generate(self, style_image: torch.Tensor | np.ndarray, name: str = "style") -> TransformerNet:
        """A style image -> its Johnson net.

        Args:
            style_image: ``(1, 3, H, W)`` RGB float in [0, 1], or ``(H, W, 3)`` RGB uint8.
            name: style name for the generated net's spec (``johnson.<name>``).
        """
        if isinstance(style_image, np.ndarray):
            style_image = to_tensor(check_image(style_image, "style image"))
        with torch.no_grad():
            return self.generate_from_features(self.encode(style_image), name)

    def _generated_spec(self, style: str) -> ModelSpec:
        meta_spec: ModelSpec | None = getattr(self, "spec", None)
        by = meta_spec.name if meta_spec is not None else "metanet"
        safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in style) or "style"
        return ModelSpec(
            name=f"johnson.{safe}",
            family="johnson",
            description=f"Johnson net (width {self.width}, {self.n_res} res blocks) generated by {by} from style {style}",
            size_multiple=4,
            styles=(style,),
            default_size=240,
            licence=(f"generated by {by} ({meta_spec.licence}); style image: as supplied" if meta_spec is not None
                     else "generated; style image: as supplied"),
            extra={"architecture": {"width": self.width, "n_res": self.n_res}, "generated_by": by,
                   "style_size": self.arch.style_size},
        )

    # ------------------------------------------------------------------ Stylizer hooks
    def _style01(self, style: torch.Tensor) -> torch.Tensor:
        spec: ModelSpec | None = getattr(self, "spec", None)
        lo, hi = spec.input_range if spec is not None else (0.0, 255.0)
        return (style.float() - lo) / (hi - lo)

    def encode_style(self, style: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Stylizer hook: style image ``(1, 3, H, W)`` in the spec's input range (0..255) -> ``(feats,)``."""
        if isinstance(style, (tuple, list)):
            return tuple(style)
        return (self.encode(self._style01(style)),)

    def specialise(self, style: torch.Tensor) -> TransformerNet:
        """Stylizer hook: style image ``(1, 3, H, W)`` in the spec's input range (0..255) -> the generated
        Johnson net, which the Stylizer runs (with no style inputs) until the next style change."""
        with torch.no_grad():
            s01 = resize_long(self._style01(style), self.arch.style_size)  # encode() would resize it anyway
            digest = hashlib.sha1(s01.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:8]
            spec: ModelSpec | None = getattr(self, "spec", None)
            variant = spec.name.split(".", 1)[-1].split(":", 1)[-1] if spec is not None else "metanet"
            net = self.generate_from_features(self.encode(s01), f"{Path(variant).stem}_{digest}")
        # ``--backend auto`` runs the generated nets eager (``auto_backend`` is declared by TransformerNet,
        # default None): a new net per style would cost an engine build per style change, and on the
        # lite net eager is about as fast as an engine.
        net.auto_backend = "eager"
        return net


_M = TypeVar("_M", bound=nn.Module)


def _clone_skeleton(mod: _M) -> _M:
    """A copy of a module tree that holds no tensors (every parameter slot empty): new module objects
    with copies of their attribute dicts and sets (parameters, buffers, hooks), submodules cloned the
    same way; other attributes (ints, flags) shared, which for such a tree is what ``deepcopy`` gives."""
    new = mod.__class__.__new__(mod.__class__)
    attrs = {k: (v.copy() if isinstance(v, (dict, set)) else v) for k, v in mod.__dict__.items()}
    attrs["_modules"] = {k: None if v is None else _clone_skeleton(v) for k, v in mod._modules.items()}
    new.__dict__.update(attrs)
    return new

"""MetaNet: a meta network that *generates* a Johnson transform net from a style image
(Shen, Yan & Zeng, "Neural Style Transfer via Meta Networks", CVPR 2018).

Pipeline (one forward pass per style, off the hot path)::

    style image --VGG16--> per-channel mean and std of relu1_2, relu2_2, relu3_3, relu4_3
                           (64 + 128 + 256 + 512 = 960 channels, x2 = 1920 numbers: :func:`style_features`)
                --centre, scale--> minus the training styles' mean; each of the 8 (layer, mean|std)
                           blocks divided by one scale measured on the training styles (buffers
                           ``feat_shift``, ``feat_scale``): every block enters centred, at unit RMS
                --FC + ReLU--> ``hidden`` features per generated conv layer (one group per layer)
                --heads--> per layer one Linear: group -> that layer's filters and biases

The linear layers use an "equalised learning rate" (weights stored at unit scale, multiplied by a
fixed He factor in the forward pass). With one style per step, Adam's update of the FC is fully
coherent for that style's input: with a plain ``nn.Linear`` it would move every hidden feature by about
``lr`` times the input's L1 norm (~1500 for 1920 unit-RMS features) per step; here by ~``lr * 50``.

The generated net is a plain :class:`~rtstyle.models.johnson.TransformerNet` ``(width, n_res)`` with
the pytorch/examples key names. As in the paper, only the inner convolutions are generated
(``conv2``, ``conv3``, every residual conv, ``deconv1``, ``deconv2``); the first conv (``conv1``,
9x9 3->w), the last conv (``deconv3``, 9x9 w->3) and every instance-norm affine parameter are
ordinary trained parameters of the meta network, shared by all styles.

Size choice (``MetaNet()`` defaults: ``width=8, n_res=5, hidden=64``, full heads): the generated net
is the width-8 "lite" Johnson net of the shipped ``johnson.*_lite`` models (real time on a CPU):
104,072 generated numbers (1620 w^2 filter weights + 49 w biases). Parameter count::

    FC 1920 -> 14 x 64                              1,721,216
    14 heads Linear(64, P_l), sum P_l = 104,072     6,764,680   (65 x 104,072)
    shared conv1, deconv3, instance-norm affines        4,699
    total                                           8,490,595   -> 17.0 MB in fp16 (the saved file;
                                                                   + 2 x 1920 feature-scaling buffers)

The paper's 128-wide groups would give 16.9 M parameters (33.7 MB fp16), over the 25 MB budget. For a
width-16 net (415,504 generated numbers) full heads of 64 would need 28.7 M parameters (57.5 MB): use
``rank=16`` (each head factorised as ``Linear(hidden, rank, bias=False) -> Linear(rank, P_l)``),
8.8 M parameters, 17.6 MB (``hidden=128, rank=16``: 10.5 M, 21.1 MB).
:func:`count_parameters` gives the exact figure for any setting.

Style norms (``style_norms=True``, an extension of the paper; the shipped ``metanet.lite`` has it). In
the paper's design the style reaches the output only through the directions of the generated filters:
every instance norm after them removes their scale and offset, and the shared last conv fixes how the
final features map to RGB, so a style's palette is hard to reach (the 20,000-step net without it gave
Cassatt's and Hokusai's paintings nets that looked alike, both near the warm-start wave net's blue and
beige). One more linear head, from all the hidden features (``14 x 64``), writes per style

* a delta on every instance norm's scale and shift (what conditional instance norm learns per style,
  Dumoulin et al. 2017): 2 x 400 numbers at width 8, and
* a colour transform ``y -> M y + c`` of the output (``M`` = identity + 3x3, ``c`` in units of 64
  levels), folded into the last conv's weights and bias (exact: nothing follows ``deconv3``),

so the generated net is still a plain TransformerNet. The head has no bias and starts at zero: a meta
network trained without it and extended with it (:meth:`MetaNet.init_from_meta`) starts out
generating exactly the nets it generated. ``896 x 812`` = 727,552 more parameters (+1.5 MB fp16).

Bounded generated weights. Every generated conv is followed by an instance norm, which removes any
per-filter scale and bias. The loss is therefore blind to the norm of each generated filter, and
gradient descent on scale-invariant weights makes their norm grow steadily (each update is orthogonal
to the weight). So the heads' raw output ``V`` is *weight-normalised* per output filter,
``W[o] = s * V[o] / rms(V[o])`` with ``s = sqrt(2 / fan_in)`` (He scale): the generated net's filters
always have the RMS of a freshly initialised conv, whatever the raw outputs do, and the forward result
is unchanged by the normalisation (instance norm would have removed the scale anyway). Generated
biases (also cancelled by the instance norm, kept for the exact TransformerNet layout) are bounded by
``tanh``. The raw RMS in units of ``s`` (about 1 at initialisation) is what a trainer tracks (see
:meth:`MetaNet.generate_weights`); the trainer also puts decoupled weight decay on the heads only,
which (full heads) rescales the raw outputs without changing any generated net and so holds the raw
norm at an equilibrium instead of letting it grow.

Run time: :meth:`MetaNet.specialise` (called by the Stylizer once per style change) returns the
generated Johnson net, so after a style change the pipeline runs a plain TransformerNet on any backend
(eager, compiled, ONNX, OpenVINO, TensorRT). The VGG16 encoder is the third-party ImageNet VGG16,
resolved like every third-party weight (explicit ``vgg=`` path, ``$RTSTYLE_WEIGHTS``, the user cache,
torchvision's cache); a meta network records the sha256 of the VGG16 file it was trained with and
refuses another one (other VGG16 weights give other features, hence other nets).

Input contract: content RGB 0..255 (as the Johnson nets), H and W multiples of 4; style images RGB
in [0, 1] for :meth:`MetaNet.encode` / :meth:`MetaNet.generate`, in the spec's range (0..255) for the
Stylizer-facing :meth:`MetaNet.encode_style` / :meth:`MetaNet.specialise`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_path_loader
from ._shipped import register_entries, shipped_entries, shipped_file
from ._spec import ModelSpec
from ._style_encoder import PRECISIONS, sample_frames, style_encoder_for
from .johnson import TransformerNet

__all__ = [
    "FEATURE_DIM",
    "MetaNet",
    "MetaNetArch",
    "VGGMismatchError",
    "count_parameters",
    "generated_layers",
    "load_metanet",
    "load_metanet_checkpoint",
    "save_metanet",
    "style_features",
]

log = logging.getLogger(__name__)
FORMAT = "rtstyle.metanet/1"
STYLE_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
_TAP_CHANNELS = (64, 128, 256, 512)
FEATURE_DIM = 2 * sum(_TAP_CHANNELS)  # 1920
_FEAT_EPS = 1e-5
_COLOUR_PARAMS = 12  # a 3x3 colour matrix (about the identity) and an offset, folded into deconv3
_COLOUR_OFFSET_SCALE = 64.0  # the offset's unit in output levels (0..255)
_STYLE_NORM_GAIN = 0.25  # the style-norm head's equalised-learning-rate multiplier, x 1/sqrt(fan-in)


class VGGMismatchError(ValueError):
    """The VGG16 file differs from the one a meta network was trained with."""


# --------------------------------------------------------------------------- style features

def style_features(vgg: nn.Module, style_img01: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and std of the VGG16 relu1_2, relu2_2, relu3_3, relu4_3 activations.

    Args:
        vgg: :class:`rtstyle.training.vgg.VGG16Features` returning at least those four taps
            (activations in torchvision magnitude whichever VGG16 file was loaded).
        style_img01: ``(N, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(N, 1920)``: for each layer in order, its channel means then its channel stds
        (``sqrt(biased var + 1e-5)``): ``[mean1_2 (64), std1_2 (64), mean2_2 (128), ...]``.
    """
    feats = vgg(style_img01)
    parts = []
    for tap in STYLE_TAPS:
        f = feats[tap].float()
        mean = f.mean((2, 3))
        var = (f - mean[..., None, None]).pow(2).mean((2, 3))
        parts += [mean, (var + _FEAT_EPS).sqrt()]
    return torch.cat(parts, 1)


def _feature_blocks() -> list[int]:
    """Sizes of the 8 (layer, mean|std) blocks of the 1920-vector."""
    return [c for c in _TAP_CHANNELS for _ in range(2)]


def feature_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, 1920)`` features of the training styles -> ``(shift, scale)``, each ``(1920,)``.

    ``shift`` is the per-feature mean over the styles (the features are means and stds of ReLU
    activations: all positive; centred, different styles push the meta network in different
    directions). ``scale`` is one scalar per block (a layer's means or stds, not per channel, so
    that it is well defined from few styles): the RMS of the centred block over all styles (of the
    raw block when the styles do not vary, e.g. a single style).
    """
    feats = feats.float()
    shift = feats.mean(0)
    out = []
    for blk, raw in zip((feats - shift).split(_feature_blocks(), dim=1), feats.split(_feature_blocks(), dim=1)):
        sc = blk.pow(2).mean().sqrt()
        if sc < 1e-4 * raw.pow(2).mean().sqrt():
            sc = raw.pow(2).mean().sqrt()
        out.append(sc.clamp_min(1e-6).expand(blk.shape[1]))
    return shift, torch.cat(out)


def resize_long(img: torch.Tensor, side: int) -> torch.Tensor:
    """Resize ``(N, 3, H, W)`` so that its longer side is ``side`` (bilinear, antialiased when shrinking)."""
    h, w = img.shape[-2:]
    s = side / max(h, w)
    size = (max(16, round(h * s)), max(16, round(w * s)))
    if size == (h, w):
        return img
    return F.interpolate(img.float(), size=size, mode="bilinear", align_corners=False, antialias=s < 1)


# --------------------------------------------------------------------------- architecture

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
    return 2 * sum(c for _, c in norm_layers) + _COLOUR_PARAMS


class _ScaledLinear(nn.Linear):
    """``nn.Linear`` whose weight is used times a fixed ``mult`` ("equalised learning rate", Karras et
    al. 2018): the stored weight is O(1), so Adam's O(lr) steps move every layer's output at a similar
    relative rate, however wide its input. Keys and shapes are those of ``nn.Linear``."""

    def __init__(self, fan_in: int, fan_out: int, mult: float, bias: bool = True) -> None:
        super().__init__(fan_in, fan_out, bias=bias)
        self.mult = float(mult)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # scale the (small) input, not the weight: the same product without copying a weight matrix
        # of up to 6.7 M numbers per call (~3 ms of every style change, measured with cProfile)
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
            style (see the module docstring).

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
        # style encoder precision: "fp32" | "int8" (OpenVINO + NNCF, ~3x faster style changes, features
        # ~10% of a style-to-style distance off; what ``rtstyle live`` picks when it can)
        self.encoder_precision = "fp32"

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
        """Use this VGG16 (:class:`~rtstyle.training.vgg.VGG16Features` with the four style taps)."""
        self.__dict__["_vgg"] = vgg
        return self

    @property
    def vgg(self) -> nn.Module:
        """The VGG16 encoder, loaded on first use (``vgg_path`` or the resolved third-party file) and
        checked against the file the meta network was trained with."""
        if self.__dict__["_vgg"] is None:
            self.__dict__["_vgg"] = _load_vgg(self.vgg_path, self.vgg_sha256)
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
        PyTorch), in ``encoder_precision`` (``"fp32"`` or ``"int8"``, calibrated on the bundled sample
        clip): the largest part of a style change's latency.
        """
        vgg = self.vgg
        dev = next(vgg.parameters()).device
        img = resize_long(style01.float().to(dev), self.arch.style_size)
        # cached on the VGG16 module, which is shared by every meta network loaded from the same file
        precision = self.encoder_precision if self.encoder_runtime != "eager" else "fp32"  # int8 is OpenVINO's
        enc = style_encoder_for(vgg, "_rtstyle_metanet_encoder", lambda: _FeatureNet(vgg), self.encoder_runtime,
                                "MetaNet style encoder (VGG16 mean/std)", precision=precision,
                                calibration=partial(sample_frames, self.arch.style_size))
        return enc(img).to(self.feat_scale.device)

    # ------------------------------------------------------------------ generation
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
        out["deconv3.conv2d.bias"] = m @ last.bias + _COLOUR_OFFSET_SCALE * d[i + 9 : i + 12]
        return out

    def generate_state_dict(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features ``(1, 1920)`` -> the complete state dict of ``TransformerNet(width, n_res)``
        (shared trained parameters + generated ones; differentiable)."""
        sd = dict(self.fixed.named_parameters())
        sd.update(self.generate_weights(feats))  # type: ignore[arg-type]
        return sd

    def run(self, content: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """The transform net with generated ``weights`` (from :meth:`generate_weights`) on RGB 0..255."""
        from torch.func import functional_call

        return functional_call(self.fixed, weights, (content,))

    def stylise(self, content: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """Differentiable: content ``(N, 3, H, W)`` RGB 0..255 with the net generated from ``feats``
        (identical to ``generate`` then the TransformerNet's forward)."""
        return self.run(content, self.generate_weights(feats))  # type: ignore[arg-type]

    forward = stylise

    @torch.no_grad()
    def generate_from_features(self, feats: torch.Tensor, name: str = "style") -> TransformerNet:
        """A plain ``TransformerNet(width, n_res)`` (frozen, eval) with the weights generated from ``feats``."""
        # A copy of a parameterless template with the generated tensors put in place: building a
        # TransformerNet (64 module constructors) and load_state_dict cost ~15 ms of Python per
        # style change; deepcopy of the template 5-8 ms, the structural copy below 0.4 ms (measured
        # on the 2-core dev box).
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
        # a style change goes live (a 64-px run cost 8-20 ms of every MetaNet switch, measured live).
        net.prechecked = True
        return net

    def generate(self, style_image: torch.Tensor | np.ndarray, name: str = "style") -> TransformerNet:
        """A style image -> its Johnson net.

        Args:
            style_image: ``(1, 3, H, W)`` RGB float in [0, 1], or ``(H, W, 3)`` RGB uint8.
            name: style name for the generated net's spec (``johnson.<name>``).
        """
        if isinstance(style_image, np.ndarray):
            if style_image.dtype != np.uint8 or style_image.ndim != 3 or style_image.shape[2] != 3:
                raise ValueError(f"style image must be uint8 HxWx3 RGB, got {style_image.dtype} {style_image.shape}")
            style_image = torch.from_numpy(np.ascontiguousarray(style_image)).permute(2, 0, 1)[None].float() / 255.0
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
        # ``--backend auto`` runs the generated nets eager: a new net per style would cost OpenVINO an
        # export + compile per style change (7.6 s measured), and on the lite net eager is as fast
        # (320x240 on the 2-core box: eager 24.4 ms, OpenVINO 26.7 ms per frame).
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


class _FeatureNet(nn.Module):
    """VGG16 -> :func:`style_features` as one module (what :class:`StyleEncoder` converts)."""

    def __init__(self, vgg: nn.Module) -> None:
        super().__init__()
        self.vgg = vgg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return style_features(self.vgg, x)


# --------------------------------------------------------------------------- VGG16 encoder

@lru_cache(maxsize=2)
def _load_vgg_file(path: str) -> nn.Module:
    from ..training.vgg import load_vgg16

    return load_vgg16(path, STYLE_TAPS)


def _load_vgg(path: str | None, want_sha256: str | None) -> nn.Module:
    from ..weights import resolve_weight
    from .vgg_adain import file_sha256

    file = resolve_weight("vgg16", explicit=path)
    if want_sha256:
        got = file_sha256(Path(file))
        if got != want_sha256:
            raise VGGMismatchError(
                f"this meta network was trained with the VGG16 file with sha256 {want_sha256[:16]}..., but the one "
                f"found ({file}, {got[:16]}...) is a different file; other VGG16 weights give other style features. "
                "Point vgg= / $RTSTYLE_WEIGHTS at that file (`rtstyle weights list` shows what was found)."
            )
    return _load_vgg_file(str(Path(file).resolve()))


# --------------------------------------------------------------------------- files

def save_metanet(meta: MetaNet, spec: ModelSpec, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write a meta network as safetensors (fp16 by default) with its spec, settings and VGG16 checksum."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to(dtype).contiguous().cpu() for k, v in meta.state_dict().items()}
    md = {"format": FORMAT, "spec": spec.to_json(), "arch": json.dumps(asdict(meta.arch)),
          "vgg_sha256": meta.vgg_sha256 or ""}
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp), metadata=md)
    tmp.replace(path)
    return path


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    if path.suffix != ".safetensors":
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            md = dict(f.metadata() or {})
            if md.get("format") != FORMAT:
                return None
            return {k: f.get_tensor(k).float() for k in f.keys()}, md
    except SafetensorError as e:
        raise ValueError(f"{path}: cannot read the meta network ({e})") from None


def load_metanet(path: str | Path, *, vgg: str | Path | None = None, style_encoder: str = "fp32") -> MetaNet:
    """A meta network written by :func:`save_metanet` (frozen, eval, with its ``spec``).

    Args:
        vgg: the VGG16 file to encode style images with (default: resolved on first use).
        style_encoder: precision of the style encoder, ``"fp32"`` or ``"int8"`` (see :meth:`MetaNet.encode`).
    """
    if style_encoder not in PRECISIONS:
        raise ValueError(f"style_encoder must be one of {PRECISIONS}, got {style_encoder!r}")
    path = Path(path)
    got = _read(path)
    if got is None:
        raise ValueError(f"{path}: not an rtstyle meta network (format {FORMAT})")
    sd, md = got
    arch = MetaNetArch(**json.loads(md["arch"]))
    meta = MetaNet(arch.width, arch.n_res, arch.hidden, arch.rank, arch.style_size, arch.style_norms)
    missing, unexpected = meta.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: does not match the MetaNet layout (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for p in meta.parameters():
        p.requires_grad_(False)
    meta.vgg_path = None if vgg is None else str(vgg)
    meta.vgg_sha256 = md.get("vgg_sha256") or None
    meta.spec = ModelSpec.from_json(md["spec"])
    meta.encoder_precision = style_encoder
    return meta.eval()


def metanet_spec(name: str, arch: MetaNetArch, *, licence: str, extra: dict[str, Any] | None = None,
                 weights: str | None = None) -> ModelSpec:
    """Spec of a meta network (a style-image model: ``needs_style_image``)."""
    return ModelSpec(
        name=name,
        family="metanet",
        description=(f"MetaNet: any style image -> a Johnson net (width {arch.width}, {arch.n_res} res blocks) "
                     "generated in one pass; needs --style IMG"),
        input_range=(0.0, 255.0),
        output_range=(0.0, 255.0),
        size_multiple=4,
        needs_style_image=True,
        default_size=240,
        licence=licence,
        weights=weights,
        extra=dict(extra or {}, architecture=asdict(arch), encoder="vgg16"),
    )


def load_metanet_checkpoint(path: str | Path, *, vgg: str | Path | None = None, style_encoder: str = "fp32",
                            **_: Any) -> nn.Module | None:
    """Registry path loader (``metanet:PATH`` or a bare path): ``None`` if not a meta network file."""
    path = Path(path)
    if _read(path) is None:
        return None
    meta = load_metanet(path, vgg=vgg, style_encoder=style_encoder)
    if meta.spec.weights is None:
        meta.spec = replace(meta.spec, weights=str(path))
    return meta


register_path_loader("metanet", load_metanet_checkpoint)


# --------------------------------------------------------------------------- shipped models

def _shipped_entries() -> list[dict[str, Any]]:
    return shipped_entries("metanet")


_shipped_file = shipped_file


def _shipped_factory(spec: ModelSpec, *, vgg: str | Path | None = None, style_encoder: str = "fp32",
                     **_: Any) -> nn.Module:
    from ..weights import sha256_file

    with _shipped_file(spec) as p:
        if spec.sha256 and sha256_file(p) != spec.sha256:
            raise ValueError(f"{spec.name}: shipped weights {Path(p).name} fail their sha256 check (reinstall rtstyle)")
        meta = load_metanet(p, vgg=vgg, style_encoder=style_encoder)
    meta.spec = spec
    return meta


def _register_shipped() -> None:
    register_entries(_shipped_entries(), _shipped_factory)


_register_shipped()

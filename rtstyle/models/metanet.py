"""MetaNet: a meta network that *generates* a Johnson transform net from any style image
(Shen, Yan & Zeng, "Neural Style Transfer via Meta Networks", CVPR 2018).

The family (``metanet.*``, ``needs_style_image``)::

    style image --VGG16--> per-channel mean and std at relu1_2, relu2_2, relu3_3, relu4_3
                           (1920 numbers, :func:`style_features`), centred and scaled per block
                --FC + ReLU--> ``hidden`` features per generated conv layer
                --heads--> per layer one linear map to that layer's filters and biases
                --> a plain ``TransformerNet(width, n_res)`` (:class:`~rtstyle.models.johnson.TransformerNet`)

As in the paper only the inner convolutions are generated (``conv2``, ``conv3``, every residual conv,
``deconv1``, ``deconv2``); ``conv1``, ``deconv3`` and the instance-norm affines are trained parameters
shared by all styles. With ``style_norms`` one more head also writes per style a delta on every
instance norm's scale and shift and a colour transform folded into ``deconv3``. Generated filters are
weight-normalised to the He scale and generated biases bounded by ``tanh`` (each is followed by an
instance norm, which removes both). :class:`MetaNetArch` holds the settings; :func:`count_parameters`
gives the size of any setting without building it.

Run time: the Stylizer calls :meth:`MetaNet.specialise` once per style change and then runs the
generated net, a plain TransformerNet, on any backend. ``forward(content, feats)`` is the
differentiable path used in training.

Input contract: content RGB 0..255 (as the Johnson nets), H and W multiples of 4. Style images are RGB
in [0, 1] for :meth:`MetaNet.encode` / :meth:`MetaNet.generate`, in the spec's range (0..255) for the
Stylizer hooks :meth:`MetaNet.encode_style` / :meth:`MetaNet.specialise`, and are encoded with their
longer side at ``style_size``. The VGG16 is the third-party ImageNet file (:mod:`rtstyle.nn.vgg`),
resolved like every third-party weight (``vgg=``, ``$RTSTYLE_WEIGHTS``, the user cache, torchvision's
cache).

File format (``rtstyle.metanet/1``, :func:`save_metanet` / :func:`load_metanet`): safetensors, fp16 by
default, holding the meta network's state dict (``fixed.*``, ``fc.*``, ``heads.*``, ``norm_head.*``,
``feat_shift``, ``feat_scale``); its metadata has ``format``, ``spec`` (the :class:`ModelSpec` as JSON),
``arch`` (:class:`MetaNetArch` as JSON) and ``vgg_sha256``, the checksum of the VGG16 file it was trained
with: another VGG16 file gives other features, so loading with one raises :class:`VGGMismatchError`.
Such a file loads by path (``metanet:PATH`` or a bare path); shipped ones are registered from
``rtstyle/weights_data/manifest.json``.

Modules: architecture in :mod:`rtstyle.models._metanet_net`, style features and their VGG16 in
:mod:`rtstyle.models._metanet_style`, the file format and registration here.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._metanet_net import GenLayer, MetaNet, MetaNetArch, count_parameters, generated_layers
from ._metanet_style import (FEATURE_DIM, STYLE_TAPS, VGGMismatchError, feature_stats, resize_long,
                             style_features)
from ._registry import register_path_loader
from ._safetensors_io import write_safetensors
from ._shipped import register_entries, shipped_entries, shipped_file
from ._spec import ModelSpec
from ._style_encoder import PRECISIONS

__all__ = [
    "FEATURE_DIM",
    "FORMAT",
    "STYLE_TAPS",
    "GenLayer",
    "MetaNet",
    "MetaNetArch",
    "VGGMismatchError",
    "count_parameters",
    "feature_stats",
    "generated_layers",
    "load_metanet",
    "load_metanet_checkpoint",
    "metanet_spec",
    "resize_long",
    "save_metanet",
    "style_features",
]

log = logging.getLogger(__name__)
FORMAT = "rtstyle.metanet/1"


def save_metanet(meta: MetaNet, spec: ModelSpec, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write a meta network as safetensors (fp16 by default) with its spec, settings and VGG16 checksum."""
    sd = {k: v.detach().to(dtype).contiguous().cpu() for k, v in meta.state_dict().items()}
    md = {"format": FORMAT, "spec": spec.to_json(), "arch": json.dumps(asdict(meta.arch)),
          "vgg_sha256": meta.vgg_sha256 or ""}
    return write_safetensors(path, sd, md)


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


def load_metanet(path: str | Path, *, vgg: str | Path | None = None, style_encoder: str = "auto") -> MetaNet:
    """A meta network written by :func:`save_metanet` (frozen, eval, with its ``spec``).

    Args:
        vgg: the VGG16 file to encode style images with (default: resolved on first use).
        style_encoder: precision of the style encoder, ``"auto"`` (bf16 on AMX / AVX512_BF16 hosts, else fp32),
            ``"fp32"``, ``"bf16"`` or ``"int8"`` (see :meth:`MetaNet.encode`).
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


def load_metanet_checkpoint(path: str | Path, *, vgg: str | Path | None = None, style_encoder: str = "auto",
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


def _shipped_factory(spec: ModelSpec, *, vgg: str | Path | None = None, style_encoder: str = "auto",
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

"""AdaIN on the ImageNet VGG16 at relu4_1 with a decoder trained by rtstyle (``adain.vgg16``).

The encoder is the third-party ImageNet VGG16 (``conv1_1 .. relu4_1``, resolved like every
third-party weight: explicit path, ``$RTSTYLE_WEIGHTS``, the user cache, torchvision's cache). The
decoder mirrors it with nearest upsampling and reflection padding and is *trained* against that
exact encoder by ``rtstyle train adain`` (content loss on the AdaIN target, mean/std style loss
at relu1_1..relu4_1, Huang & Belongie 2017). A decoder only inverts the encoder it was trained
with, so its file records the encoder's sha256 and :func:`load_pair` refuses another encoder.

Layout of :class:`AdaINDecoder` with base width ``b`` (the paper's decoder is ``b = 64``; the
shipped one is narrower so that it fits the package and runs live on a CPU)::

    conv 512->4b, up x2, conv 4b->4b, conv 4b->4b, conv 4b->2b, up x2,
    conv 2b->2b, conv 2b->b, up x2, conv b->b, conv b->3        (3x3, reflection pad 1, ReLU but last)

Input contract: RGB in [0, 1], H and W multiples of 8 (three poolings).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.vgg import (IMAGENET_MEAN, IMAGENET_STD, RELU_N1, VGG16Encoder, VGGMismatchError, file_sha256,
                      load_vgg16_encoder)
from ..weights import sha256_file
from ._safetensors_io import read_safetensors, write_safetensors
from ._shipped import register_entries, shipped_entries, shipped_file
from ._spec import ModelSpec

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RELU_N1",
    "AdaINDecoder",
    "EncoderMismatchError",
    "VGG16Encoder",
    "decoder_state",
    "load_decoder_file",
    "file_sha256",
    "load_pair",
    "load_vgg16_encoder",
    "save_decoder",
    "vgg16_adain_spec",
]

log = logging.getLogger(__name__)

FORMAT = "rtstyle.adain-decoder/1"


class EncoderMismatchError(VGGMismatchError):
    """The encoder weights differ from the ones a decoder was trained against."""


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))


class AdaINDecoder(nn.Module):
    """Decoder mirroring :class:`VGG16Encoder` (see the module docstring for the layout).

    Args:
        base: base width ``b``; 64 is the paper's decoder.

    Shape:
        ``(N, 512, h, w)`` -> ``(N, 3, 8h, 8w)``, RGB roughly in [0, 1] (not clamped).
    """

    level = 41
    in_channels = 512

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        if base < 4:
            raise ValueError(f"decoder base width must be >= 4, got {base}")
        b = int(base)
        self.base = b
        plan = [(512, 4 * b, False), (4 * b, 4 * b, True), (4 * b, 4 * b, False), (4 * b, 2 * b, False),
                (2 * b, 2 * b, True), (2 * b, b, False), (b, b, True), (b, 3, False)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3) for i, o, _ in plan)
        self._up = [u for _, _, u in plan]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.convs) - 1
        for i, (conv, up) in enumerate(zip(self.convs, self._up)):
            if up:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = _conv(h, conv)
            if i != last:
                h = F.relu(h)
        return h


# --------------------------------------------------------------------------- weights

def decoder_state(dec: AdaINDecoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().contiguous().cpu() for k, v in dec.state_dict().items()}


def save_decoder(dec: AdaINDecoder, spec: ModelSpec, path: str | Path, encoder_sha256: str,
                 dtype: torch.dtype = torch.float16) -> Path:
    """Write a decoder as safetensors (fp16 by default) with its spec and encoder checksum."""
    sd = {k: v.to(dtype) for k, v in decoder_state(dec).items()}
    meta = {"format": FORMAT, "spec": spec.to_json(), "encoder_sha256": encoder_sha256, "base": str(dec.base)}
    return write_safetensors(path, sd, meta)


def load_decoder_file(path: str | Path) -> tuple[AdaINDecoder, dict[str, str]]:
    """A decoder written by :func:`save_decoder` and its metadata (``encoder_sha256``, ``spec``)."""
    sd, meta = read_safetensors(path, FORMAT, "AdaIN decoder")
    dec = AdaINDecoder(int(meta.get("base", 32)))
    dec.load_state_dict(sd)
    for p in dec.parameters():
        p.requires_grad_(False)
    return dec.eval(), meta


def load_pair(decoder_path: str | Path, encoder_path: str | Path | None = None,
              verify: bool = True) -> tuple[VGG16Encoder, AdaINDecoder, dict[str, str]]:
    """The trained decoder and the VGG16 encoder it was trained against.

    Raises:
        EncoderMismatchError: the encoder file's sha256 is not the one recorded in the decoder.
    """
    dec, meta = load_decoder_file(decoder_path)
    enc = load_vgg16_encoder(encoder_path)
    want = meta.get("encoder_sha256")
    if verify and want and enc.sha256 != want:
        raise EncoderMismatchError(
            f"the AdaIN decoder {Path(decoder_path).name} was trained against the VGG16 with sha256 "
            f"{want[:16]}..., but the encoder found ({enc.sha256[:16]}...) is a different file. A decoder "
            "only inverts the encoder it was trained with: point --vgg / $RTSTYLE_WEIGHTS at that file "
            "(`rtstyle weights list` shows what was found), or train a decoder for this encoder with "
            "`rtstyle train adain`."
        )
    return enc, dec, meta


# --------------------------------------------------------------------------- registry

def _vgg_adain_factory(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
                       **kwargs: Any) -> nn.Module:
    from .adain import build_adain

    if decoder_path is None:
        with shipped_file(spec) as p:
            if spec.sha256 and sha256_file(p) != spec.sha256:
                raise ValueError(f"{spec.name}: shipped decoder {p.name} fails its sha256 check (reinstall rtstyle)")
            enc, dec, _ = load_pair(p, encoder_path)
    else:
        enc, dec, _ = load_pair(decoder_path, encoder_path)
    return build_adain(spec, enc, dec, **kwargs)


def _register_shipped() -> None:
    register_entries(shipped_entries("adain"), _vgg_adain_factory)


def vgg16_adain_spec(name: str, base: int, encoder_sha256: str, extra: dict[str, Any]) -> ModelSpec:
    """Spec of an AdaIN model on the VGG16 relu4_1 encoder with a trained decoder."""
    return ModelSpec(
        name=name,
        family="adain",
        description=f"arbitrary style by AdaIN at VGG16 relu4_1, decoder (base width {base}) trained by rtstyle; needs --style IMG",
        input_range=(0.0, 1.0),
        output_range=(0.0, 1.0),
        size_multiple=8,
        needs_style_image=True,
        default_size=240,
        licence="Apache-2.0 (decoder, trained by the rtstyle project); encoder: ImageNet VGG16, third-party, not shipped",
        extra=dict(extra, layer="relu4_1", encoder="vgg16", encoder_sha256=encoder_sha256, decoder_base=base),
    )


_register_shipped()

"""Normalised-VGG19 encoders and their reconstruction decoders (Li et al. 2019, LinearStyleTransfer).

The encoders stop at ``relu1_1`` (level 11), ``relu2_1`` (21) or ``relu3_1`` (31); each decoder
inverts the encoder of its level. They are the building blocks of feature-space arbitrary style
transfer (style-swap, AdaIN, WCT, linear transforms): encode content and style, transform the
content features, decode.

Layout (LinearStyleTransfer key names; reflection padding 1 before every 3x3 conv, ReLU after it):

* encoder ``conv1`` 1x1 3->3 (folds the Caffe RGB->BGR, x255 and mean subtraction into the net,
  so the input is plain RGB in [0, 1]), ``conv2`` 3->64 [relu1_1], ``conv3`` 64->64, max-pool,
  ``conv4`` 64->128 [relu2_1], ``conv5`` 128->128, max-pool, ``conv6`` 128->256 [relu3_1].
* decoders mirror it, numbering on from the encoder: level 31 ``conv7`` 256->128, up x2 (nearest),
  ``conv8`` 128->128, ``conv9`` 128->64, up x2, ``conv10`` 64->64, ``conv11`` 64->3 (no ReLU);
  level 21 ``conv5`` 128->64, up x2, ``conv6`` 64->64, ``conv7`` 64->3; level 11 ``conv3`` 64->3.

The encoder of a shallower level is a prefix of a deeper one with the same key names, so
``load_encoder(21, path=<vgg_r31.pth>)`` builds the relu2_1 encoder out of the relu3_1 file.

The encoder and the relu3_1 decoder are third-party (BSD-2) and never shipped: they are found with
:func:`rtstyle.weights.resolve_weight` (``lst/vgg_r31``, ``lst/dec_r31``). The relu1_1 and relu2_1
*decoders* are rtstyle's own (``rtstyle train decoder``, :mod:`rtstyle.training.decoder`), shipped
in ``rtstyle.weights_data`` as ``lst_dec_r11.safetensors`` / ``lst_dec_r21.safetensors`` (the
third-party ``dec_r11`` / ``dec_r21`` files are another layout and do not reconstruct); an explicit
path still wins.

Input contract: RGB in [0, 1], no mean/std, ``(N, 3, H, W)``; H and W multiples of 4 (level 31)
or 2 (level 21) for an exact size round trip (pooling floors odd sizes).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import resolve_weight
from ._spec import ModelSpec

__all__ = ["DECODER_FORMAT", "LEVELS", "LSTDecoder", "LSTEncoder", "LSTLayoutError", "cap_style_image", "load_decoder",
           "load_encoder", "r31_spec", "save_decoder", "shipped_decoder"]

log = logging.getLogger(__name__)
_M = TypeVar("_M", bound=nn.Module)

#: Supported levels: relu1_1, relu2_1, relu3_1.
LEVELS: tuple[int, ...] = (11, 21, 31)

# (key, in, out, pool_before) of the full relu3_1 encoder; shallower levels take a prefix.
_ENC: tuple[tuple[str, int, int, bool], ...] = (
    ("conv2", 3, 64, False),
    ("conv3", 64, 64, False),
    ("conv4", 64, 128, True),
    ("conv5", 128, 128, False),
    ("conv6", 128, 256, True),
)
_ENC_LAST = {11: "conv2", 21: "conv4", 31: "conv6"}
# (key, in, out, upsample_before) per decoder level; the last conv has no ReLU.
_DEC: dict[int, tuple[tuple[str, int, int, bool], ...]] = {
    31: (("conv7", 256, 128, False), ("conv8", 128, 128, True), ("conv9", 128, 64, False),
         ("conv10", 64, 64, True), ("conv11", 64, 3, False)),
    21: (("conv5", 128, 64, False), ("conv6", 64, 64, True), ("conv7", 64, 3, False)),
    11: (("conv3", 64, 3, False),),
}
_CHANNELS = {11: 64, 21: 128, 31: 256}
#: ``format`` metadata of the decoders rtstyle trains (safetensors).
DECODER_FORMAT = "rtstyle.lst_decoder/1"
_SHIPPED_DECODERS = {11: "lst_dec_r11.safetensors", 21: "lst_dec_r21.safetensors"}


class LSTLayoutError(ValueError):
    """A weight file is readable but is not the LinearStyleTransfer layout of the requested level."""


def _check_level(level: int) -> int:
    level = int(level)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS} (relu1_1, relu2_1, relu3_1), got {level}")
    return level


def _conv3(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    # Reflection padding (as the pretrained nets were trained with) rather than zero padding:
    # zero padding darkens the borders of the reconstruction.
    return conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))


class LSTEncoder(nn.Module):
    """Normalised-VGG19 encoder up to ``relu{level}``.

    Args:
        level: 11, 21 or 31.

    Shape:
        ``(N, 3, H, W)`` RGB in [0, 1] -> ``(N, C, H / 2^k, W / 2^k)`` with ``C = 64, 128, 256`` and
        ``k = 0, 1, 2`` for levels 11, 21, 31.
    """

    def __init__(self, level: int = 31) -> None:
        super().__init__()
        self.level = _check_level(level)
        self.out_channels = _CHANNELS[self.level]
        self.conv1 = nn.Conv2d(3, 3, 1)
        self._layers: list[tuple[str, bool]] = []
        for key, cin, cout, pool in _ENC:
            self.add_module(key, nn.Conv2d(cin, cout, 3))
            self._layers.append((key, pool))
            if key == _ENC_LAST[self.level]:
                break

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every ``reluN_1`` activation up to the encoder's level, keyed ``"r11"``, ``"r21"``, ``"r31"``.

        Multi-level methods (WCT, multi-level AdaIN) take their taps from one pass.
        """
        taps = {"conv2": "r11", "conv4": "r21", "conv6": "r31"}
        out: dict[str, torch.Tensor] = {}
        h = self.conv1(x)
        for key, pool in self._layers:
            if pool:
                h = F.max_pool2d(h, 2, 2)
            h = F.relu(_conv3(h, getattr(self, key)))
            if key in taps:
                out[taps[key]] = h
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[f"r{self.level}"]


class LSTDecoder(nn.Module):
    """Decoder inverting :class:`LSTEncoder` of the same level.

    Args:
        level: 11, 21 or 31.

    Shape:
        ``(N, C, h, w)`` -> ``(N, 3, h * 2^k, w * 2^k)``, RGB roughly in [0, 1] (not clamped).
    """

    def __init__(self, level: int = 31) -> None:
        super().__init__()
        self.level = _check_level(level)
        self.in_channels = _CHANNELS[self.level]
        self._layers: list[tuple[str, bool]] = []
        for key, cin, cout, up in _DEC[self.level]:
            self.add_module(key, nn.Conv2d(cin, cout, 3))
            self._layers.append((key, up))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self._layers) - 1
        for i, (key, up) in enumerate(self._layers):
            if up:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = _conv3(h, getattr(self, key))
            if i != last:
                h = F.relu(h)
        return h


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state dict")
    return obj


def _load_into(net: nn.Module, sd: dict[str, torch.Tensor], path: Path, what: str) -> None:
    own = net.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise LSTLayoutError(
            f"{path}: not a LinearStyleTransfer {what} (missing {missing[:4]}; the file has "
            f"{sorted(sd)[:6]}). Expected keys {sorted(own)[:6]}..."
        )
    bad = [k for k in own if tuple(sd[k].shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise LSTLayoutError(f"{path}: {what} key {k} has shape {tuple(sd[k].shape)}, expected {tuple(own[k].shape)}")
    # Extra keys are fine: a deeper encoder's file holds a shallower one as a prefix.
    net.load_state_dict({k: sd[k] for k in own})


def load_encoder(level: int = 31, path: str | Path | None = None) -> LSTEncoder:
    """Load the pretrained normalised-VGG19 encoder of ``level``.

    Args:
        level: 11, 21 or 31.
        path: explicit weight file (may also be a deeper level's file, e.g. ``vgg_r31.pth`` for
            level 21); otherwise ``lst/vgg_r{level}`` is resolved through ``$RTSTYLE_WEIGHTS`` and
            the user cache.

    Returns:
        The encoder in eval mode with gradients disabled.

    Raises:
        WeightNotFoundError: no weight file found.
        LSTLayoutError: the file is not this layout (wrong keys or shapes).
    """
    return _load_pretrained(LSTEncoder, "vgg", "encoder", level, path)


def load_decoder(level: int = 31, path: str | Path | None = None) -> LSTDecoder:
    """Load the decoder of ``level`` (see :func:`load_encoder` for the arguments).

    Level 31 is the third-party pretrained file. Levels 11 and 21 default to rtstyle's shipped
    decoders (:func:`shipped_decoder`); ``path`` may name one written by ``rtstyle train decoder``
    (``.safetensors``) or a ``.pth`` in the LinearStyleTransfer layout.
    """
    level = _check_level(level)
    if path is None and level in _SHIPPED_DECODERS:
        path = shipped_decoder(level)
    if path is not None and Path(path).suffix == ".safetensors":
        from ._safetensors_io import read_safetensors

        sd, meta = read_safetensors(path, DECODER_FORMAT, "LST decoder")
        net = LSTDecoder(level)
        _load_into(net, sd, Path(path), f"relu{level // 10}_1 decoder")
        log.info("LST decoder r%d from %s (%s steps)", level, path, meta.get("steps", "?"))
        return _frozen(net)
    return _load_pretrained(LSTDecoder, "dec", "decoder", level, path)


def shipped_decoder(level: int) -> Path:
    """The path of rtstyle's shipped decoder of level 11 or 21.

    Raises:
        FileNotFoundError: not shipped in this install.
    """
    from importlib import resources

    name = _SHIPPED_DECODERS.get(_check_level(level))
    if name is None:
        raise ValueError(f"no shipped decoder for level {level}: the relu3_1 decoder is third-party (lst/dec_r31)")
    res = resources.files("rtstyle.weights_data").joinpath(name)
    if not res.is_file():
        raise FileNotFoundError(f"the shipped relu{level // 10}_1 decoder {name} is missing from this install")
    return Path(str(res))


def save_decoder(dec: LSTDecoder, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write a decoder (safetensors, temp file + rename) with its level in the metadata."""
    from ._safetensors_io import write_safetensors

    meta = dict(metadata or {}, format=DECODER_FORMAT, level=str(dec.level))
    sd = {k: v.detach().contiguous().float().cpu() for k, v in dec.state_dict().items()}
    return write_safetensors(path, sd, meta)


def _load_pretrained(cls: Callable[[int], _M], prefix: str, what: str, level: int, path: str | Path | None) -> _M:
    """``cls(level)`` with the weights of ``lst/{prefix}_r{level}`` (or ``path``), frozen."""
    level = _check_level(level)
    file = resolve_weight(f"lst/{prefix}_r{level}", explicit=path)
    net = cls(level)
    _load_into(net, _read(file), file, f"relu{level // 10}_1 {what}")
    log.info("LST %s r%d from %s", what, level, file)
    return _frozen(net)


def _frozen(net: _M) -> _M:
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def cap_style_image(style: torch.Tensor, max_side: int | None, min_side: int = 16) -> torch.Tensor:
    """Check a style image ``(1, 3, H, W)`` in [0, 1] and downscale it so its longer side is at most
    ``max_side`` (neither side below ``min_side``); the style families on this encoder share it."""
    if style.dim() != 4 or style.shape[:2] != (1, 3):
        raise ValueError(f"style must be (1, 3, H, W) RGB in [0, 1], got {tuple(style.shape)}")
    h, w = style.shape[-2:]
    if max_side is not None and max(h, w) > max_side:
        s = max_side / max(h, w)
        size = (max(min_side, round(h * s)), max(min_side, round(w * s)))
        style = F.interpolate(style, size=size, mode="bilinear", align_corners=False, antialias=True)
    return style


def r31_spec(name: str, family: str, description: str, extra: dict) -> ModelSpec:
    """The contract shared by every model built on the relu3_1 encoder/decoder pair."""
    return ModelSpec(
        name=name,
        family=family,
        description=description,
        input_range=(0.0, 1.0),
        output_range=(0.0, 1.0),
        size_multiple=4,
        needs_style_image=True,
        default_size=256,
        licence="BSD-2 (LinearStyleTransfer encoder/decoder; weights are third-party, not shipped)",
        weights="lst/vgg_r31.pth + lst/dec_r31.pth",
        extra=extra,
    )

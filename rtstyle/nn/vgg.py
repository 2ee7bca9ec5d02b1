"""The ImageNet VGG16: its layers, named taps, and checksum-checked loading.

One network serves the perceptual losses (:class:`VGG16Features`, taps up to relu4_3), the quality
metrics, and the VGG-based families (:class:`VGG16Encoder`, conv1_1 .. relu4_1, for AdaIN; MetaNet's
style features). The module keys are torchvision's ``vgg16().features.N.*``, so torchvision's file
loads as it is (torchvision itself is not needed). The weights are third-party and never shipped:
:func:`rtstyle.weights.resolve_weight` finds the file (explicit path, ``$RTSTYLE_WEIGHTS``, the user
cache, torchvision's hub cache).

Input contract: RGB in [0, 1], normalised inside by the ImageNet mean/std. Activations are divided by
``act_scale`` (:func:`vgg16_act_scale`), so they have torchvision's magnitude whichever file was
loaded (the Caffe-converted weights fold the 255 input scale into conv1_1).

A model trained against one VGG16 file (a decoder, a meta network) records the file's sha256;
:func:`file_sha256` hashes each file once per process and :func:`check_vgg16_file` refuses another.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..weights import resolve_weight, sha256_file

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RELU_N1",
    "STYLE_LAYERS",
    "TAPS",
    "ImageNetVGG16",
    "VGG16Encoder",
    "VGG16Features",
    "VGGMismatchError",
    "check_vgg16_file",
    "file_sha256",
    "load_vgg16",
    "load_vgg16_encoder",
    "read_vgg16_state_dict",
    "vgg16_act_scale",
    "vgg16_features",
]

log = logging.getLogger(__name__)

#: Per-channel statistics of ImageNet (RGB in [0, 1]) that the VGG16 weights expect their input normalised by.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision ``vgg16().features`` up to conv4_3 + relu4_3 (indices 0..22): channels, "M" = 2x2 max pool.
_VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]

#: torchvision ``vgg16().features`` indices of the ReLUs the style literature uses as loss taps.
TAPS: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_1": 18, "relu4_3": 22}
#: Johnson et al.'s style layers, from fine texture (relu1_2) to larger motifs (relu4_3): the Gram and
#: mean/std style losses, the quality metrics and MetaNet's style features all use these.
STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
#: torchvision ``features`` index of each ``reluN_1`` (the AdaIN encoder's taps, keys ``r11`` .. ``r41``).
RELU_N1: dict[str, int] = {"r11": 1, "r21": 6, "r31": 11, "r41": 18}


class VGGMismatchError(ValueError):
    """The VGG16 file differs from the one a model was trained with."""


def vgg16_features(last: int) -> nn.Sequential:
    """torchvision's VGG16 ``features[0..last]`` (same indices, so same state-dict keys), ``last <= 22``.

    ``last=18`` ends at relu4_1, ``last=22`` at relu4_3. The ReLUs are not in-place.
    """
    n = sum(1 if v == "M" else 2 for v in _VGG16_CFG)
    if not 0 <= last < n:
        raise ValueError(f"VGG16 features index must be in 0..{n - 1}, got {last}")
    layers: list[nn.Module] = []
    c = 3
    for v in _VGG16_CFG:
        if len(layers) > last:  # no layer past ``last`` is built (nor draws from the RNG)
            break
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers[: last + 1])


def vgg16_act_scale(state_dict: Mapping[str, torch.Tensor]) -> float:
    """255 for Caffe-converted VGG16 weights, 1 for torchvision's.

    Caffe-converted weights fold the 255 input scale into conv1_1 (``|w|`` ~ 10 vs ~0.2), so their
    activations are ~255x torchvision's; dividing by this brings them to torchvision magnitude.
    """
    return 255.0 if state_dict["features.0.weight"].abs().mean().item() > 2.0 else 1.0


class ImageNetVGG16(nn.Module):
    """torchvision's ImageNet VGG16 ``features[0..last]`` (torchvision key names) on RGB in [0, 1].

    Normalises the input with the ImageNet mean/std inside and divides the activations by
    ``act_scale`` (:func:`vgg16_act_scale`), so activations have torchvision's magnitude whichever
    VGG16 file was loaded.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, last: int, act_scale: float = 1.0) -> None:
        super().__init__()
        self.features = vgg16_features(last)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.act_scale = float(act_scale)

    def rescale(self, h: torch.Tensor) -> torch.Tensor:
        """Activations divided by ``act_scale`` (untouched when it is 1)."""
        return h / self.act_scale if self.act_scale != 1.0 else h

    def activations(self, x: torch.Tensor, want: Mapping[int, str], stop: int | None = None) -> dict[str, torch.Tensor]:
        """The (rescaled) outputs of the layers ``want`` (``features`` index -> name) from one pass;
        the pass ends after layer ``stop`` (default: runs every layer)."""
        out: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in want:
                out[want[i]] = self.rescale(h)
            if stop is not None and i >= stop:
                break
        return out


class VGG16Features(ImageNetVGG16):
    """VGG16 ``features`` up to relu4_3 returning the requested taps (the loss network).

    Args:
        taps: names from :data:`TAPS`; default :data:`STYLE_LAYERS`.
        act_scale: see :func:`vgg16_act_scale` (set by :func:`load_vgg16`).

    Shape:
        x: ``(N, 3, H, W)`` RGB in [0, 1]; returns a dict ``tap -> (N, C, H', W')``.
    """

    def __init__(self, taps: tuple[str, ...] = STYLE_LAYERS, act_scale: float = 1.0) -> None:
        unknown = set(taps) - set(TAPS)
        if unknown:
            raise ValueError(f"unknown VGG taps {sorted(unknown)}; known: {sorted(TAPS)}")
        super().__init__(22, act_scale)  # indices 0..22 == torchvision's up to relu4_3
        self.taps = tuple(sorted(taps, key=TAPS.__getitem__))
        self.last = max(TAPS[t] for t in self.taps)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.activations(x, {TAPS[t]: t for t in self.taps}, stop=self.last)


class VGG16Encoder(ImageNetVGG16):
    """ImageNet VGG16 ``features[0..18]`` (conv1_1 .. relu4_1), torchvision key names: AdaIN's encoder.

    Attributes:
        sha256: checksum of the file the weights came from (set by :func:`load_vgg16_encoder`).

    Shape:
        ``(N, 3, H, W)`` RGB in [0, 1] -> relu4_1 ``(N, 512, H / 8, W / 8)``.
    """

    level = 41
    out_channels = 512

    def __init__(self, act_scale: float = 1.0) -> None:
        super().__init__(RELU_N1["r41"], act_scale)  # VGG16 features[0..18]
        self.sha256: str | None = None

    def taps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """relu1_1, relu2_1, relu3_1 and relu4_1 from one pass (keys ``r11`` .. ``r41``)."""
        return self.activations(x, {i: k for k, i in RELU_N1.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rescale(self.features((x - self.mean) / self.std))


# --------------------------------------------------------------------------- files

@lru_cache(maxsize=8)
def _sha_cached(path: str, size: int, mtime: float) -> str:
    return sha256_file(Path(path))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, cached by (path, size, mtime): a 58 MB VGG16 is hashed once per process."""
    path = Path(path)
    st = path.stat()
    return _sha_cached(str(path.resolve()), st.st_size, st.st_mtime)


def check_vgg16_file(file: str | Path, want_sha256: str | None, trained: str) -> None:
    """Refuse a VGG16 file other than the one a model recorded (no check, no hashing, when
    ``want_sha256`` is empty).

    Args:
        file: the VGG16 file found.
        want_sha256: the checksum the model recorded.
        trained: who recorded it, for the message (``"this meta network"``).

    Raises:
        VGGMismatchError: the file is another one.
    """
    if not want_sha256:
        return
    got = file_sha256(file)
    if got != want_sha256:
        raise VGGMismatchError(
            f"{trained} was trained with the VGG16 file with sha256 {want_sha256[:16]}..., but the one found "
            f"({file}, {got[:16]}...) is a different file; other VGG16 weights give other features. Point "
            "vgg= / --vgg / $RTSTYLE_WEIGHTS at that file (`rtstyle weights list` shows what was found)."
        )


def _conv_keys(last: int) -> list[str]:
    """State-dict keys of :func:`vgg16_features` ``(last)`` (its convolutions' weights and biases)."""
    keys: list[str] = []
    i = 0
    for v in _VGG16_CFG:
        if i > last:
            break
        if v != "M":
            keys += [f"features.{i}.weight", f"features.{i}.bias"]
        i += 1 if v == "M" else 2
    return keys


def read_vgg16_state_dict(file: str | Path, last: int, keep: int | None = None) -> dict[str, torch.Tensor]:
    """The ``features.N.*`` tensors of a VGG16 state dict with torchvision key names.

    Args:
        file: a ``.pth`` state dict (or a checkpoint with one under ``"state_dict"``).
        last: every layer up to ``features[last]`` must be there.
        keep: also return the layers up to ``features[keep]`` that the file has (default: ``last``).

    Raises:
        ValueError: unreadable, or not a VGG16 state dict with those keys.
    """
    try:
        sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or not a torch file
        raise ValueError(f"{file}: cannot read VGG16 weights ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{file}: not a VGG16 state dict ({type(sd).__name__})")
    need = _conv_keys(last)
    missing = [k for k in need if k not in sd]
    if missing:
        raise ValueError(f"{file}: not a VGG16 state dict with torchvision key names (missing {missing[:3]})")
    kept = _conv_keys(max(last, keep or last))
    return {k: sd[k] for k in kept if k in sd}


def load_vgg16(path: str | Path | None = None, taps: tuple[str, ...] = STYLE_LAYERS) -> VGG16Features:
    """The VGG16 loss network (frozen, eval).

    Args:
        path: explicit weights file; otherwise resolved by :func:`rtstyle.weights.resolve_weight` ("vgg16").
        taps: which activations to return (names from :data:`TAPS`).
    """
    file = resolve_weight("vgg16", explicit=path)
    net = VGG16Features(taps)
    sd = read_vgg16_state_dict(file, net.last, keep=22)  # every layer the file has: a deterministic module
    net.load_state_dict(sd, strict=False)
    net.act_scale = vgg16_act_scale(sd)
    log.info("VGG16 loss network from %s (activation scale %g)", file, net.act_scale)
    return net.eval()


def load_vgg16_encoder(path: str | Path | None = None) -> VGG16Encoder:
    """The relu4_1 encoder (frozen, eval) with ``.sha256`` set to its file's checksum.

    Args:
        path: explicit file; otherwise resolved by :func:`rtstyle.weights.resolve_weight` ("vgg16").
    """
    file = resolve_weight("vgg16", explicit=path)
    sd = read_vgg16_state_dict(file, RELU_N1["r41"])
    enc = VGG16Encoder()
    enc.load_state_dict(sd)
    enc.act_scale = vgg16_act_scale(sd)
    enc.sha256 = file_sha256(file)
    for p in enc.parameters():
        p.requires_grad_(False)
    log.info("VGG16 relu4_1 encoder from %s (sha256 %s..., activation scale %g)", file, enc.sha256[:12], enc.act_scale)
    return enc.eval()

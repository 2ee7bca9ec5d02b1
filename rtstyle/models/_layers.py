"""Building blocks shared by the feed-forward families."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ConvLayer",
    "ImageNetVGG16",
    "ResidualBlock",
    "UpsampleConvLayer",
    "vgg16_act_scale",
    "vgg16_features",
]

#: Per-channel statistics of ImageNet (RGB in [0, 1]) that the VGG16 weights expect their input normalised by.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision ``vgg16().features`` up to conv4_3 + relu4_3 (indices 0..22): channels, "M" = 2x2 max pool.
_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]


class ConvLayer(nn.Module):
    """Reflection padding then a convolution (pytorch/examples key names: ``conv2d``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    """Two 3x3 conv + instance-norm layers with an identity shortcut (Johnson et al.)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(y)) + x


class UpsampleConvLayer(nn.Module):
    """Nearest upsampling then convolution: no checkerboard artefacts of transposed convs."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv2d(self.reflection_pad(x))


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


def vgg16_act_scale(state_dict: dict[str, torch.Tensor]) -> float:
    """255 for Caffe-converted VGG16 weights, 1 for torchvision's.

    Caffe-converted weights fold the 255 input scale into conv1_1 (``|w|`` ~ 10 vs ~0.2), so their
    activations are ~255x torchvision's; dividing by this brings them to torchvision magnitude.
    """
    return 255.0 if state_dict["features.0.weight"].abs().mean().item() > 2.0 else 1.0


class ImageNetVGG16(nn.Module):
    """torchvision's ImageNet VGG16 ``features[0..last]`` (torchvision key names) on RGB in [0, 1].

    Normalises the input with the ImageNet mean/std inside and divides the activations by
    ``act_scale`` (:func:`vgg16_act_scale`: 255 for Caffe-converted weights), so activations have
    torchvision's magnitude whichever VGG16 file was loaded.
    """

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

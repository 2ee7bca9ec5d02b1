"""VGG16 loss network with torchvision's key names (torchvision itself is optional)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ..weights import resolve_weight

__all__ = ["VGG16Features", "TAPS", "load_vgg16"]

log = logging.getLogger(__name__)

# torchvision ``vgg16().features`` indices of the ReLUs used by the style literature.
TAPS: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_1": 18, "relu4_3": 22}
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            c = int(v)
    return nn.Sequential(*layers)  # indices 0..22 == torchvision's up to relu4_3


class VGG16Features(nn.Module):
    """VGG16 ``features`` up to relu4_3 returning the requested taps.

    Input: RGB in [0, 1] (normalised inside with ImageNet mean/std). Returned activations are
    divided by ``act_scale`` so that losses have the same magnitude whichever VGG16 weights
    were loaded (the Caffe-converted weights produce activations ~255x torchvision's).

    Shape:
        x: ``(N, 3, H, W)``; returns a dict ``tap -> (N, C, H', W')``.
    """

    def __init__(self, taps: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"), act_scale: float = 1.0) -> None:
        super().__init__()
        unknown = set(taps) - set(TAPS)
        if unknown:
            raise ValueError(f"unknown VGG taps {sorted(unknown)}; known: {sorted(TAPS)}")
        self.features = _features()
        self.taps = tuple(sorted(taps, key=TAPS.__getitem__))
        self.last = max(TAPS[t] for t in self.taps)
        self.act_scale = float(act_scale)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        want = {TAPS[t]: t for t in self.taps}
        out: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in want:
                out[want[i]] = h / self.act_scale if self.act_scale != 1.0 else h
            if i >= self.last:
                break
        return out


def load_vgg16(path: str | Path | None = None, taps: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")) -> VGG16Features:
    """Load the VGG16 loss network.

    Args:
        path: explicit weights file; otherwise resolved by :func:`rtstyle.weights.resolve_weight`
            (``$RTSTYLE_WEIGHTS``, the user cache, then torchvision's hub cache).
        taps: which activations to return.
    """
    file = resolve_weight("vgg16", explicit=path)
    sd = torch.load(file, map_location="cpu", weights_only=True)
    sd = {k: v for k, v in sd.items() if k.startswith("features.")}
    net = VGG16Features(taps)
    own = net.state_dict()
    missing = [k for k in own if k.startswith("features.") and int(k.split(".")[1]) <= net.last and k not in sd]
    if missing:
        raise ValueError(f"{file}: not a VGG16 state dict (missing {missing[:3]}...)")
    net.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    # Caffe-converted weights fold the 255 input scale into conv1_1 (|w| ~ 10 vs ~0.2).
    w0 = sd["features.0.weight"].abs().mean().item()
    net.act_scale = 255.0 if w0 > 2.0 else 1.0
    log.info("VGG16 loss network from %s (activation scale %g)", file, net.act_scale)
    return net.eval()

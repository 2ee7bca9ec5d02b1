"""VGG16 loss network with torchvision's key names (torchvision itself is optional)."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..models._layers import IMAGENET_MEAN, IMAGENET_STD, ImageNetVGG16, vgg16_act_scale
from ..weights import resolve_weight

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VGG16Features", "TAPS", "load_vgg16"]

log = logging.getLogger(__name__)

# torchvision ``vgg16().features`` indices of the ReLUs used by the style literature.
TAPS: dict[str, int] = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_1": 18, "relu4_3": 22}


class VGG16Features(ImageNetVGG16):
    """VGG16 ``features`` up to relu4_3 returning the requested taps.

    Input: RGB in [0, 1] (normalised inside with ImageNet mean/std). Returned activations are
    divided by ``act_scale`` so that losses have the same magnitude whichever VGG16 weights
    were loaded (the Caffe-converted weights produce activations ~255x torchvision's).

    Shape:
        x: ``(N, 3, H, W)``; returns a dict ``tap -> (N, C, H', W')``.
    """

    def __init__(self, taps: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"), act_scale: float = 1.0) -> None:
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
    net.act_scale = vgg16_act_scale(sd)
    log.info("VGG16 loss network from %s (activation scale %g)", file, net.act_scale)
    return net.eval()

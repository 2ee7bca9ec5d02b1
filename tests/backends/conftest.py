"""Fixtures for the backend tests: real frames, two small models and an eager fp32 reference.

Exports are slow on a busy CPU, so the ONNX and OpenVINO tests share one engine cache per session
(``session_cache``): each model is exported once and every later test hits the cache.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from rtstyle.models.johnson import TransformerNet

# (H, W) of the two frame sizes every runner sees: both multiples of 4, different aspect ratios
SIZES = ((96, 128), (72, 96))
PHOTO = "palapeli_cincinnati-bridge.jpg"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [0, 255] after clamping (as the stylizer shows them)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    mse = torch.mean((a.detach().float().cpu().clamp(0, 255) - b.detach().float().cpu().clamp(0, 255)) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="session")
def psnr_db() -> Callable[[torch.Tensor, torch.Tensor], float]:
    return psnr


@pytest.fixture(scope="session")
def frames(shared: Path) -> list[torch.Tensor]:
    """One real photo at each of :data:`SIZES`, float32 RGB in [0, 255], (1, 3, H, W)."""
    import cv2

    p = shared / "media" / "photos" / "content" / PHOTO
    if not p.exists():
        pytest.skip(f"needs {p}")
    img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    out = []
    for h, w in SIZES:
        small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        out.append(torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1)[None].float().contiguous())
    return out


def make_tnet(seed: int = 0, width: int = 8, n_res: int = 2) -> TransformerNet:
    """A small random TransformerNet whose output spans [0, 255] like a trained one.

    Random init gives outputs of about +-1, which clamping would flatten to black and make any two
    backends agree; the last conv is rescaled so the output has mean ~128 and std ~60 on photos.
    """
    torch.manual_seed(seed)
    net = TransformerNet(width, n_res).eval()
    with torch.no_grad():
        net.deconv3.conv2d.weight.mul_(180.0)
        net.deconv3.conv2d.bias.add_(127.5)
    return net


@pytest.fixture(scope="session")
def tnet() -> TransformerNet:
    return make_tnet()


@pytest.fixture(scope="session")
def tnet_factory() -> Callable[..., TransformerNet]:
    """:func:`make_tnet` (test modules do not import conftest: two conftest.py share one name)."""
    return make_tnet


@pytest.fixture(scope="session")
def engstrom(engstrom_udnie: Path) -> torch.nn.Module:
    from rtstyle.models import create_model

    return create_model(engstrom_udnie).eval()


@pytest.fixture(scope="session")
def reference() -> Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]:
    """Eager fp32 output (the ground truth every backend is compared with)."""

    def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x).float()

    return run


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An engine cache shared by the ONNX and OpenVINO tests of one session."""
    return tmp_path_factory.mktemp("engines")

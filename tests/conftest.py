"""Shared fixtures. Tests that need ../shared (weights, media) skip with a reason when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RTSTYLE_SHARED", REPO.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test data beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def shared_weights(shared: Path) -> Path:
    return _need(shared / "weights")


@pytest.fixture(scope="session")
def vgg16_path(shared_weights: Path) -> Path:
    return _need(shared_weights / "vgg16_imagenet_to_relu4_3.pth")


@pytest.fixture(scope="session")
def engstrom_udnie(shared_weights: Path) -> Path:
    return _need(shared_weights / "engstrom" / "udnie.pth")


@pytest.fixture(scope="session")
def content_photo(shared: Path) -> np.ndarray:
    """A real photo, RGB uint8, resized to 160x120."""
    import cv2

    p = _need(shared / "media" / "photos" / "content" / "palapeli_cincinnati-bridge.jpg")
    img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="session")
def videos(shared: Path) -> Path:
    return _need(shared / "media" / "videos")


@pytest.fixture(scope="session")
def tiny_johnson(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pytorch/examples-layout checkpoint (random weights, fixed seed) as a user would have."""
    import torch

    from rtstyle.models.johnson import TransformerNet

    torch.manual_seed(0)
    net = TransformerNet(width=4, n_res=2)
    p = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save(net.state_dict(), p)
    return p

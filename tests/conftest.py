"""Shared fixtures. Tests that need ../shared (weights, media) skip with a reason when it is absent."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

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


# --------------------------------------------------------------------------- helpers as fixtures
# (tests run with --import-mode=importlib: test modules cannot import each other or this file)


@pytest.fixture(scope="session")
def read_rgb() -> Callable[[Path, tuple[int, int]], np.ndarray]:
    """``read_rgb(path, (w, h))``: an image file as RGB uint8 resized to ``(w, h)``; skips if unreadable."""
    import cv2

    def read(path: Path, size: tuple[int, int]) -> np.ndarray:
        img = cv2.imread(str(path))
        if img is None:
            pytest.skip(f"cannot read {path}")
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))

    return read


@pytest.fixture(scope="session")
def rgb_tensor() -> Callable[[np.ndarray], Any]:
    """``rgb_tensor(img)``: RGB uint8 ``(H, W, 3)`` -> ``(1, 3, H, W)`` float tensor in [0, 1]."""
    import torch

    def convert(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255

    return convert


@pytest.fixture(scope="session")
def list_source() -> type:
    """A :class:`rtstyle.io.base.Source` class: ``list_source(images, fps=25.0)`` plays the frames
    of a list once (file mode), frame ``i`` at ``pts = i / fps``."""
    from rtstyle.frame import Frame
    from rtstyle.io.base import Source, SourceInfo

    class ListSource(Source):
        def __init__(self, images: list[np.ndarray], fps: float = 25.0) -> None:
            self.images, self.i = images, 0
            h, w = images[0].shape[:2]
            self.info = SourceInfo(width=w, height=h, fps=fps, live=False, frame_count=len(images))

        def read(self) -> Frame | None:
            if self.i >= len(self.images):
                return None
            f = Frame(self.images[self.i], self.i, pts=self.i / self.info.fps)
            self.i += 1
            return f

        def close(self) -> None:
            pass

    return ListSource


@pytest.fixture(scope="session")
def collect_sink() -> type:
    """A :class:`rtstyle.io.base.Sink` class that keeps every frame written in ``.frames``."""
    from rtstyle.frame import Frame
    from rtstyle.io.base import Sink

    class Collect(Sink):
        def __init__(self) -> None:
            self.frames: list[Frame] = []

        def write(self, frame: Frame) -> None:
            self.frames.append(frame)

        def close(self) -> None:
            pass

    return Collect


@pytest.fixture(scope="session")
def stats_dist() -> Callable[..., float]:
    """``stats_dist(p, q, region)``: how far apart the per-channel mean and std of two ``(N, C, H, W)``
    tensors are over ``region`` (an index tuple such as ``(..., slice(0, 64))``)."""
    import torch

    def dist(p: torch.Tensor, q: torch.Tensor, region: tuple) -> float:
        return float((p[region].mean((2, 3)) - q[region].mean((2, 3))).norm()
                     + (p[region].std((2, 3)) - q[region].std((2, 3))).norm())

    return dist


@pytest.fixture(scope="session")
def style_swap_outputs() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``style_swap_outputs(stylizer, style_image, frame)``: ``frame`` stylised before and after swapping
    the Stylizer to ``style_image``; asserts both keep the frame's shape and clearly differ."""

    def run(st: Any, style_image: Any, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y1 = st.stylize(frame)
        st.set_style(style_image=style_image, wait=True)
        y2 = st.stylize(frame)
        assert y1.shape == y2.shape == frame.shape
        assert np.abs(y1.astype(float) - y2.astype(float)).mean() > 5
        return y1, y2

    return run

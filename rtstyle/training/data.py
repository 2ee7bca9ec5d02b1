"""Image folders for training: decoded once, random crops per batch."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from ..image import IMAGE_EXTENSIONS, fit_image, images_under, read_image, to_tensor

__all__ = ["IMAGE_EXTS", "ImageFolder", "fit_image", "rotate_hue", "split_held_out", "training_files"]

log = logging.getLogger(__name__)
IMAGE_EXTS = IMAGE_EXTENSIONS  # the package's one set (rtstyle.image)


#: Correlation of two images' 32x32 grey thumbnails above which they count as copies of one picture
#: (copies under other names and sizes in ../shared/media/styles score 0.98-1.00, different paintings <= 0.5).
COPY_CORRELATION = 0.9


def _thumbnail(path: Path) -> np.ndarray:
    import cv2

    grey = read_image(path, max_side=128).astype(np.float32).mean(axis=2)
    t = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).ravel()
    t -= t.mean()
    return t / (float(np.linalg.norm(t)) + 1e-6)


def split_held_out(files: list[Path], exclude: tuple[str, ...] | list[str],
                   threshold: float = COPY_CORRELATION) -> tuple[list[Path], list[Path]]:
    """``(trained on, held out)``: ``files`` whose stem is in ``exclude`` are held out, and so is any
    copy of one of them under another name (its grey thumbnail correlates above ``threshold`` with a
    held-out file's: a renamed or resized copy would otherwise put a held-out painting into training).
    Held-out files are in the order of ``exclude``."""
    order = {s: i for i, s in reversed(list(enumerate(Path(e).stem for e in exclude)))}
    held = sorted((p for p in files if p.stem in order), key=lambda p: order[p.stem])
    train = [p for p in files if p.stem not in order]
    if held and train:
        refs = np.stack([_thumbnail(p) for p in held])
        copies = {p for p in train if float((refs @ _thumbnail(p)).max()) > threshold}
        for p in sorted(copies):
            log.warning("%s looks like a copy of a held-out image: left out of training", p)
        train = [p for p in train if p not in copies]
    return train, held


def training_files(folder: str | Path, exclude: tuple[str, ...] | list[str] = (),
                   what: str = "images") -> tuple[list[Path], list[Path]]:
    """``(trained on, held out)`` of the images under ``folder`` (:func:`split_held_out`).

    Raises:
        FileNotFoundError: nothing is left to train on.
    """
    train, held = split_held_out(images_under(folder), exclude)
    if not train:
        raise FileNotFoundError(f"no {what} left in {folder} after excluding {sorted(Path(e).stem for e in exclude)}")
    return train, held


class ImageFolder:
    """All images of a folder decoded into memory at ``short_side``; random square crops.

    Args:
        folder: images (searched recursively).
        size: crop size.
        short_side: decode size (defaults to ``size``).
        seed: RNG seed for crops and order.
        exclude: file names or stems to leave out (held-out test images).
    """

    def __init__(self, folder: str | Path, size: int, short_side: int | None = None, seed: int = 0,
                 exclude: tuple[str, ...] = ()) -> None:
        self.files, _ = training_files(folder, exclude)
        self.size = size
        s = short_side or size
        self.images = [read_image(p, short_side=s) for p in self.files]
        self.rng = np.random.default_rng(seed)
        log.info("loaded %d images from %s", len(self.images), folder)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, n: int) -> torch.Tensor:
        """``(n, 3, size, size)`` float in [0, 1]."""
        out = np.empty((n, self.size, self.size, 3), np.uint8)
        for i, j in enumerate(self.rng.integers(0, len(self.images), n)):
            img = self.images[j]
            h, w = img.shape[:2]
            if min(h, w) < self.size:  # a small image: upscale so the crop fits
                import cv2

                s = self.size / min(h, w)
                img = cv2.resize(img, (max(self.size, round(w * s)), max(self.size, round(h * s))))
                h, w = img.shape[:2]
            y = int(self.rng.integers(0, h - self.size + 1))
            x = int(self.rng.integers(0, w - self.size + 1))
            crop = img[y : y + self.size, x : x + self.size]
            if self.rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[i] = crop
        return to_tensor(out)


def rotate_hue(img: torch.Tensor, angle: float) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB in [0, 1] with its hue rotated by ``angle`` radians (a rotation of the
    chroma plane of YIQ: luma kept; clipped to [0, 1])."""
    c, s = math.cos(angle), math.sin(angle)
    yiq = _RGB_TO_YIQ.to(img)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]).to(img)
    m = torch.linalg.inv(yiq) @ rot @ yiq
    return torch.einsum("oc,nchw->nohw", m, img).clamp(0.0, 1.0)


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])

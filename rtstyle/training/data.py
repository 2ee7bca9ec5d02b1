"""Image folders for training: decoded once, random crops per batch."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..image import IMAGE_EXTENSIONS, fit_image, images_under, read_image, to_tensor

__all__ = ["IMAGE_EXTS", "ImageFolder", "fit_image"]

log = logging.getLogger(__name__)
IMAGE_EXTS = IMAGE_EXTENSIONS  # the package's one set (rtstyle.image)


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
        drop = {Path(e).stem for e in exclude}
        self.files = [p for p in images_under(folder) if p.stem not in drop]
        if not self.files:
            raise FileNotFoundError(f"no images left in {folder} after excluding {sorted(drop)}")
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

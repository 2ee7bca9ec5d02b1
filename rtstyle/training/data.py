"""Image folders for training: decoded once, random crops per batch."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

__all__ = ["IMAGE_EXTS", "ImageFolder", "fit_image", "load_rgb", "list_images"]

log = logging.getLogger(__name__)
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"not a folder of images: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in {folder}")
    return files


def load_rgb(path: str | Path, short_side: int | None = None, max_side: int | None = None) -> np.ndarray:
    """Read an image as RGB uint8 (greyscale and alpha converted), optionally resized."""
    import cv2

    img = None
    if max_side and not short_side and Path(path).suffix.lower() in (".jpg", ".jpeg"):
        # libjpeg decodes at 1/2 scale in about half the time (a 1024 px painting shrunk to a style
        # change's 384 px: 6 vs 12 ms); used only when the half-size image still covers max_side
        img = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2)
        if img is not None and max(img.shape[:2]) < max_side:
            img = None
    if img is None:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # always 3-channel BGR
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(fit_image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), short_side, max_side))


def fit_image(img: np.ndarray, short_side: int | None = None, max_side: int | None = None) -> np.ndarray:
    """Resize an image so its shorter side is ``short_side`` and/or its longer side at most
    ``max_side`` (area averaging when shrinking, bicubic when enlarging); unchanged if it fits."""
    import cv2

    h, w = img.shape[:2]
    scale = 1.0
    if short_side:
        scale = short_side / min(h, w)
    if max_side and max(h, w) * scale > max_side:
        scale = max_side / max(h, w)
    if scale == 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


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
        self.files = [p for p in list_images(folder) if p.stem not in drop]
        if not self.files:
            raise FileNotFoundError(f"no images left in {folder} after excluding {sorted(drop)}")
        self.size = size
        s = short_side or size
        self.images = [load_rgb(p, short_side=s) for p in self.files]
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
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)

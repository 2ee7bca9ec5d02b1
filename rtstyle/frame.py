"""The unit of work that travels through the pipeline."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["Frame"]


@dataclass(slots=True)
class Frame:
    """One video frame.

    Attributes:
        image: ``uint8`` array of shape ``(H, W, 3)`` in RGB order, C-contiguous.
        index: position of the frame in its source, counting from 0.
        pts: presentation time in seconds (``None`` when the source has none).
        pixel_format: always ``"rgb24"`` for frames handed to stylizers and sinks.
        captured_at: ``time.perf_counter()`` when the source produced the frame; used for latency.
        meta: free-form per-frame annotations added by stages (e.g. the style in effect).
    """

    image: np.ndarray
    index: int
    pts: float | None = None
    pixel_format: str = "rgb24"
    captured_at: float = field(default_factory=time.perf_counter)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            got = f"{type(img).__name__} {getattr(img, 'dtype', '?')} {getattr(img, 'shape', '?')}"
            raise ValueError(f"Frame.image must be a uint8 HxWx3 array, got {got}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def with_image(self, image: np.ndarray) -> "Frame":
        """A copy of this frame's metadata around a new image."""
        return replace(self, image=image, meta=dict(self.meta))

"""A moving test pattern that stands in for a camera in tests, benchmarks and demos."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from ..frame import Frame
from .base import Source, SourceInfo

__all__ = ["SyntheticSource"]

log = logging.getLogger(__name__)

# 3x5 bitmap digits for the frame counter (numpy only: the default pattern needs no OpenCV; a
# background image is read and resized by rtstyle.image).
_DIGITS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
}


class SyntheticSource(Source):
    """Scrolling colour gradients (or a scrolling photo), a bouncing disc, a sliding square and a frame counter.

    Frame ``i`` is a pure function of ``i`` (reproducible). When ``live``, frames are due at
    ``t0 + i / fps`` on a ``perf_counter`` clock started by the first :meth:`read` (so it never
    drifts); a consumer slower than ``fps`` gets the newest due frame and the skipped ones are
    counted in :attr:`dropped`, like a camera. When not live, frames come as fast as they are read.

    Args:
        width / height: frame size in pixels.
        fps: frame rate (also sets ``pts = index / fps``).
        frames: number of frames before the end of stream; ``None`` for endless.
        live: pace in real time with latest-wins semantics (True) or run flat out (False).
        background: an RGB ``(H, W, 3)`` uint8 image, or an image file, to scroll instead of the
            gradients: resized to the frame size and tiled, so every frame is a window of it moving by
            the same whole-pixel step (:attr:`step`) as the gradients — a textured scene with exact
            motion, for flicker measurements (the flat gradients give a net little to anchor
            strokes to). The tile's seam is an edge of the scene that moves with it.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        frames: int | None = None,
        live: bool = True,
        background: np.ndarray | str | Path | None = None,
    ) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"synthetic frames must be at least 16x16, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if frames is not None and frames < 0:
            raise ValueError(f"frames must be >= 0 or None, got {frames}")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.frames = frames
        self.live = live
        self._background = _load_background(background, self.width, self.height) if background is not None else None
        self.info = SourceInfo(
            width=self.width,
            height=self.height,
            fps=self.fps,
            live=live,
            frame_count=frames,
            path=None,
            extra={"pattern": "synthetic" if background is None else "synthetic+image"},
        )
        self.dropped = 0
        self._next = 0
        self._t0: float | None = None
        self._closed = False
        self._build()

    # -- precomputed pieces -----------------------------------------------------------------
    def _build(self) -> None:
        w, h = self.width, self.height
        # A tile twice the frame size whose colours repeat every (w, h): any w x h window of it
        # is a seamless view, so scrolling is one slice and one copy per frame.
        if self._background is not None:
            self._tile = np.ascontiguousarray(np.tile(self._background, (2, 2, 1)))
        else:
            x = np.arange(2 * w, dtype=np.float32)[None, :] * (2 * math.pi / w)
            y = np.arange(2 * h, dtype=np.float32)[:, None] * (2 * math.pi / h)
            r = 127.5 + 127.5 * np.sin(x + 0.0) * np.cos(y * 0.5) ** 2
            g = 127.5 + 127.5 * np.sin(x + 2.1 + y)
            b = 127.5 + 127.5 * np.cos(y - 1.0 + x * 0.5)
            self._tile = np.ascontiguousarray(np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8))
        self._step = (max(1, w // 160), max(1, h // 240))  # scroll speed in px/frame

        d = max(8, min(w, h) // 5)
        yy, xx = np.mgrid[:d, :d]
        c = (d - 1) / 2
        self._disc = (xx - c) ** 2 + (yy - c) ** 2 <= c * c
        self._square = max(6, min(w, h) // 8)

        s = max(1, h // 80)  # counter pixel size
        pixel = np.ones((s, s), bool)
        self._glyphs = {k: np.kron(np.array([c == "1" for c in v]).reshape(5, 3), pixel) for k, v in _DIGITS.items()}
        self._glyph_w = 4 * s  # glyph plus one column of spacing
        self._glyph_pad = s

    def render(self, index: int) -> np.ndarray:
        """The ``(H, W, 3)`` uint8 RGB image of frame ``index``."""
        w, h = self.width, self.height
        ox = (index * self._step[0]) % w
        oy = (index * self._step[1]) % h
        img = self._tile[oy : oy + h, ox : ox + w].copy()

        # Bouncing disc (triangle waves along x and y with different periods).
        d = self._disc.shape[0]
        px = _bounce(index * 5, w - d)
        py = _bounce(index * 3, h - d)
        img[py : py + d, px : px + d][self._disc] = (255, 255, 255)

        # A dark square sliding the other way.
        q = self._square
        sx = (w - q) - _bounce(index * 7, w - q)
        sy = (h - q) // 2 + int((h - q) / 3 * math.sin(index * 0.05))
        img[sy : sy + q, sx : sx + q] = (20, 20, 160)

        # Frame counter, white on black, top-left.
        text = str(index)
        gh, gw = next(iter(self._glyphs.values())).shape
        p = self._glyph_pad
        box_w = min(w, len(text) * self._glyph_w + p)
        box_h = min(h, gh + 2 * p)
        img[:box_h, :box_w] = 0
        for k, ch in enumerate(text):
            x0 = p + k * self._glyph_w
            if x0 + gw > w or p + gh > h:
                break
            img[p : p + gh, x0 : x0 + gw][self._glyphs[ch]] = 255
        return img

    @property
    def step(self) -> tuple[int, int]:
        """How far the background moves per frame, ``(dx, dy)`` pixels (content moves left and up)."""
        return self._step

    # -- Source ---------------------------------------------------------------------------
    def read(self) -> Frame | None:
        """The next frame (live: the newest due one, waiting for it if needed); ``None`` at the end."""
        if self._closed or (self.frames is not None and self._next >= self.frames):
            return None
        index = self._next
        if self.live:
            now = time.perf_counter()
            if self._t0 is None:
                self._t0 = now - index / self.fps
            due = int((now - self._t0) * self.fps)
            if due > index:  # the consumer fell behind: skip to the newest frame, like a camera
                if self.frames is not None and due >= self.frames:
                    due = self.frames - 1
                self.dropped += due - index
                index = due
            else:
                wait = self._t0 + index / self.fps - now
                if wait > 0:
                    time.sleep(wait)
            captured_at = self._t0 + index / self.fps
        else:
            captured_at = time.perf_counter()
        self._next = index + 1
        return Frame(self.render(index), index=index, pts=index / self.fps, captured_at=captured_at)

    def close(self) -> None:
        """End the stream."""
        self._closed = True


def _load_background(img: np.ndarray | str | Path, width: int, height: int) -> np.ndarray:
    """``img`` (RGB array or image file) as ``(height, width, 3)`` uint8 RGB."""
    from ..image import check_image, read_image, resize

    arr = read_image(img) if isinstance(img, (str, Path)) else check_image(img, "background")
    return np.ascontiguousarray(resize(arr, (width, height), enlarge="linear"))


def _bounce(t: int, span: int) -> int:
    """Triangle wave over ``0..span``."""
    if span <= 0:
        return 0
    t %= 2 * span
    return t if t <= span else 2 * span - t

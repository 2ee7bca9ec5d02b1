"""Optical flow: Middlebury ``.flo`` files and OpenCV estimators (DIS, Farneback).

Convention used throughout :mod:`rtstyle.temporal`: a flow ``f`` *from* frame ``a`` *to* frame
``b`` is an ``(H, W, 2)`` float32 array (``dx, dy`` in pixels, on ``a``'s grid) such that
``a(x) ~ b(x + f(x))``. This is what OpenCV's ``calc(a, b)`` returns and what Sintel's
``frame_000N.flo`` (N -> N+1) stores.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["FLO_MAGIC", "FlowEstimator", "estimate_flow", "read_flo", "write_flo"]

log = logging.getLogger(__name__)

#: First 4 bytes of a ``.flo`` file, as float32 ("PIEH" in ASCII).
FLO_MAGIC = 202021.25
_MAX_SIDE = 1 << 15  # sanity bound on a header's width/height (reject garbage files early)

_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}  # cv2.DISOPTICAL_FLOW_PRESET_*


def read_flo(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a Middlebury ``.flo`` file.

    Returns:
        ``(H, W, 2)`` float32 flow (``dx, dy``).

    Raises:
        ValueError: not a ``.flo`` file (bad magic), or truncated.
    """
    p = Path(path)
    data = p.read_bytes()
    if len(data) < 12:
        raise ValueError(f"{p}: too short for a .flo header ({len(data)} bytes)")
    magic = np.frombuffer(data, "<f4", 1, 0)[0]
    if magic != np.float32(FLO_MAGIC):
        raise ValueError(f"{p}: not a .flo file (magic {magic!r}, expected {FLO_MAGIC})")
    w, h = (int(v) for v in np.frombuffer(data, "<i4", 2, 4))
    if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE):
        raise ValueError(f"{p}: implausible flow size {w}x{h}")
    need = 12 + h * w * 2 * 4
    if len(data) < need:
        raise ValueError(f"{p}: truncated ({len(data)} bytes, a {w}x{h} flow needs {need})")
    return np.frombuffer(data, "<f4", h * w * 2, 12).reshape(h, w, 2).copy()


def write_flo(path: str | os.PathLike[str], flow: np.ndarray) -> Path:
    """Write an ``(H, W, 2)`` flow as a Middlebury ``.flo`` file (little-endian float32)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    p = Path(path)
    h, w = flow.shape[:2]
    with open(p, "wb") as fh:
        fh.write(np.array([FLO_MAGIC], "<f4").tobytes())
        fh.write(np.array([w, h], "<i4").tobytes())
        fh.write(np.ascontiguousarray(flow, dtype="<f4").tobytes())
    return p


def _grey(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 2:
        g = img
    elif img.ndim == 3 and img.shape[2] == 3:
        src = img if img.dtype == np.uint8 else img.astype(np.float32)
        g = cv2.cvtColor(np.ascontiguousarray(src), cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f"expected an (H, W) or (H, W, 3) image, got {img.shape}")
    if g.dtype != np.uint8:  # float frames are in [0, 1]
        g = np.clip(g.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(g)


class FlowEstimator:
    """Dense optical flow with OpenCV, optionally computed on downscaled frames.

    Args:
        method: ``"dis"`` (Dense Inverse Search) or ``"farneback"``.
        preset: DIS preset, ``"ultrafast"``, ``"fast"`` or ``"medium"``.
        max_side: frames whose longer side exceeds this are downscaled before estimation and the
            flow is upscaled (and its vectors rescaled) back; ``None``: full resolution. Flow is
            smooth, so half resolution loses little and costs a quarter.

    The DIS object is created once and reused (it keeps its buffers between calls), so one
    estimator should be used by one thread.
    """

    def __init__(self, method: str = "dis", preset: str = "medium", max_side: int | None = None) -> None:
        import cv2

        if method not in ("dis", "farneback"):
            raise ValueError(f"flow method must be 'dis' or 'farneback', got {method!r}")
        if method == "dis" and preset not in _DIS_PRESETS:
            raise ValueError(f"DIS preset must be one of {sorted(_DIS_PRESETS)}, got {preset!r}")
        if max_side is not None and max_side < 16:
            raise ValueError(f"max_side must be >= 16 pixels, got {max_side}")
        self.method, self.preset, self.max_side = method, preset, max_side
        self._dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset]) if method == "dis" else None

    def _scale(self, h: int, w: int) -> float:
        if self.max_side is None or max(h, w) <= self.max_side:
            return 1.0
        return self.max_side / max(h, w)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from ``a`` to ``b`` (RGB or grey, uint8 or float in [0, 1]), ``(H, W, 2)`` float32."""
        import cv2

        if a.shape[:2] != b.shape[:2]:
            raise ValueError(f"frames differ in size: {a.shape[:2]} vs {b.shape[:2]}")
        h, w = a.shape[:2]
        ga, gb = _grey(a), _grey(b)
        s = self._scale(h, w)
        if s != 1.0:
            size = (max(8, round(w * s)), max(8, round(h * s)))
            ga = cv2.resize(ga, size, interpolation=cv2.INTER_AREA)
            gb = cv2.resize(gb, size, interpolation=cv2.INTER_AREA)
        if self._dis is not None:
            flow = self._dis.calc(ga, gb, None)
        else:
            # pyramid scale 0.5, 3 levels, 15 px window, 3 iterations, poly_n 5, sigma 1.2
            flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        if s != 1.0:
            sy, sx = h / ga.shape[0], w / ga.shape[1]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= sx
            flow[..., 1] *= sy
        return np.ascontiguousarray(flow, dtype=np.float32)


def estimate_flow(a: np.ndarray, b: np.ndarray, method: str = "dis", preset: str = "medium",
                  max_side: int | None = None) -> np.ndarray:
    """One-off flow from ``a`` to ``b`` (see :class:`FlowEstimator`); reuse an estimator in loops."""
    return FlowEstimator(method, preset, max_side)(a, b)

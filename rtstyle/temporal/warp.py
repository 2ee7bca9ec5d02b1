"""Backward warping and occlusion masks.

With a flow ``f`` from frame ``a`` to frame ``b`` (``a(x) ~ b(x + f(x))``, see
:mod:`rtstyle.temporal.flow`), ``backward_warp(b, f)`` samples ``b`` at ``x + f(x)`` and so predicts
``a``. Pixels of ``a`` that are not visible in ``b`` (occluded, or moved out of the frame) have no
valid prediction and are masked out with :func:`fb_consistency_mask` / :func:`inside_mask`.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = [
    "backward_warp",
    "fb_consistency_mask",
    "fb_residual",
    "inside_mask",
    "photometric_error",
    "photometric_mask",
    "sample_grid",
]

log = logging.getLogger(__name__)


def _check_flow(flow: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    if shape is not None and tuple(flow.shape[:2]) != tuple(shape[:2]):
        raise ValueError(f"flow is {flow.shape[1]}x{flow.shape[0]} but the image is {shape[1]}x{shape[0]}")


def sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling coordinates ``(x + dx, y + dy)`` as two float32 maps for ``cv2.remap``."""
    _check_flow(flow)
    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    return np.ascontiguousarray(xs, dtype=np.float32), np.ascontiguousarray(ys, dtype=np.float32)


def backward_warp(image: np.ndarray, flow: np.ndarray, *, interpolation: str = "linear") -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (bilinear; out-of-frame samples replicate the border).

    Args:
        image: ``(H, W)`` or ``(H, W, C)``, any dtype OpenCV remaps (uint8, float32, ...).
        flow: ``(H, W, 2)`` flow from the target frame to ``image``'s frame.
        interpolation: ``"linear"``, ``"cubic"`` (sharper: repeated warping blurs less) or
            ``"nearest"``.

    Returns:
        The warped image, same shape and dtype as ``image``.
    """
    import cv2

    _check_flow(flow, image.shape)
    mx, my = sample_grid(flow)
    interp = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4,
              "nearest": cv2.INTER_NEAREST}.get(interpolation)
    if interp is None:
        raise ValueError(f"interpolation must be 'linear', 'cubic', 'lanczos' or 'nearest', got {interpolation!r}")
    src = np.ascontiguousarray(image)
    out = cv2.remap(src, mx, my, interp, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def inside_mask(flow: np.ndarray) -> np.ndarray:
    """``True`` where ``x + flow(x)`` lands inside the frame (bool ``(H, W)``)."""
    mx, my = sample_grid(flow)
    h, w = flow.shape[:2]
    return (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)


def fb_residual(flow_fw: np.ndarray, flow_bw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-backward residual: how far following ``flow_fw`` then ``flow_bw`` lands from the start.

    ``r(x) = |f_fw(x) + f_bw(x + f_fw(x))|`` in pixels: ~0 where both flows agree, large at occlusions
    and wherever the estimator is wrong (the flow's own error estimate).

    Args:
        flow_fw: flow from ``a`` to ``b``.
        flow_bw: flow from ``b`` to ``a``.

    Returns:
        ``(r2, scale2)``: float32 ``(H, W)`` maps on ``a``'s grid, the squared residual and
        ``|f_fw(x)|^2 + |f_bw(x + f_fw(x))|^2`` (the squared motion the tolerance grows with).
    """
    _check_flow(flow_fw)
    _check_flow(flow_bw, flow_fw.shape)
    fw = flow_fw.astype(np.float32, copy=False)
    bwt = backward_warp(flow_bw.astype(np.float32, copy=False), fw)
    # Channel-explicit squares: numpy reductions over a length-2 last axis are slow.
    u, v = fw[..., 0], fw[..., 1]
    bu, bv = bwt[..., 0], bwt[..., 1]
    r2 = (u + bu) ** 2 + (v + bv) ** 2
    return r2, u * u + v * v + bu * bu + bv * bv


def fb_consistency_mask(
    flow_fw: np.ndarray, flow_bw: np.ndarray, *, alpha: float = 0.01, beta: float = 0.5
) -> np.ndarray:
    """Forward-backward consistency check (Sundaram et al. 2010; Ruder et al. 2016).

    A pixel ``x`` of frame ``a`` is reliable (not occluded in ``b``) when following the forward
    flow and then the backward flow returns (almost) to ``x``:

    ``|f_fw(x) + f_bw(x + f_fw(x))|^2 < alpha * (|f_fw(x)|^2 + |f_bw(x + f_fw(x))|^2) + beta``

    The tolerance grows with the motion because flow errors do. Pixels whose forward target
    falls outside the frame are unreliable too.

    Args:
        flow_fw: flow from ``a`` to ``b``.
        flow_bw: flow from ``b`` to ``a``.

    Returns:
        bool ``(H, W)`` on ``a``'s grid, ``True`` = reliable.
    """
    r2, scale2 = fb_residual(flow_fw, flow_bw)
    return (r2 < alpha * scale2 + beta) & inside_mask(flow_fw)


def photometric_error(a: np.ndarray, b: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Mean absolute channel difference between ``a`` and ``b`` warped onto it by ``flow``.

    Args:
        a: target frame (uint8 or float in [0, 1]), ``(H, W)`` or ``(H, W, 3)``.
        b: source frame, same shape.
        flow: flow from ``a`` to ``b``.

    Returns:
        float32 ``(H, W)`` in [0, 1] units (brightness change the flow does not explain).
    """
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    import cv2

    if a.dtype == np.uint8:
        diff = cv2.absdiff(backward_warp(b, flow), a)
        scale = 1.0 / 255.0
    else:
        diff = cv2.absdiff(backward_warp(b.astype(np.float32), flow), a.astype(np.float32))
        scale = 1.0
    if diff.ndim == 3:
        w = np.full((1, diff.shape[2]), scale / diff.shape[2], np.float32)
        return cv2.transform(diff.astype(np.float32), w).reshape(a.shape[:2])
    return diff.astype(np.float32) * np.float32(scale)


def photometric_mask(a: np.ndarray, b: np.ndarray, flow: np.ndarray, *, threshold: float = 0.08) -> np.ndarray:
    """Cheap reliability check: ``b`` warped by ``flow`` should look like ``a``.

    Needs one flow instead of two, so the live preset uses it. It misses occlusions where the
    occluder happens to look like the background, which a forward-backward check catches.

    Args:
        a: target frame (uint8 or float in [0, 1]), ``(H, W)`` or ``(H, W, 3)``.
        b: source frame, same shape.
        flow: flow from ``a`` to ``b``.
        threshold: largest accepted mean absolute channel difference, in [0, 1] units.

    Returns:
        bool ``(H, W)``, ``True`` = reliable.
    """
    return (photometric_error(a, b, flow) < threshold) & inside_mask(flow)

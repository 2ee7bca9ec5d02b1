"""Temporal-consistency and style metrics for stylised video.

* :func:`warping_error` - Lai et al. (ECCV 2018, "Learning Blind Video Temporal Consistency"):
  how much a stylised frame differs from the next stylised frame warped back onto it with the
  *input* video's optical flow, over pixels visible in both frames.
* :func:`style_loss` - mean Gram style loss of the frames against a style image, with the VGG16
  loss network of :mod:`rtstyle.training` (so a stabiliser that trades style for smoothness shows).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .flow import FlowEstimator
from .warp import backward_warp, fb_consistency_mask, inside_mask

if TYPE_CHECKING:
    from ..nn.vgg import VGG16Features

__all__ = ["STYLE_TAPS", "pair_warping_errors", "style_loss", "warping_error"]

log = logging.getLogger(__name__)

#: VGG16 layers of the style loss (Johnson et al.'s choice): :data:`rtstyle.nn.vgg.STYLE_LAYERS`.
STYLE_TAPS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # == STYLE_LAYERS; no torch at import


def _as_float01(img: np.ndarray) -> np.ndarray:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"frames must be (H, W, 3) RGB, got {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return img.astype(np.float32)


def pair_warping_errors(
    stylized_frames: Sequence[np.ndarray],
    flows: Sequence[np.ndarray] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
    input_frames: Sequence[np.ndarray] | None = None,
    *,
    flow_method: str = "dis",
) -> list[float]:
    """Warping error of each consecutive pair ``(t-1, t)``; see :func:`warping_error`."""
    n = len(stylized_frames)
    if n < 2:
        raise ValueError(f"need at least 2 frames, got {n}")
    if flows is not None and len(flows) != n - 1:
        raise ValueError(f"need {n - 1} flows (frame t-1 -> t) for {n} frames, got {len(flows)}")
    if masks is not None and len(masks) != n - 1:
        raise ValueError(f"need {n - 1} masks for {n} frames, got {len(masks)}")
    if input_frames is not None and len(input_frames) != n:
        raise ValueError(f"got {n} stylised frames but {len(input_frames)} input frames")
    if flows is None and input_frames is None:
        raise ValueError("give either the flows or the input frames to estimate them from")
    estimator = FlowEstimator(flow_method, "medium") if flows is None else None

    errors: list[float] = []
    for t in range(1, n):
        prev, cur = _as_float01(stylized_frames[t - 1]), _as_float01(stylized_frames[t])
        if prev.shape != cur.shape:
            raise ValueError(f"stylised frames {t - 1} and {t} differ in size: {prev.shape} vs {cur.shape}")
        if flows is not None:
            fw = np.asarray(flows[t - 1], dtype=np.float32)
        else:
            assert estimator is not None and input_frames is not None
            fw = estimator(input_frames[t - 1], input_frames[t])
        if fw.shape[:2] != prev.shape[:2]:
            raise ValueError(f"flow {t - 1}->{t} is {fw.shape[1]}x{fw.shape[0]}, "
                             f"frames are {prev.shape[1]}x{prev.shape[0]}")
        mask = masks[t - 1] if masks is not None else None
        if mask is None:
            if estimator is not None and input_frames is not None:
                bw = estimator(input_frames[t], input_frames[t - 1])
                mask = fb_consistency_mask(fw, bw)
            else:
                # Given (ground-truth) flow without a mask: trusted everywhere, e.g. a synthetic,
                # occlusion-free clip; only pixels whose target leaves the frame lack a prediction.
                mask = inside_mask(fw)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != prev.shape[:2]:
            raise ValueError(f"mask {t - 1}->{t} has shape {mask.shape}, frames are {prev.shape[:2]}")
        mask = mask & inside_mask(fw)  # a target outside the frame has no prediction either way
        pred = backward_warp(cur, fw)
        sq = ((pred - prev) ** 2).sum(-1)  # squared L2 over RGB per pixel, as Lai et al.
        valid = int(mask.sum())
        if valid == 0:
            log.warning("pair %d->%d: no valid pixel; skipped", t - 1, t)
            continue
        errors.append(float(sq[mask].sum() / valid))
    return errors


def warping_error(
    stylized_frames: Sequence[np.ndarray],
    flows: Sequence[np.ndarray] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
    input_frames: Sequence[np.ndarray] | None = None,
    *,
    flow_method: str = "dis",
) -> float:
    """Warping error (Lai et al. 2018) of a stylised sequence.

    For each ``t >= 1`` the stylised frame ``t`` is sampled at ``x + flow(x)``, with ``flow`` the
    *input* video's flow from ``t-1`` to ``t``, which predicts stylised frame ``t-1``. The error is
    the squared L2 distance over RGB (values in [0, 1]) per pixel, averaged over the valid pixels of
    the pair, then over pairs. An output that moves with the scene scores ~0; flicker scores high.

    Args:
        stylized_frames: ``T`` frames ``(H, W, 3)``, uint8 or float in [0, 1].
        flows: ``T-1`` flows ``(H, W, 2)``, ``flows[t-1]`` from frame ``t-1`` to ``t`` (ground truth);
            ``None``: estimated from ``input_frames`` with ``flow_method`` (DIS medium at full size).
        masks: ``T-1`` bool masks, ``True`` = valid (not occluded, flow valid); an entry may be
            ``None``. A missing mask is a forward-backward check when the flow is estimated, and
            only the in-frame test when the flow is given (given flow is trusted as exact).
        input_frames: the ``T`` unstylised frames (needed when ``flows`` is ``None``).
        flow_method: ``"dis"`` or ``"farneback"``.

    Returns:
        The mean warping error (lower is more consistent).
    """
    errors = pair_warping_errors(stylized_frames, flows, masks, input_frames, flow_method=flow_method)
    if not errors:
        raise ValueError("no frame pair had a valid pixel")
    return float(np.mean(errors))


def _to_tensor(img: np.ndarray, short_side: int | None):
    import cv2
    import torch

    if short_side is not None and min(img.shape[:2]) != short_side:
        s = short_side / min(img.shape[:2])
        size = (max(16, round(img.shape[1] * s)), max(16, round(img.shape[0] * s)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return torch.from_numpy(_as_float01(img)).permute(2, 0, 1).unsqueeze(0).contiguous()


def style_loss(
    frames: Sequence[np.ndarray],
    style_image: np.ndarray,
    *,
    vgg: "VGG16Features | None" = None,
    short_side: int | None = 256,
    style_short_side: int | None = 256,
) -> float:
    """Mean Gram style loss of ``frames`` against ``style_image`` (VGG16 relu1_2..relu4_3).

    Args:
        frames: RGB frames ``(H, W, 3)``, uint8 or float in [0, 1].
        style_image: RGB style image.
        vgg: a loaded :class:`~rtstyle.nn.vgg.VGG16Features` returning :data:`STYLE_TAPS`;
            default: :func:`~rtstyle.nn.vgg.load_vgg16` (weights via ``$RTSTYLE_WEIGHTS``).
        short_side: frames are resized to this short side first (the VGG pass dominates the cost
            of an evaluation; Gram matrices are size-normalised). ``None``: native size.
        style_short_side: the same for the style image.

    Returns:
        The loss averaged over frames (the sum over layers of the Gram-matrix MSE).
    """
    import torch

    from ..nn.losses import gram, gram_style_loss
    from ..nn.vgg import load_vgg16

    if not frames:
        raise ValueError("no frames")
    net = vgg if vgg is not None else load_vgg16(taps=STYLE_TAPS)
    with torch.inference_mode():
        feats_s = net(_to_tensor(style_image, style_short_side))
        targets = {k: gram(v) for k, v in feats_s.items()}
        losses = [float(gram_style_loss(net(_to_tensor(f, short_side)), targets)) for f in frames]
    return float(np.mean(losses))

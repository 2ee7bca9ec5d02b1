"""Temporal-consistency evaluation: per-frame stylisation versus stabilised output.

:func:`evaluate_temporal` stylises a frame sequence once with a :class:`~rtstyle.stylizer.Stylizer`
(no temporal filter), runs each stabiliser over the same (input, stylised) pairs - exactly what the
Stylizer does with ``temporal=`` set - and reports warping error, style loss and time per frame of
both steps. Running the model once for all variants keeps evaluations affordable on a CPU.
"""
from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .flow import FlowEstimator
from .metrics import pair_warping_errors, style_loss
from .stabilize import make_temporal
from .warp import fb_consistency_mask

if TYPE_CHECKING:
    from ..stylizer import ModelLike, Stylizer, TemporalFilter
    from ..nn.vgg import VGG16Features

__all__ = ["FrameSource", "evaluate_temporal", "load_frames", "resize_flow"]

log = logging.getLogger(__name__)

FrameSource = Union[Sequence[np.ndarray], str, os.PathLike]


def _fit(w: int, h: int, max_size: tuple[int, int] | None) -> tuple[int, int]:
    if max_size is None:
        return w, h
    s = min(1.0, max_size[0] / w, max_size[1] / h)
    return max(16, round(w * s)), max(16, round(h * s))


def load_frames(source: FrameSource, max_frames: int | None = None, max_size: tuple[int, int] | None = None,
                start: int = 0) -> list[np.ndarray]:
    """RGB uint8 frames from a video file, a folder of images or a list of arrays.

    Args:
        source: a video path (decoded with PyAV), a folder of images (sorted by name), or frames.
        max_frames: keep at most this many frames.
        max_size: downscale (aspect kept, never up) to fit ``(width, height)``.
        start: skip this many frames first.
    """
    import cv2

    frames: list[np.ndarray] = []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            from ..io.images import list_images, read_image

            files = list_images(path)[start:]
            frames = [read_image(p) for p in files[: max_frames if max_frames is not None else None]]
        elif path.is_file():
            from ..io.video import VideoFileSource

            with VideoFileSource(path) as src:
                index = 0
                while max_frames is None or len(frames) < max_frames:
                    fr = src.read()
                    if fr is None:
                        break
                    if index >= start:
                        frames.append(fr.image)
                    index += 1
        else:
            raise FileNotFoundError(f"no such video or folder of frames: {path}")
    else:
        frames = [np.asarray(f) for f in list(source)[start:]]
        if max_frames is not None:
            frames = frames[:max_frames]
    if not frames:
        raise ValueError(f"no frames read from {source if isinstance(source, (str, os.PathLike)) else 'the sequence'}")
    for i, f in enumerate(frames):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3 or f.shape != frames[0].shape:
            raise ValueError(f"frame {i}: expected uint8 {frames[0].shape} RGB, got {f.dtype} {f.shape}")
    h, w = frames[0].shape[:2]
    tw, th = _fit(w, h, max_size)
    if (tw, th) != (w, h):
        frames = [cv2.resize(f, (tw, th), interpolation=cv2.INTER_AREA) for f in frames]
    return [np.ascontiguousarray(f) for f in frames]


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample a flow field to ``size = (width, height)``, rescaling its vectors."""
    import cv2

    h, w = flow.shape[:2]
    if (w, h) == tuple(size):
        return flow
    out = cv2.resize(flow, size, interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= size[0] / w
    out[..., 1] *= size[1] / h
    return out


def _stats(times: list[float]) -> dict[str, float]:
    # Median as the headline: evaluation machines are often shared, and the median shrugs off
    # the odd frame that lost its core to another job.
    if not times:
        return {"median_s": float("nan"), "mean_s": float("nan")}
    return {"median_s": float(statistics.median(times)), "mean_s": float(np.mean(times))}


def _style_array(img: np.ndarray | str | os.PathLike) -> np.ndarray:
    from ..stylizer import load_style_image

    return load_style_image(img)


def _subset(n: int, k: int | None) -> list[int]:
    if k is None or k >= n:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


def evaluate_temporal(
    frames_or_video: FrameSource,
    model: "ModelLike | Stylizer",
    style_image: np.ndarray | str | os.PathLike | None = None,
    temporal: "float | TemporalFilter | Mapping[str, TemporalFilter] | None" = None,
    flow: str = "dis",
    *,
    flows: Sequence[np.ndarray] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
    extra_flow: Sequence[str] = (),
    max_frames: int | None = None,
    max_size: tuple[int, int] | None = None,
    loss_style: np.ndarray | str | os.PathLike | None = None,
    loss_frames: int | None = None,
    loss_short_side: int | None = 256,
    vgg: "VGG16Features | None" = None,
    return_frames: bool = False,
) -> dict[str, Any]:
    """Stylise a sequence per frame and with stabilisation; measure consistency, style and cost.

    Args:
        frames_or_video: frames (RGB uint8), a video file or a folder of frames.
        model: registry name, checkpoint path or module (a :class:`Stylizer` is used as is, with
            its own temporal filter ignored).
        style_image: for models that need one.
        temporal: ``None``: per-frame only; a float: that strength with both presets (``"file"``
            and ``"live"``, see :func:`~rtstyle.temporal.stabilize.make_temporal`); a filter
            (reported as ``"stabilised"``); or a mapping ``label -> filter``.
        flow: flow for the warping error: ``"gt"`` (``flows`` required, ``masks`` optional: without
            them the flow is trusted everywhere inside the frame), ``"dis"`` or ``"farneback"``
            (estimated on the input frames at full size, forward-backward occlusion masks).
        flows: ``T-1`` flows ``t-1 -> t`` at the frames' original size (for ``flow="gt"``).
        masks: ``T-1`` valid-pixel masks matching ``flows`` (``None`` entries allowed).
        extra_flow: estimated flow methods to report the warping error with as well (a
            cross-check when the stabiliser's own flow estimator is also the metric's).
        max_frames: use the first ``max_frames`` frames.
        max_size: downscale frames (and flows/masks) to fit ``(width, height)``.
        loss_style: the style image of the style loss (default: ``style_image``); with neither,
            no style loss is computed.
        loss_frames: compute the style loss on this many evenly spaced frames (``None``: all).
        loss_short_side: frames are resized to this short side for the style loss.
        vgg: a loaded VGG16 loss network to reuse across calls.
        return_frames: include the output frames (``"outputs"``: label -> list of arrays).

    Returns:
        A JSON-serialisable dict (unless ``return_frames``)::

            {"frames": T, "size": [W, H], "model": ..., "flow": ...,
             "stylize": {"median_s", "mean_s"},
             "variants": {"per_frame": {"warping_error", "warping_error_by_flow", "style_loss",
                                        "pair_errors"},
                          "<label>": {... same ..., "stabilize": {"median_s", "mean_s"},
                                      "overhead": stabilise / stylise time,
                                      "warping_error_reduction": 1 - WE / WE_per_frame,
                                      "style_loss_change": SL / SL_per_frame - 1}}}
    """
    from ..stylizer import Stylizer

    if flow not in ("gt", "dis", "farneback"):
        raise ValueError(f"flow must be 'gt', 'dis' or 'farneback', got {flow!r}")
    if flow == "gt" and flows is None:
        raise ValueError("flow='gt' needs the ground-truth flows")
    raw = load_frames(frames_or_video, max_frames=max_frames)
    h0, w0 = raw[0].shape[:2]
    frames = load_frames(raw, max_size=max_size)
    h, w = frames[0].shape[:2]
    n = len(frames)
    if n < 2:
        raise ValueError(f"need at least 2 frames, got {n}")

    # ---- flows for the metric, shared by all variants
    gt_flows: list[np.ndarray] | None = None
    gt_masks: list[np.ndarray | None] | None = None
    if flow == "gt":
        assert flows is not None
        if len(flows) < n - 1:
            raise ValueError(f"need {n - 1} ground-truth flows for {n} frames, got {len(flows)}")
        gt_flows = [resize_flow(np.asarray(f, np.float32), (w, h)) for f in list(flows)[: n - 1]]
        if masks is not None:
            import cv2

            gt_masks = [
                None if m is None else cv2.resize(np.asarray(m, np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
                for m in list(masks)[: n - 1]
            ]
    metric_flows: dict[str, tuple[list[np.ndarray], list[np.ndarray | None] | None]] = {}
    if gt_flows is not None:
        metric_flows["gt"] = (gt_flows, gt_masks)
    for method in [flow, *extra_flow]:
        if method == "gt" or method in metric_flows:
            continue
        est = FlowEstimator(method, "medium")
        fws = [est(frames[t - 1], frames[t]) for t in range(1, n)]
        bws = [est(frames[t], frames[t - 1]) for t in range(1, n)]
        metric_flows[method] = (fws, [fb_consistency_mask(f, b) for f, b in zip(fws, bws)])

    # ---- stylise once
    if isinstance(model, Stylizer):
        st = model
        saved, st.temporal = st.temporal, None
    else:
        st = Stylizer(model, style_image=style_image, frame_size=(w, h))
        saved = None
    try:
        st.stylize(frames[0])  # warm-up at this size, not timed
        t_sty: list[float] = []
        per_frame: list[np.ndarray] = []
        for f in frames:
            t0 = time.perf_counter()
            per_frame.append(st.stylize(f))
            t_sty.append(time.perf_counter() - t0)
    finally:
        if isinstance(model, Stylizer):
            st.temporal = saved
        else:
            st.close()
    model_name = st.style_name

    # ---- stabilise the same outputs
    if temporal is None:
        filters: dict[str, TemporalFilter] = {}
    elif isinstance(temporal, (int, float)):
        filters = {"file": make_temporal(float(temporal), "file"), "live": make_temporal(float(temporal), "live")}
    elif isinstance(temporal, Mapping):
        filters = dict(temporal)
    else:
        filters = {"stabilised": temporal}
    outputs: dict[str, list[np.ndarray]] = {"per_frame": per_frame}
    t_stab: dict[str, list[float]] = {}
    for label, filt in filters.items():
        filt.reset()
        outs, times = [], []
        for f, y in zip(frames, per_frame):
            t0 = time.perf_counter()
            outs.append(filt.process(f, y))
            times.append(time.perf_counter() - t0)
        outputs[label], t_stab[label] = outs, times[1:]  # frame 0 has no history to warp

    # ---- metrics
    loss_img = loss_style if loss_style is not None else style_image
    style_arr: np.ndarray | None = None
    if loss_img is not None:
        style_arr = _style_array(loss_img)
        if vgg is None:
            from ..nn.vgg import STYLE_LAYERS, load_vgg16

            vgg = load_vgg16(taps=STYLE_LAYERS)
    idx = _subset(n, loss_frames)
    sty = _stats(t_sty)
    result: dict[str, Any] = {
        "frames": n, "size": [w, h], "source_size": [w0, h0], "model": model_name, "flow": flow,
        "stylize": sty, "variants": {},
    }
    base_we: float | None = None
    base_sl: float | None = None
    for label, outs in outputs.items():
        by_flow: dict[str, float] = {}
        pairs: list[float] = []
        for method, (fl, ms) in metric_flows.items():
            errs = pair_warping_errors(outs, fl, ms, frames)
            by_flow[method] = float(np.mean(errs))
            if method == flow:
                pairs = errs
        entry: dict[str, Any] = {"warping_error": by_flow[flow], "warping_error_by_flow": by_flow, "pair_errors": pairs}
        if style_arr is not None:
            entry["style_loss"] = style_loss([outs[i] for i in idx], style_arr, vgg=vgg, short_side=loss_short_side)
        if label == "per_frame":
            base_we, base_sl = entry["warping_error"], entry.get("style_loss")
        else:
            stab = _stats(t_stab[label])
            entry["stabilize"] = stab
            entry["overhead"] = stab["median_s"] / sty["median_s"] if sty["median_s"] > 0 else float("nan")
            if base_we:
                entry["warping_error_reduction"] = 1.0 - entry["warping_error"] / base_we
            if base_sl and "style_loss" in entry:
                entry["style_loss_change"] = entry["style_loss"] / base_sl - 1.0
        result["variants"][label] = entry
    if return_frames:
        result["outputs"] = outputs
        result["inputs"] = frames
    log.info("evaluated %s on %d frames %dx%d", model_name, n, w, h)
    return result

"""Temporal consistency for video: optical flow, warping, stabilisation and the warping-error metric.

* :mod:`.flow` - ``.flo`` I/O and OpenCV flow estimators (DIS, Farneback);
* :mod:`.warp` - backward warping, forward-backward and photometric occlusion masks;
* :mod:`.metrics` - warping error (Lai et al. 2018) and Gram style loss of a sequence;
* :mod:`.stabilize` - :class:`FlowStabilizer`, a :class:`rtstyle.stylizer.TemporalFilter` for any
  model, confidence-gated, and :func:`make_temporal` (``--temporal`` strength + a preset:
  ``"file"``, ``"file_light"``, ``"live"``);
* :mod:`.scenecut` - scene-cut detection that resets the carried state;
* :mod:`.presets` - mode presets (model + settings + stabiliser), e.g. ``"stable"``;
* :mod:`.evaluate` - per-frame versus stabilised evaluation (``tools/eval_temporal.py``).

OpenCV is imported on first use; :mod:`.evaluate` (which needs the Stylizer) on first access.
"""
from __future__ import annotations

from .flow import FlowEstimator, estimate_flow, read_flo, write_flo
from .metrics import pair_warping_errors, style_loss, warping_error
from .scenecut import SceneCutDetector, frame_difference
from .stabilize import PRESETS, FlowStabilizer, StabilizerConfig, make_temporal
from .warp import (
    backward_warp,
    fb_consistency_mask,
    fb_residual,
    inside_mask,
    photometric_error,
    photometric_mask,
)

__all__ = [
    "PRESETS",
    "FlowEstimator",
    "FlowStabilizer",
    "SceneCutDetector",
    "StabilizerConfig",
    "backward_warp",
    "estimate_flow",
    "evaluate_temporal",
    "fb_consistency_mask",
    "fb_residual",
    "frame_difference",
    "inside_mask",
    "make_temporal",
    "pair_warping_errors",
    "photometric_error",
    "photometric_mask",
    "read_flo",
    "style_loss",
    "warping_error",
    "write_flo",
]


def __getattr__(name: str):
    # evaluate pulls in the Stylizer (torch, backends); load it only when asked for.
    if name == "evaluate_temporal":
        from .evaluate import evaluate_temporal

        return evaluate_temporal
    raise AttributeError(f"module 'rtstyle.temporal' has no attribute {name!r}")

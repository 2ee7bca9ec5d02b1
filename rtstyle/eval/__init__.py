"""Evaluation: style metrics, training-loss tables and grids, for ``tools/`` and notebooks.

* **Style metrics** (:class:`QualityMeter`, :func:`summarise`): the AdaIN mean/std and Gram style
  metrics and a content metric, measured with the VGG16 (:mod:`rtstyle.quality`).
* **Loss tables** (:class:`TrainingLoss`, :func:`loss_table`, :func:`style_identification`,
  :func:`markdown_table`, :func:`load_for_eval`): outputs of models run through the :class:`~rtstyle.Stylizer`, scored with
  the perceptual loss the families were trained with (weights from the training configs).
* **Grids** (:func:`make_grid`, :func:`save_grid`): the before/after grids of ``rtstyle grid``.

Everything loads lazily: ``import rtstyle.eval`` pulls in neither torch nor OpenCV.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..grid import make_grid, save_grid
    from ..quality import METRICS, ImageStats, QualityMeter, summarise
    from .checkpoints import load_for_eval
    from .losses import (LossWeights, ModelEntry, StyleIdentification, TrainingLoss, loss_table, markdown_table,
                         parse_model_entry, read_photos, style_identification)

__all__ = [
    "METRICS",
    "ImageStats",
    "LossWeights",
    "ModelEntry",
    "QualityMeter",
    "StyleIdentification",
    "TrainingLoss",
    "load_for_eval",
    "loss_table",
    "make_grid",
    "markdown_table",
    "parse_model_entry",
    "read_photos",
    "save_grid",
    "style_identification",
    "summarise",
]

_FROM = {
    "METRICS": "..quality", "ImageStats": "..quality", "QualityMeter": "..quality", "summarise": "..quality",
    "make_grid": "..grid", "save_grid": "..grid",
    "LossWeights": ".losses", "ModelEntry": ".losses", "StyleIdentification": ".losses", "TrainingLoss": ".losses",
    "loss_table": ".losses", "markdown_table": ".losses", "parse_model_entry": ".losses", "read_photos": ".losses",
    "style_identification": ".losses", "load_for_eval": ".checkpoints",
}


def __getattr__(name: str) -> Any:
    mod = _FROM.get(name)
    if mod is None:
        raise AttributeError(f"module 'rtstyle.eval' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(mod, __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Batch stylisation on a Ray cluster: many files, or one long file in keyframe chunks.

``rtstyle stylize INPUT -o OUT --ray [ADDRESS]`` and :func:`run_batch` run the single-process
frame path on Ray workers: one task per file, or one per chunk of a long file (joined without
re-encoding, every frame at its input timestamp, the audio copied once). Ray's task retries
re-run a chunk whose worker died; complete outputs are skipped on a rerun.

Ray is optional (``pip install 'rtstyle[ray]'``) and imported only when a job starts; this package
imports without it, and without torch until :func:`run_batch` or a recipe is used.
"""
from __future__ import annotations

from typing import Any

from .cluster import INSTALL_HINT, connect
from .errors import BatchError, RayUnavailableError

__all__ = ["INSTALL_HINT", "BatchError", "BatchOptions", "ProgressSnapshot", "RayUnavailableError", "StylizerRecipe",
           "connect", "plain_stylizer", "run_batch"]

_LAZY = {"BatchOptions": "config", "StylizerRecipe": "config", "plain_stylizer": "config", "run_batch": "job",
         "ProgressSnapshot": "progress"}


def __getattr__(name: str) -> Any:
    # the job driver pulls in the pipeline (torch); load it when asked for
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'rtstyle.distributed' has no attribute {name!r}")

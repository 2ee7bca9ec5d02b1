"""The package's default implementations of interfaces that lower layers declare.

A lower layer never imports a higher one (see ``docs/ARCHITECTURE.md``): ``rtstyle.models``
declares :class:`~rtstyle.models._graph_runtime.GraphRuntime` ("run this ONNX/IR file", "compile
this module") and ``rtstyle.backends`` provides it. This module, above both and free of heavy
imports, names the provider, so that a script using models alone (``create_model(...)`` then
``encode_style``) gets the same OpenVINO/onnxruntime path as the Stylizer instead of a silent eager
fallback. Set :data:`GRAPH_RUNTIME_PROVIDER` to ``None`` to run without one (tests do).
"""
from __future__ import annotations

import importlib
import logging

__all__ = ["GRAPH_RUNTIME_PROVIDER", "load_graph_runtime"]

log = logging.getLogger(__name__)

#: Module whose import registers the package's graph runtime (``None``: no default).
GRAPH_RUNTIME_PROVIDER: str | None = "rtstyle.backends"


def load_graph_runtime() -> bool:
    """Import :data:`GRAPH_RUNTIME_PROVIDER` (it registers itself); ``False`` when there is none or
    it cannot be imported (the reason is logged)."""
    if GRAPH_RUNTIME_PROVIDER is None:
        return False
    try:
        importlib.import_module(GRAPH_RUNTIME_PROVIDER)
    except ImportError as e:
        log.warning("graph runtime %s could not be loaded: %s", GRAPH_RUNTIME_PROVIDER, e)
        return False
    return True

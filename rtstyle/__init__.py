"""rtstyle: real-time neural style transfer for webcams, video files and streams."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .frame import Frame
    from .models import ModelSpec, create_model, list_models
    from .pipeline import Pipeline
    from .stylizer import Stylizer

__version__ = "0.1.0"

__all__ = ["Frame", "ModelSpec", "Pipeline", "Stylizer", "create_model", "list_models", "open_sink", "open_source", "__version__"]


def __getattr__(name: str):
    # Heavy pieces (torch, PyAV, OpenCV, threads) load on first use: `rtstyle --help` and argument
    # errors need none of them.
    if name == "Frame":
        from .frame import Frame

        return Frame
    if name in ("ModelSpec", "create_model", "list_models"):
        from . import models

        return getattr(models, name)
    if name == "Stylizer":
        from .stylizer import Stylizer

        return Stylizer
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    if name in ("open_source", "open_sink"):
        from . import io

        return getattr(io, name)
    raise AttributeError(f"module 'rtstyle' has no attribute {name!r}")

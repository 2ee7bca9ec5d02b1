"""Errors shared by the lowest layers (:mod:`rtstyle.image` and :mod:`rtstyle.io`).

They live here, below both, so that :mod:`rtstyle.image` can raise a :class:`SourceError` without
importing the I/O package that is built on it. :mod:`rtstyle.io` re-exports them.
"""
from __future__ import annotations

__all__ = ["IOErrorBase", "ImageReadError", "SinkError", "SourceError"]


class IOErrorBase(RuntimeError):
    """Base of source/sink errors; the message is one line meant for the user."""


class SourceError(IOErrorBase):
    """A source could not be opened or read (missing file, no camera, corrupt stream)."""


class SinkError(IOErrorBase):
    """A sink could not be opened or written (unwritable path, no virtual camera device)."""


class ImageReadError(SourceError, ValueError):
    """An image file is missing or cannot be decoded; the message names the path.

    A :class:`SourceError` for the I/O layer and a :class:`ValueError` for callers that treat a bad
    image as a bad argument (a style image, a training folder).
    """

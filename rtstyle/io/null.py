"""A sink that discards frames (benchmarks, dry runs)."""
from __future__ import annotations

from ..frame import Frame
from .base import Sink

__all__ = ["NullSink"]


class NullSink(Sink):
    """Counts frames and keeps the last one; writes nothing."""

    def __init__(self, lossless: bool = True) -> None:
        self.lossless = lossless
        self.count = 0
        self.last: Frame | None = None
        self.closed = False

    def write(self, frame: Frame) -> None:
        self.count += 1
        self.last = frame

    def close(self) -> None:
        self.closed = True

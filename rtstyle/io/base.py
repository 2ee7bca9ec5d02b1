"""Source and sink interfaces.

Sources and sinks are context managers. ``close()`` is idempotent and is called exactly once by
``__exit__``. Sources return ``None`` from ``read()`` at end of stream. Sinks open lazily on the
first ``write()`` (they learn the frame size from it) unless told the size up front.
"""
from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import IOErrorBase, SinkError, SourceError
from ..frame import Frame

__all__ = [
    "Controls",
    "IOErrorBase",
    "LatestFrameSlot",
    "Sink",
    "SinkError",
    "Source",
    "SourceError",
    "SourceInfo",
]


@dataclass(frozen=True)
class SourceInfo:
    """What a source knows about its stream before the first frame.

    Attributes:
        width / height: frame size in pixels (0 when unknown until the first frame).
        fps: nominal frame rate (0.0 when unknown).
        live: True for cameras, network streams and the synthetic live source: the pipeline then
            keeps only the latest frame and drops stale ones. False for files: nothing is dropped.
        frame_count: number of frames when known (files), else None.
        path: file path or URL when there is one (sinks use it to copy the audio stream).
        has_audio: whether the input has an audio stream.
        extra: anything else (codec name, time base, ...).
    """

    width: int = 0
    height: int = 0
    fps: float = 0.0
    live: bool = False
    frame_count: int | None = None
    path: str | None = None
    has_audio: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Controls(Protocol):
    """What interactive sinks (the preview window) may ask the running pipeline to do."""

    def next_style(self) -> None: ...
    def previous_style(self) -> None: ...
    def toggle_pause(self) -> None: ...
    def request_stop(self) -> None: ...
    def brush_smaller(self) -> None: ...
    def brush_larger(self) -> None: ...


class Source(abc.ABC):
    """A stream of :class:`Frame` s (RGB uint8)."""

    info: SourceInfo

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """Next frame, or ``None`` at end of stream. Live sources block until a frame arrives."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device/file. Safe to call more than once."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self):
        while True:
            f = self.read()
            if f is None:
                return
            yield f


class Sink(abc.ABC):
    """A consumer of stylised :class:`Frame` s."""

    #: True when the sink must see every frame (files); False when it may skip frames (displays).
    lossless: bool = True
    #: True when the sink has a GUI that one thread must own: the pipeline then calls :meth:`pump`
    #: on the thread that runs it (``Pipeline.run`` / ``wait``, the main thread), not in a stage.
    needs_gui_thread: bool = False

    @abc.abstractmethod
    def write(self, frame: Frame) -> None:
        """Consume one frame. Raises :class:`SinkError` on failure."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and finalise (e.g. rename the temporary output file). Safe to call twice."""

    def abort(self) -> None:
        """Stop without finalising: a file sink deletes its partial output. Default: close()."""
        self.close()

    def bind(self, controls: Controls) -> None:
        """Give interactive sinks a handle on the pipeline. Default: ignored."""

    def poll(self) -> None:
        """Called from the writer thread every ~0.1 s while no frames flow (e.g. when paused), for
        sinks that must do something then (keep a connection alive, pump a stage-owned UI).
        Default: nothing. A GUI that one thread must own uses :meth:`pump` instead."""

    def pump(self, timeout: float = 0.02) -> None:
        """Drive the GUI from the thread that owns it: draw, handle events, waiting at most
        ``timeout`` seconds. Called only on sinks with :attr:`needs_gui_thread`. Default: nothing."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None and exc_type is not KeyboardInterrupt:
            self.abort()
        else:
            self.close()


class LatestFrameSlot:
    """A one-frame mailbox for live sources: the producer overwrites, the consumer takes the newest.

    Latency never builds up behind a slow consumer; every overwritten frame is counted in
    :attr:`dropped`. The producer ends the stream with :meth:`finish` (optionally with an error
    that :meth:`get` re-raises once the last frame has been taken).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._finished = False
        self._error: BaseException | None = None
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        """Offer a new frame, replacing (and counting as dropped) one nobody took yet."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """Mark the end of the stream; ``error`` is raised by :meth:`get` after the last frame."""
        with self._cond:
            self._finished = True
            if error is not None and self._error is None:
                self._error = error
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        return self._finished

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, waiting for one; ``None`` at end of stream.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._frame is None and not self._finished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no frame arrived in time")
                self._cond.wait(remaining)
            frame, self._frame = self._frame, None
            if frame is None and self._error is not None:
                raise self._error
            return frame

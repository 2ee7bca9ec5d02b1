"""What every PyAV user in :mod:`rtstyle.io` shares: the import with its install hint, one-line
error reasons, exact frame rates, and the H.264/VP9 encode path (stream setup, frame timestamps,
RGB frames padded to the even size yuv420p needs).

Used by the video file sink (:mod:`.video`), the network sink (:mod:`.stream`) and the chunked
batch writer (:mod:`.chunks`), so a fix to how frames are encoded lands in all of them.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["TickClock", "add_video_stream", "as_fraction", "import_av", "rate", "reason", "video_frame"]


def import_av(error: type[Exception]) -> Any:
    """PyAV, or ``error`` with the install hint (it is optional on inference-only machines)."""
    try:
        import av
    except ImportError:
        raise error("video files and streams need PyAV: pip install av") from None
    return av


def reason(exc: BaseException) -> str:
    """One line out of a PyAV/OS error, without the file name FFmpeg appends."""
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())


def as_fraction(value: Fraction | float | int | str) -> Fraction:
    """A time base as an exact fraction (floats limited to a millionth)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(value).limit_denominator(1_000_000)
    return Fraction(value)


def rate(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction (29.97002997 -> 30000/1001)."""
    return fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(100_000)


def add_video_stream(container: Any, codec: str, *, fps: float, time_base: Fraction, width: int, height: int,
                     options: dict[str, str]) -> Any:
    """Add a yuv420p video stream for ``width x height`` frames (rounded up to even sizes)."""
    stream = container.add_stream(codec, rate=rate(fps), time_base=time_base, width=width + width % 2,
                                  height=height + height % 2, options=options)
    stream.pix_fmt = "yuv420p"
    stream.time_base = time_base
    return stream


def video_frame(image: np.ndarray, pts: int, time_base: Fraction) -> Any:
    """An RGB ``uint8`` image as a PyAV frame at ``pts``; odd sizes padded (edge) to even ones."""
    import av

    h, w = image.shape[:2]
    if h % 2 or w % 2:
        image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    vf = av.VideoFrame.from_ndarray(image, format="rgb24")
    vf.pts = pts
    vf.time_base = time_base
    return vf


class TickClock:
    """Seconds -> strictly increasing timestamps in ``time_base`` units (a duplicate time, or one
    finer than the time base, moves on by one tick: muxers refuse timestamps that do not grow).

    Args:
        time_base: the output stream's time base.
        relative: count from the first time seen (a live stream starts at zero).
    """

    def __init__(self, time_base: Fraction, *, relative: bool = False) -> None:
        self.time_base = time_base
        self.relative = relative
        self.reset()

    def reset(self) -> None:
        """Start again (a new stream)."""
        self._origin: float | None = None
        self._last: int | None = None

    def __call__(self, seconds: float) -> int:
        if self.relative:
            if self._origin is None:
                self._origin = seconds
            seconds = seconds - self._origin
        ticks = round(Fraction(seconds) / self.time_base)
        if self._last is not None and ticks <= self._last:
            ticks = self._last + 1
        self._last = ticks
        return ticks

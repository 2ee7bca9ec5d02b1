"""Live network output through PyAV: :class:`StreamSink` (UDP/MPEG-TS, RTMP/FLV, SRT)."""
from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..frame import Frame
from .base import Sink, SinkError

__all__ = ["StreamSink"]

log = logging.getLogger(__name__)

# URL scheme -> container format.
_FORMATS = {"udp": "mpegts", "srt": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts", "rtmp": "flv", "rtmps": "flv"}
# Output stream time base per container (what the muxer uses natively).
_TIME_BASES = {"mpegts": Fraction(1, 90_000), "rtp_mpegts": Fraction(1, 90_000), "flv": Fraction(1, 1000)}


def _reason(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())


class StreamSink(Sink):
    """Encode frames with low-latency H.264 and send them to a network address.

    ``udp://host:port`` (and ``srt://``, ``tcp://``) carry MPEG-TS, ``rtmp://`` carries FLV (for
    YouTube/Twitch ingest or a local nginx-rtmp/MediaMTX server). Timestamps come from
    ``frame.pts`` (relative to the first frame) or, for frames without one, from the capture
    clock. The sink sends frames as they come: stream a file at its own pace with
    ``VideoFileSource(path, realtime=True)``.

    Args:
        url: destination URL.
        fps: nominal frame rate (sets the keyframe interval and rate control).
        format: container format (default from the URL scheme).
        codec: video encoder.
        bitrate: target bitrate in bits/s (default: constant quality, ``crf`` 23).
        gop: keyframe interval in frames (default: ``fps / 2``, so a late viewer starts fast).

    Raises:
        SinkError: the URL scheme is unknown, or the destination cannot be opened or written.
    """

    lossless = False

    def __init__(
        self,
        url: str,
        *,
        fps: float,
        format: str | None = None,
        codec: str = "libx264",
        bitrate: int | None = None,
        gop: int | None = None,
    ) -> None:
        from .video import _import_av

        _import_av(SinkError)  # fail here, not at the first frame
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        fmt = format or _FORMATS.get(scheme)
        if fmt is None:
            known = ", ".join(f"{k}://" for k in _FORMATS)
            raise SinkError(f"cannot stream to {url}: unknown scheme (use {known} or pass format=)")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        if scheme == "udp" and "pkt_size" not in dict(parse_qsl(parts.query)):
            # 7 TS packets per datagram: fits a 1500-byte MTU without IP fragmentation.
            url = url + ("&" if parts.query else "?") + "pkt_size=1316"
        self.url = url
        self.format = fmt
        self.fps = float(fps)
        self.codec = codec
        self.bitrate = bitrate
        self.gop = gop or max(1, round(self.fps / 2))
        self.time_base = _TIME_BASES.get(fmt, Fraction(1, 90_000))
        self.frames_sent = 0
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._origin: float | None = None
        self._last_ticks: int | None = None
        self._closed = False

    def _open(self, frame: Frame) -> None:
        import av

        h, w = frame.height, frame.width
        options = {"g": str(self.gop), "bf": "0"}
        if self.codec == "libx264":
            options.update({"preset": "ultrafast", "tune": "zerolatency"})
            if self.bitrate:
                options.update({"maxrate": str(self.bitrate), "bufsize": str(self.bitrate)})
            else:
                options["crf"] = "23"
        try:
            self._container = av.open(self.url, mode="w", format=self.format)
            stream = self._container.add_stream(
                self.codec,
                rate=Fraction(self.fps).limit_denominator(100_000),
                time_base=self.time_base,
                width=w + w % 2,
                height=h + h % 2,
                options=options,
            )
            stream.pix_fmt = "yuv420p"
            if self.bitrate:
                stream.bit_rate = int(self.bitrate)
            self._stream = stream
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._close_container()
            raise SinkError(f"cannot stream to {self.url}: {_reason(exc)}") from None
        self._size = (h, w)
        log.info("streaming %dx%d to %s (%s)", w, h, self.url, self.format)

    def _ticks(self, frame: Frame) -> int:
        seconds = frame.pts if frame.pts is not None else frame.captured_at
        if self._origin is None:
            self._origin = seconds
        ticks = round((seconds - self._origin) / self.time_base)
        if self._last_ticks is not None and ticks <= self._last_ticks:
            ticks = self._last_ticks + 1
        self._last_ticks = ticks
        return ticks

    def write(self, frame: Frame) -> None:
        """Encode and send one frame (connecting on the first).

        Raises:
            SinkError: the connection failed or the frame size changed mid-stream.
        """
        import av

        if self._closed:
            raise SinkError(f"cannot stream to {self.url}: the sink is closed")
        if self._container is None:
            self._open(frame)
        if (frame.height, frame.width) != self._size:
            h, w = self._size or (0, 0)
            got = f"{frame.width}x{frame.height}"
            raise SinkError(f"cannot stream to {self.url}: frame size changed from {w}x{h} to {got}")
        image = frame.image
        if frame.height % 2 or frame.width % 2:
            image = np.pad(image, ((0, frame.height % 2), (0, frame.width % 2), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(image, format="rgb24")
        vf.pts = self._ticks(frame)
        vf.time_base = self.time_base
        try:
            self._container.mux(self._stream.encode(vf))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise SinkError(f"cannot stream to {self.url}: {_reason(exc)}") from None
        self.frames_sent += 1

    def close(self) -> None:
        """Flush the encoder and close the connection. Safe to call more than once."""
        import av

        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.warning("%s: flushing the stream failed: %s", self.url, _reason(exc))
        finally:
            self._close_container()
        log.info("stream to %s ended after %d frames", self.url, self.frames_sent)

    def abort(self) -> None:
        """Stop streaming without flushing (there is no partial file to remove)."""
        if self._closed:
            return
        self._closed = True
        self._close_container()

    def _close_container(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # the peer may be gone; nothing left to save
                log.debug("closing %s: %s", self.url, exc)
            self._container = None

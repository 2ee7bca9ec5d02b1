"""Live network output through PyAV: :class:`StreamSink` (UDP/MPEG-TS, RTMP/FLV, SRT)."""
from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..frame import Frame
from ._av import TickClock, add_video_stream, import_av, video_frame
from ._av import reason as _reason
from .base import Sink, SinkError

__all__ = ["StreamSink"]

log = logging.getLogger(__name__)

# URL scheme -> container format.
_FORMATS = {"udp": "mpegts", "srt": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts", "rtmp": "flv", "rtmps": "flv"}
# Output stream time base per container (what the muxer uses natively).
_TIME_BASES = {"mpegts": Fraction(1, 90_000), "rtp_mpegts": Fraction(1, 90_000), "flv": Fraction(1, 1000)}


class StreamSink(Sink):
    """Encode frames with low-latency H.264 and send them to a network address.

    ``udp://host:port`` (and ``srt://``, ``tcp://``) carry MPEG-TS, ``rtmp://`` carries FLV (for
    YouTube/Twitch ingest or a local nginx-rtmp/MediaMTX server). Timestamps come from
    ``frame.pts`` (relative to the first frame) or, for frames without one, from the capture
    clock. The sink sends frames as they come: stream a file at its own pace with
    ``VideoFileSource(path, realtime=True)``.

    When an established connection breaks (the server restarts: "Broken pipe"), the sink does
    what OBS does: it reconnects in the background, first after ``backoff`` seconds, then
    doubling up to ``backoff_max``, and starts a new stream (a fresh encoder, so it opens on a
    keyframe, timestamps from zero). Frames written meanwhile are dropped and counted in
    :attr:`frames_dropped`, never queued: :meth:`write` does not block on the network during an
    outage. The first connection is not retried: a wrong URL or a server that is not up is
    reported at once.

    Args:
        url: destination URL.
        fps: nominal frame rate (sets the keyframe interval and rate control).
        format: container format (default from the URL scheme).
        codec: video encoder.
        bitrate: target bitrate in bits/s (default: constant quality, ``crf`` 23).
        gop: keyframe interval in frames (default: ``fps / 2``, so a late viewer starts fast).
        reconnect: reconnect after a broken connection (False: raise :class:`SinkError`).
        backoff / backoff_max: first and longest wait between reconnect attempts, in seconds.

    Raises:
        SinkError: the URL scheme is unknown, or the destination cannot be opened or written
            (after a break only with ``reconnect=False``).
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
        reconnect: bool = True,
        backoff: float = 0.5,
        backoff_max: float = 10.0,
    ) -> None:
        import_av(SinkError)  # fail here, not at the first frame
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        fmt = format or _FORMATS.get(scheme)
        if fmt is None:
            known = ", ".join(f"{k}://" for k in _FORMATS)
            raise SinkError(f"cannot stream to {url}: unknown scheme (use {known} or pass format=)")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        if backoff <= 0 or backoff_max <= 0:
            raise ValueError(f"backoff and backoff_max must be > 0 seconds, got {backoff}, {backoff_max}")
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
        self.reconnect = reconnect
        self.backoff = float(backoff)
        self.backoff_max = max(float(backoff_max), self.backoff)
        self.frames_sent = 0
        #: frames written while the connection was down (dropped, not queued)
        self.frames_dropped = 0
        #: connections re-established after a break
        self.reconnects = 0
        self.outages = 0
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._ticks = TickClock(self.time_base, relative=True)
        self._closed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._down_since: float | None = None  # set while reconnecting
        self._outage_done = 0.0
        self._newest: Frame | None = None  # what the reconnect thread opens the new stream with
        self._ready: tuple[Any, Any] | None = None  # a new connection, handed over by that thread
        self._retry: threading.Thread | None = None

    # -- counters ---------------------------------------------------------------------------
    @property
    def outage_s(self) -> float:
        """Seconds the connection was down (reconnecting), the current outage included."""
        with self._lock:
            ongoing = time.perf_counter() - self._down_since if self._down_since is not None else 0.0
            return self._outage_done + ongoing

    def recovery_stats(self) -> dict[str, Any]:
        """``sink`` (the URL), ``reconnects``, ``outage_s``, ``outages`` and ``frames_dropped``."""
        return dict(sink=self.url, reconnects=self.reconnects, outage_s=round(self.outage_s, 3), outages=self.outages,
                    frames_dropped=self.frames_dropped)

    # -- connection -------------------------------------------------------------------------
    def _connect(self, frame: Frame) -> tuple[Any, Any]:
        """A new container and stream with ``frame`` sent as its first frame.

        PyAV connects at the first packet muxed, not at ``av.open``: sending one frame is what
        proves the server is there. Raises :class:`SinkError` when it is not.
        """
        import av

        h, w = self._size or (frame.height, frame.width)
        options = {"g": str(self.gop), "bf": "0"}
        if self.codec == "libx264":
            options.update({"preset": "ultrafast", "tune": "zerolatency"})
            if self.bitrate:
                options.update({"maxrate": str(self.bitrate), "bufsize": str(self.bitrate)})
            else:
                options["crf"] = "23"
        container = None
        try:
            # flush_packets: hand every packet to the network at once (the 32 KiB I/O buffer would
            # otherwise hold a low-bitrate TCP/SRT stream back by seconds and hide a broken connection)
            container = av.open(self.url, mode="w", format=self.format, container_options={"flush_packets": "1"})
            stream = add_video_stream(container, self.codec, fps=self.fps, time_base=self.time_base, width=w, height=h,
                                      options=options)
            if self.bitrate:
                stream.bit_rate = int(self.bitrate)
            self._ticks.reset()  # a new stream starts at time zero
            container.mux(stream.encode(self._video_frame(frame)))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            _close_quietly(container, self.url)
            raise SinkError(f"cannot stream to {self.url}: {_reason(exc)}") from None
        self.frames_sent += 1
        return container, stream

    def _video_frame(self, frame: Frame) -> Any:
        return video_frame(frame.image, self._ticks(frame.pts if frame.pts is not None else frame.captured_at),
                           self.time_base)

    def _lost(self, reason: str) -> None:
        """The connection broke: drop it and reconnect in the background."""
        log.warning("%s: connection lost (%s); reconnecting", self.url, reason)
        _close_quietly(self._container, self.url)
        self._container = self._stream = None
        with self._lock:
            self._down_since = time.perf_counter()
            self.outages += 1
        self._retry = threading.Thread(target=self._reconnect_loop, name="rtstyle-stream-reconnect", daemon=True)
        self._retry.start()

    def _reconnect_loop(self) -> None:
        delay = self.backoff
        while not self._stop.wait(delay):
            frame = self._newest
            if frame is None:
                continue
            try:
                ready = self._connect(frame)
            except SinkError as exc:
                log.info("%s (next try in %.2g s)", exc, min(2 * delay, self.backoff_max))
                delay = min(2 * delay, self.backoff_max)
                continue
            with self._lock:
                if self._stop.is_set():
                    _close_quietly(ready[0], self.url)
                else:
                    self._ready = ready
            return

    def _resume(self) -> bool:
        """Take over a connection the reconnect thread made; False while there is none yet."""
        with self._lock:
            ready, self._ready = self._ready, None
            if ready is None:
                return False
            self._container, self._stream = ready
            if self._down_since is not None:
                self._outage_done += time.perf_counter() - self._down_since
            lost, self._down_since = self._outage_done, None
            self.reconnects += 1
        log.warning("%s: reconnected (reconnect %d, %.1f s down in all)", self.url, self.reconnects, lost)
        return True

    # -- Sink -------------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        """Encode and send one frame (connecting on the first; dropping it while reconnecting).

        Raises:
            SinkError: the first connection failed, the frame size changed mid-stream, or the
                connection broke and ``reconnect`` is off.
        """
        import av

        if self._closed:
            raise SinkError(f"cannot stream to {self.url}: the sink is closed")
        if self._size is None:
            self._container, self._stream = self._connect(frame)
            self._size = (frame.height, frame.width)
            log.info("streaming %dx%d to %s (%s)", frame.width, frame.height, self.url, self.format)
            return
        if (frame.height, frame.width) != self._size:
            h, w = self._size
            got = f"{frame.width}x{frame.height}"
            raise SinkError(f"cannot stream to {self.url}: frame size changed from {w}x{h} to {got}")
        if self._container is None:  # reconnecting
            self._newest = frame
            if not self._resume():
                self.frames_dropped += 1
                return
        try:
            self._container.mux(self._stream.encode(self._video_frame(frame)))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            if not self.reconnect:
                raise SinkError(f"cannot stream to {self.url}: {_reason(exc)}") from None
            self.frames_dropped += 1
            self._newest = frame
            self._lost(_reason(exc))
            return
        self.frames_sent += 1

    def close(self) -> None:
        """Flush the encoder and close the connection. Safe to call more than once."""
        import av

        if self._closed:
            return
        self._closed = True
        self._stop_retrying()
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.warning("%s: flushing the stream failed: %s", self.url, _reason(exc))
        finally:
            self._close_container()
        log.info("stream to %s ended after %d frames (%d dropped while reconnecting)", self.url,
                 self.frames_sent, self.frames_dropped)

    def abort(self) -> None:
        """Stop streaming without flushing (there is no partial file to remove)."""
        if self._closed:
            return
        self._closed = True
        self._stop_retrying()
        self._close_container()

    def _stop_retrying(self) -> None:
        self._stop.set()
        if self._retry is not None:
            self._retry.join(timeout=5.0)
            if self._retry.is_alive():  # stuck connecting inside FFmpeg: a daemon thread, left behind
                log.warning("%s: a reconnect attempt did not finish", self.url)
        with self._lock:
            ready, self._ready = self._ready, None
            if self._down_since is not None:
                self._outage_done += time.perf_counter() - self._down_since
                self._down_since = None
        if ready is not None:
            _close_quietly(ready[0], self.url)

    def _close_container(self) -> None:
        _close_quietly(self._container, self.url)
        self._container = None


def _close_quietly(container: Any, url: str) -> None:
    if container is not None:
        try:
            container.close()
        except Exception as exc:  # the peer may be gone; nothing left to save
            log.debug("closing %s: %s", url, exc)

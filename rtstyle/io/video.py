"""Video files and network streams through PyAV: :class:`VideoFileSource` and :class:`VideoFileSink`.

PyAV is imported inside the classes so that ``import rtstyle.io`` works on machines without it.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..frame import Frame
from ..image import VIDEO_EXTENSIONS, VIDEO_MUXERS
from ._av import TickClock, add_video_stream, as_fraction, import_av, video_frame
from ._av import rate as _rate
from ._av import reason as _reason
from .base import LatestFrameSlot, Sink, SinkError, Source, SourceError, SourceInfo
from .safety import check_output, check_writable, temp_path

__all__ = ["VIDEO_EXTENSIONS", "VideoFileSink", "VideoFileSource", "is_url"]

log = logging.getLogger(__name__)

_URL_SCHEMES = ("udp", "rtp", "rtmp", "rtmps", "rtsp", "rtsps", "http", "https", "srt", "tcp")

# A sentinel the decode thread puts after the last frame of a file.
_END = object()
# Damaged places of a file listed in VideoFileSource.damage (the rest are only counted).
_MAX_DAMAGE_LISTED = 100


def is_url(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` is a network URL (``udp://``, ``rtmp://``, ``rtsp://``, ``http://`` ...)."""
    s = str(spec)
    scheme, sep, _ = s.partition("://")
    return bool(sep) and scheme.lower() in _URL_SCHEMES


class VideoFileSource(Source):
    """Frames of a video file or a network stream, decoded by PyAV in a background thread.

    Files are decoded into a bounded queue: no frame is ever dropped and order is kept. Network
    streams (``udp://``, ``rtmp://``, ``rtsp://``, ``http://`` ...) are live: only the newest frame
    is kept and the ones a slow consumer never saw are counted in :attr:`dropped`.

    Args:
        path_or_url: a video file or a stream URL.
        realtime: pace reading at the stream's own timestamps (a file then plays like a camera;
            for demos). Network streams are paced by the sender anyway.
        live: override the live/latest-wins behaviour (default: True for URLs, False for files).
        queue_size: frames decoded ahead for files.
        open_timeout: seconds to wait for a network stream to start.
        read_timeout: seconds without data after which a network stream is considered ended.

    Raises:
        SourceError: the file does not exist, cannot be decoded or has no video stream.
    """

    def __init__(
        self,
        path_or_url: str | os.PathLike[str],
        *,
        realtime: bool = False,
        live: bool | None = None,
        queue_size: int = 8,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
    ) -> None:
        av = import_av(SourceError)
        spec = str(path_or_url)
        self._spec = spec
        self._url = is_url(spec)
        if not self._url and not Path(spec).is_file():
            raise SourceError(f"video file not found: {spec}")
        self.realtime = realtime
        self.live = self._url if live is None else bool(live)
        options = {"fflags": "nobuffer", "analyzeduration": "1000000"} if self._url else {}
        if spec.lower().startswith("udp://"):
            # A fat kernel buffer and a non-fatal overrun keep a slow reader from killing the stream.
            options.update({"overrun_nonfatal": "1", "fifo_size": "1000000", "buffer_size": "4194304"})
        try:
            self._container = av.open(
                spec,
                mode="r",
                options=options,
                timeout=(open_timeout, read_timeout) if self._url else None,
            )
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            what = "cannot open stream" if self._url else "cannot decode"
            raise SourceError(f"{what} {spec}: {_reason(exc)}") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"cannot decode {spec}: no video stream")

        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        self._fps = fps
        self.info = SourceInfo(
            width=int(ctx.width or 0),
            height=int(ctx.height or 0),
            fps=fps,
            live=self.live,
            frame_count=(int(stream.frames) or None) if not self._url else None,
            path=spec,
            has_audio=bool(self._container.streams.audio),
            extra={
                "time_base": Fraction(stream.time_base) if stream.time_base else None,
                "codec": ctx.name,
                "rate": Fraction(rate) if rate else None,
                "start_time": (
                    float(stream.start_time * stream.time_base)
                    if stream.start_time is not None and stream.time_base
                    else 0.0
                ),
            },
        )
        self._stop = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._slot = LatestFrameSlot()
        self._eof = False
        self._closed = False
        #: Where the input could not be decoded: ``{"frame", "time_s", "reason"}`` per place, in order.
        #: A damaged or truncated file still yields every frame that decodes; this says what was lost.
        self.damage: list[dict[str, Any]] = []
        self._damage_count = 0
        self._thread = threading.Thread(target=self._decode_loop, name="rtstyle-video-decode", daemon=True)
        self._thread.start()
        log.debug("opened %s: %s", spec, self.info)

    @property
    def dropped(self) -> int:
        """Frames decoded but never handed out because a newer one replaced them (live only)."""
        return self._slot.dropped

    # -- decode thread ---------------------------------------------------------------------
    def _frames(self) -> Iterator[Frame]:
        import av

        index = 0
        last_end: float | None = None  # seconds: end of the last frame decoded
        packets = self._container.demux(self._stream)
        while not self._stop.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.ExitError:
                raise  # a stream's read timeout: handled by the caller as its end
            except (av.error.FFmpegError, OSError) as exc:
                if index == 0 or self._url:
                    raise
                # A file whose container breaks part-way: keep what was decoded before the break.
                self._damaged(index, None, f"unreadable from here on: {_reason(exc)}")
                break
            try:
                decoded = packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                # One damaged packet costs its frame(s), not the rest of the file.
                self._damaged(index, packet, _reason(exc))
                continue
            for vf in decoded:
                image = np.ascontiguousarray(vf.to_ndarray(format="rgb24"))
                if vf.pts is not None and vf.time_base:
                    pts = float(vf.pts * vf.time_base)
                elif self._fps:
                    pts = index / self._fps
                else:
                    pts = None
                yield Frame(image, index=index, pts=pts)
                index += 1
                if pts is not None:
                    last_end = pts + (1.0 / self._fps if self._fps else 0.0)
        if self._stop.is_set() or self._url:
            return  # a stream's lost packets are its weather, not damage to report at its end
        announced = self.info.frame_count
        end = self._expected_end()
        # Short of the announced frames *and* of the announced duration: the file stops early (a file
        # damaged in the middle also lacks frames, but its last frames are there).
        short = (not self._url and bool(announced) and index < (announced or 0)
                 and (end is None or last_end is None or last_end < end - 2.0 / (self._fps or 1.0)))
        if not self.damage and not short:
            return
        if index == 0:
            raise SourceError(f"cannot decode {self._spec}: {self.damage[0]['reason'] if self.damage else 'no frame decodes'}")
        parts = []
        if short:
            t = f" ({last_end:.2f} s)" if last_end is not None else ""
            parts.append(f"decoding stopped at frame {index}{t} of the {announced} announced (truncated?)")
        if self.damage:
            first = self.damage[0]
            t = f" ({first['time_s']:.2f} s)" if first["time_s"] is not None else ""
            parts.append(f"{self._damage_count} damaged place(s) skipped, the first at frame {first['frame']}{t}: "
                         f"{first['reason']}")
        if short:
            self.damage.append({"frame": index, "time_s": None if last_end is None else round(last_end, 3),
                                "reason": f"the file ends early ({announced} frames announced)"})
        log.warning("%s is damaged: %s; the %d frames that decode are kept", self._spec, "; ".join(parts), index)

    def _expected_end(self) -> float | None:
        """Seconds at which the video stream should end, from its header (``None`` if unknown)."""
        st = self._stream
        if st.duration and st.time_base:
            start = float(st.start_time * st.time_base) if st.start_time is not None else 0.0
            return start + float(st.duration * st.time_base)
        if self._container.duration:
            return self._container.duration / 1_000_000  # av.time_base: microseconds
        return None

    def _damaged(self, index: int, packet: Any, reason: str) -> None:
        """Note a place where the input could not be decoded (frame index, time, reason)."""
        t: float | None = None
        if packet is not None and packet.pts is not None and packet.time_base:
            t = float(packet.pts * packet.time_base)
        elif self._fps:
            t = index / self._fps
        self._damage_count += 1
        log.debug("%s: damaged at frame %d: %s", self._spec, index, reason)
        if len(self.damage) < _MAX_DAMAGE_LISTED and not self._url:  # bounded: a stream may run for days
            self.damage.append({"frame": index, "time_s": None if t is None else round(t, 3), "reason": reason})

    def _decode_loop(self) -> None:
        import av

        error: BaseException | None = None
        clock: tuple[float, float] | None = None  # (perf_counter, pts) of the first frame
        try:
            for frame in self._frames():
                if self.realtime and frame.pts is not None:
                    if clock is None:
                        clock = (time.perf_counter(), frame.pts)
                    delay = clock[0] + (frame.pts - clock[1]) - time.perf_counter()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    frame.captured_at = time.perf_counter()
                if not self._deliver(frame):
                    return
        except SourceError as exc:
            error = exc
        except av.error.ExitError:
            # The read timeout fired: the sender went quiet. For a stream that is its end.
            log.info("%s: no data for a while, treating as end of stream", self._spec)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            error = SourceError(f"cannot decode {self._spec}: {_reason(exc)}")
        except Exception as exc:  # keep the consumer from waiting forever; re-raised in read()
            error = SourceError(f"cannot decode {self._spec}: {type(exc).__name__}: {exc}")
        finally:
            if self.live:
                self._slot.finish(error)
            else:
                self._deliver(error if error is not None else _END)

    def _deliver(self, item: Any) -> bool:
        """Hand an item to the consumer; False when the source was closed meanwhile."""
        if self.live:
            if isinstance(item, Frame):
                self._slot.put(item)
            return not self._stop.is_set()
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    # -- consumer side ---------------------------------------------------------------------
    def read(self) -> Frame | None:
        """Next frame (files: in order, none skipped; streams: the newest), ``None`` at the end.

        Raises:
            SourceError: the stream turned out to be corrupt while decoding.
        """
        if self._closed or self._eof:
            return None
        if self.live:
            frame = self._slot.get()
            if frame is None:
                self._eof = True
            return frame
        item = self._queue.get()
        if item is _END:
            self._eof = True
            return None
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        return item

    def close(self) -> None:
        """Stop decoding and release the file or connection. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=10.0)
        # Wake a reader blocked in another thread: it gets the end of stream.
        self._slot.finish()
        try:
            self._queue.put_nowait(_END)
        except queue.Full:
            pass  # a full queue means no reader is waiting
        if self._thread.is_alive():
            # Closing the container under a thread still inside FFmpeg would crash; leak it instead.
            log.warning("%s: decode thread did not stop; leaving the input open", self._spec)
            return
        self._container.close()


def _encoder_options(codec: str, crf: int, preset: str, fmt: str) -> dict[str, str]:
    if codec in ("libx264", "libx265"):
        options = {"crf": str(crf), "preset": preset}
        if fmt == "avi":
            options["bf"] = "0"  # AVI cannot carry reordered frames cleanly
        return options
    if codec in ("libvpx-vp9", "libvpx"):
        return {"crf": str(crf + 12), "b": "0", "deadline": "good", "cpu-used": "5", "row-mt": "1"}
    if codec == "libsvtav1":
        return {"crf": str(crf + 12), "preset": "10"}
    return {}


class VideoFileSink(Sink):
    """Encode frames to a video file with PyAV, keeping timestamps and (optionally) the audio.

    Each frame's ``pts`` (seconds) becomes its timestamp in the output, so a decode → encode round
    trip keeps the number of frames and their timing; pass the input's ``time_base`` to keep the
    timestamps exact. The audio stream of ``audio_from`` is copied as is when the container accepts
    its codec (otherwise transcoded to AAC, Opus for WebM) and cut at the end of the last video
    frame. Output goes to a hidden ``.NAME.part.EXT`` file beside the target that is renamed to
    the final name by :meth:`close`; :meth:`abort` deletes it.

    Args:
        path: output file (``.mp4 .m4v .mov .mkv .webm .avi .flv .ts``: :data:`rtstyle.image.VIDEO_MUXERS`).
        fps: nominal frame rate (used for frames without ``pts`` and for rate control).
        time_base: timestamp unit of the output stream (e.g. the input's ``1/12800``);
            default ``1/90000``.
        codec: video encoder; default ``libx264`` (``libvpx-vp9`` for ``.webm``).
        crf: constant-quality factor (lower is better; 18 is visually lossless for x264).
        audio_from: a media file whose first audio stream goes into the output.
        preset: x264 speed preset.
        overwrite: replace an existing file at ``path`` (it is replaced only when the new one is
            complete); without it an existing file is refused.

    Raises:
        SinkError: the folder does not exist or is not writable, or the extension is unknown.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        SameFileError: ``path`` is the ``audio_from`` file.
    """

    lossless = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float,
        time_base: Fraction | float | str | None = None,
        codec: str | None = None,
        crf: int = 18,
        audio_from: str | os.PathLike[str] | None = None,
        preset: str = "veryfast",
        overwrite: bool = False,
    ) -> None:
        import_av(SinkError)  # fail here, not at the first frame
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_MUXERS:
            known = " ".join(sorted(VIDEO_MUXERS))
            raise SinkError(f"cannot write {self.path}: unknown video extension {suffix!r} (use one of {known})")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        check_writable(self.path)
        self._format = VIDEO_MUXERS[suffix]
        self.fps = float(fps)
        if self._format == "avi":
            # AVI has no timestamps, only a constant frame rate: one tick per frame, no B-frames.
            self.time_base = 1 / _rate(self.fps)
        else:
            self.time_base = as_fraction(time_base) if time_base else Fraction(1, 90_000)
        self.codec = codec or ("libvpx-vp9" if suffix == ".webm" else "libx264")
        self.crf = crf
        self.preset = preset
        self.audio_from = Path(audio_from) if audio_from else None
        if self.audio_from is not None and not self.audio_from.is_file():
            raise SinkError(f"audio source not found: {self.audio_from}")
        self.overwrite = overwrite
        check_output(self.path, overwrite=overwrite, inputs=(self.audio_from,))
        self.temp_path = temp_path(self.path)
        self.frames_written = 0
        self._container: Any = None
        self._vstream: Any = None
        self._size: tuple[int, int] | None = None  # (h, w) of incoming frames
        self._ticks = TickClock(self.time_base)
        self._video_end = 0.0  # seconds: end of the last frame written
        self._audio_in: Any = None
        self._audio_out: Any = None
        self._audio_packets: Iterator[Any] | None = None
        self._audio_pending: Any = None
        self._audio_remux = True
        self._closed = False

    # -- opening ---------------------------------------------------------------------------
    def _open(self, frame: Frame) -> None:
        h, w = frame.height, frame.width
        self._size = (h, w)
        if h % 2 or w % 2:
            log.info("%s: padding %dx%d frames to even size %dx%d for yuv420p", self.path, w, h, w + w % 2, h + h % 2)
        options = _encoder_options(self.codec, self.crf, self.preset, self._format)
        self._open_container(lambda c: add_video_stream(c, self.codec, fps=self.fps, time_base=self.time_base,
                                                        width=w, height=h, options=options))

    def _open_container(self, add_video: Callable[[Any], Any]) -> None:
        """Create the temp file with the stream ``add_video(container)`` returns and the audio, and
        write the header; on failure nothing is left behind."""
        av = import_av(SinkError)
        try:
            container_options = {"movflags": "+faststart"} if self._format in ("mp4", "mov") else {}
            if container_options and self.time_base.numerator == 1:
                # the edit list that places a first frame after 0 (a chunk's) counts in the movie
                # timescale, 1/1000 s by default: in the stream's unit it keeps that time exactly
                container_options["movie_timescale"] = str(self.time_base.denominator)
            self._container = av.open(
                str(self.temp_path), mode="w", format=self._format, container_options=container_options
            )
            self._vstream = add_video(self._container)
            if self.audio_from is not None:
                self._open_audio()
            self._container.start_encoding()  # create the file and write the header now
        except SinkError:
            self._discard()
            raise
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._discard()
            raise SinkError(f"cannot write {self.path}: {_reason(exc)}") from None

    def _open_audio(self) -> None:
        import av

        try:
            src = av.open(str(self.audio_from), mode="r")
        except (av.error.FFmpegError, OSError) as exc:
            raise SinkError(f"cannot read the audio of {self.audio_from}: {_reason(exc)}") from None
        if not src.streams.audio:
            log.info("%s has no audio stream; writing video only", self.audio_from)
            src.close()
            return
        ain = src.streams.audio[0]
        try:
            self._audio_out = self._container.add_stream_from_template(ain)
            self._audio_remux = True
        except ValueError:
            codec = "libopus" if self._format == "webm" else "aac"
            log.info("%s: transcoding %s audio to %s", self.path, ain.codec_context.name, codec)
            rate = ain.codec_context.sample_rate or 48_000
            if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                rate = 48_000
            self._audio_out = self._container.add_stream(codec, rate=rate)
            if ain.codec_context.layout is not None:
                self._audio_out.codec_context.layout = ain.codec_context.layout
            self._audio_remux = False
        self._audio_in = src
        self._audio_packets = src.demux(ain)

    # -- writing ---------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        """Encode one frame (opening the file on the first call).

        Raises:
            SinkError: the file cannot be written, or the frame size changed mid-stream.
        """
        import av

        if self._closed:
            raise SinkError(f"cannot write {self.path}: the sink is closed")
        if self._container is None:
            self._open(frame)
        if (frame.height, frame.width) != self._size:
            h, w = self._size or (0, 0)
            got = f"{frame.width}x{frame.height}"
            raise SinkError(f"cannot write {self.path}: frame size changed from {w}x{h} to {got}")
        ticks = self._ticks(frame.pts if frame.pts is not None else frame.index / self.fps)
        vf = video_frame(frame.image, ticks, self.time_base)
        try:
            self._container.mux(self._vstream.encode(vf))
            now = float(ticks * self.time_base)
            self._video_end = now + 1.0 / self.fps
            self._pump_audio(until=now)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise SinkError(f"cannot write {self.path}: {_reason(exc)}") from None
        self.frames_written += 1

    def _pump_audio(self, until: float) -> None:
        """Mux the audio that starts before ``until`` seconds, so audio and video interleave."""
        import av

        if self._audio_packets is None:
            return
        while True:
            if self._audio_pending is None:
                try:
                    self._audio_pending = next(self._audio_packets, None)
                except (av.error.FFmpegError, OSError) as exc:
                    # Damaged audio must not cost the video: keep what was copied, drop the rest.
                    log.warning("%s: audio unreadable after %.2f s (%s); rest of the audio skipped",
                                self.audio_from, until, _reason(exc))
                    self._audio_pending = None
                if self._audio_pending is None:
                    self._audio_packets = None
                    return
            packet = self._audio_pending
            if packet.dts is None:  # the demuxer's final empty packet
                self._audio_pending = None
                continue
            stamp = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base)
            if stamp >= until:
                return
            self._audio_pending = None
            if stamp < 0 and self._format not in ("mp4", "mov"):
                # Encoder pre-roll before t=0: without edit lists (MP4/MOV have them) the muxer
                # would shift every timestamp, video included, to make it non-negative.
                continue
            if self._audio_remux:
                packet.stream = self._audio_out
                self._container.mux(packet)
            else:
                for af in packet.decode():
                    self._container.mux(self._audio_out.encode(af))

    # -- finishing -------------------------------------------------------------------------
    def _flush_video(self) -> None:
        """Drain the encoder (a remuxing subclass has none)."""
        self._container.mux(self._vstream.encode(None))

    def close(self) -> None:
        """Flush the encoders, finish the file and rename it to its final name.

        Raises:
            SinkError: finishing failed (the partial file is removed).
        """
        import av

        if self._closed:
            return
        self._closed = True
        if self._container is None:
            log.warning("%s: no frames were written; no file created", self.path)
            return
        try:
            self._flush_video()
            self._pump_audio(until=self._video_end)
            if self._audio_out is not None and not self._audio_remux:
                self._container.mux(self._audio_out.encode(None))
            self._container.close()
            self._container = None
            os.replace(self.temp_path, self.path)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._discard()
            raise SinkError(f"cannot finish {self.path}: {_reason(exc)}") from None
        finally:
            self._close_audio_input()
        log.info("wrote %s (%d frames)", self.path, self.frames_written)

    def abort(self) -> None:
        """Stop and delete the partial output; the final file is never created."""
        if self._closed and self._container is None:
            return
        self._closed = True
        self._discard()

    def _discard(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # already failing; the partial file goes anyway
                log.debug("closing partial %s: %s", self.temp_path, exc)
            self._container = None
        self._close_audio_input()
        self.temp_path.unlink(missing_ok=True)

    def _close_audio_input(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
            self._audio_packets = None

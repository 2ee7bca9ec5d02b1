"""Long videos in pieces: probe frame timestamps, plan chunks, decode one chunk, join encoded chunks.

A chunked job (see :mod:`rtstyle.distributed`) stylises each chunk on its own worker and joins the
encoded chunks **without re-encoding**: the packets of every chunk file are remuxed, in order, into
one container, and the input's audio is copied once over the whole (by the same code the
single-process :class:`~rtstyle.io.video.VideoFileSink` uses). Every frame keeps the timestamp it
has in the input.

Chunks start at an input keyframe when one lies near the wanted boundary (decoding can start
right there), otherwise at the exact frame (decoding then starts at the previous keyframe and the
frames before the chunk are decoded and dropped, which costs little next to stylising them). A
chunk may also *warm up*: frames before its start are decoded and stylised but not written, so
filters with state (``--temporal``, crossfades) reach the boundary in the state the single-process
run has there.

PyAV is imported inside the functions, as in :mod:`rtstyle.io.video`.
"""
from __future__ import annotations

import bisect
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generator

import numpy as np

from ..frame import Frame
from ._av import import_av as _import_av
from ._av import reason as _reason
from .base import Sink, SinkError, Source, SourceError, SourceInfo
from .video import VideoFileSink

__all__ = ["Chunk", "ChunkSource", "ChunkWriter", "VideoProbe", "count_video_frames", "join_chunks", "plan_chunks",
           "probe_video"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoProbe:
    """Every frame's timestamp and the keyframes of a file's first video stream (packets only,
    nothing decoded).

    Attributes:
        path: the file.
        time_base: the stream's timestamp unit.
        pts: every frame's presentation timestamp in ``time_base`` ticks, in presentation order.
        keyframes: indices into ``pts`` of the frames that are keyframes.
        fps: the stream's nominal frame rate.
        width / height: frame size.
        has_audio: whether the file has an audio stream.
    """

    path: str
    time_base: Fraction
    pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    fps: float
    width: int
    height: int
    has_audio: bool

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    def seconds(self, index: int) -> float:
        """Presentation time of frame ``index`` in seconds (as the decoder reports it)."""
        return float(self.pts[index] * self.time_base)

    def end_seconds(self, stop: int) -> float:
        """End of the range ending before frame ``stop``: that frame's time, or the last frame's
        time plus one frame at the end of the file."""
        if stop < len(self.pts):
            return self.seconds(stop)
        return self.seconds(stop - 1) + (1.0 / self.fps if self.fps else 0.0)


def probe_video(path: str | os.PathLike[str]) -> VideoProbe:
    """Read the packet index of ``path``'s first video stream.

    Raises:
        SourceError: the file is missing, cannot be demuxed, has no video stream, or has frames
            without timestamps (those cannot be placed in a chunk).
    """
    av = _import_av(SourceError)
    spec = str(path)
    if not Path(spec).is_file():
        raise SourceError(f"video file not found: {spec}")
    try:
        with av.open(spec) as c:
            if not c.streams.video:
                raise SourceError(f"cannot decode {spec}: no video stream")
            v = c.streams.video[0]
            rows = []
            for p in c.demux(v):
                if p.dts is None and p.pts is None:  # the demuxer's final empty packet
                    continue
                if p.pts is None:
                    raise SourceError(f"cannot split {spec}: a video packet has no timestamp")
                rows.append((int(p.pts), bool(p.is_keyframe)))
            rate = v.average_rate or v.guessed_rate or v.base_rate
            ctx = v.codec_context
            tb = Fraction(v.time_base) if v.time_base else Fraction(1, 90_000)
            has_audio = bool(c.streams.audio)
            width, height = int(ctx.width or 0), int(ctx.height or 0)
    except av.error.FFmpegError as exc:
        raise SourceError(f"cannot decode {spec}: {_reason(exc)}") from None
    if not rows:
        raise SourceError(f"cannot decode {spec}: the video stream has no frames")
    rows.sort()
    pts = tuple(r[0] for r in rows)
    if len(set(pts)) != len(pts):
        raise SourceError(f"cannot split {spec}: several video frames share one timestamp")
    return VideoProbe(path=spec, time_base=tb, pts=pts, keyframes=tuple(i for i, r in enumerate(rows) if r[1]),
                      fps=float(rate) if rate else 0.0, width=width, height=height, has_audio=has_audio)


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` of a file (global indices), with warm-up from ``warmup_from``.

    Attributes:
        index: position of the chunk in the file.
        start / stop: the frames this chunk writes.
        warmup_from: first frame it stylises (``<= start``); frames before ``start`` only carry state.
        start_s / end_s: the time range written, in seconds.
    """

    index: int
    start: int
    stop: int
    warmup_from: int
    start_s: float
    end_s: float

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def warmup_frames(self) -> int:
        return self.start - self.warmup_from

    def label(self) -> str:
        """``"12.000-24.040 s"``: the time range, as error lines and progress lines name it."""
        return f"{self.start_s:.3f}-{self.end_s:.3f} s"


def plan_chunks(probe: VideoProbe, chunk_seconds: float, *, warmup_frames: int = 0, max_frames: int | None = None,
                snap: float = 0.25, cuts: Sequence[int] = ()) -> list[Chunk]:
    """Cut frames ``[0, n)`` into chunks of about ``chunk_seconds``.

    Each boundary goes to the scene cut (from ``cuts``), else the keyframe, nearest to its target
    time when one lies within ``snap * chunk_seconds`` of it, else to the exact frame at the target
    time. A last piece shorter than half a chunk is merged into the one before it.

    Args:
        probe: the file's frames (:func:`probe_video`).
        chunk_seconds: wanted chunk length (``<= 0``: one chunk).
        warmup_frames: frames before each chunk's start to stylise first (not for the first chunk).
        max_frames: plan only the first ``max_frames`` frames.
        snap: how far (as a fraction of a chunk) a boundary may move to reach a cut or keyframe.
        cuts: frame indices that start a new shot (:func:`rtstyle.temporal.SceneCutDetector`).
    """
    n = probe.frame_count if max_frames is None else max(0, min(probe.frame_count, int(max_frames)))
    if n == 0:
        return []
    secs = [probe.seconds(i) for i in range(n)]
    bounds = [0]
    if chunk_seconds > 0:
        # scene cuts first: a filter with state starts afresh there in one process too
        preferred = [sorted(c for c in cuts if 0 < c < n), [k for k in probe.keyframes if 0 < k < n]]
        target = secs[0] + chunk_seconds
        while target < secs[-1]:
            cut = bisect.bisect_left(secs, target)
            for frames in preferred:
                j = bisect.bisect_left(frames, cut)
                near = [frames[i] for i in (j - 1, j) if 0 <= i < len(frames)]
                near = [k for k in near if abs(secs[k] - target) <= snap * chunk_seconds and k > bounds[-1]]
                if near:
                    cut = min(near, key=lambda k: abs(secs[k] - target))
                    break
            if cut <= bounds[-1] or cut >= n:
                break
            bounds.append(cut)
            target = secs[cut] + chunk_seconds
        if len(bounds) > 1 and secs[-1] - secs[bounds[-1]] < 0.5 * chunk_seconds:
            bounds.pop()  # a short tail joins the chunk before it
    bounds = bounds + [n]
    return [Chunk(index=i, start=a, stop=b, warmup_from=max(0, a - max(0, int(warmup_frames))) if i else 0,
                  start_s=secs[a], end_s=probe.end_seconds(b))
            for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


class ChunkSource(Source):
    """Frames ``[warmup_from, stop)`` of a file, decoded with PyAV, with the indices and timestamps
    the whole-file :class:`~rtstyle.io.video.VideoFileSource` gives them.

    Decoding starts at the keyframe at or before ``warmup_from`` (frames before it are dropped
    undecoded where possible). Decoding happens in :meth:`read` (the pipeline's read stage is
    already a thread of its own).

    Raises:
        SourceError: the file cannot be decoded, or it does not hold the frames the probe listed
            (a damaged range: fewer frames, or frames at other times).
    """

    def __init__(self, probe: VideoProbe, chunk: Chunk) -> None:
        av = _import_av(SourceError)
        self.probe, self.chunk = probe, chunk
        try:
            self._container = av.open(probe.path, mode="r")
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot decode {probe.path}: {_reason(exc)}") from None
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        self.info = SourceInfo(width=probe.width, height=probe.height, fps=probe.fps, live=False,
                               frame_count=chunk.stop - chunk.warmup_from, path=probe.path, has_audio=probe.has_audio,
                               extra={"time_base": probe.time_base, "chunk": chunk.index})
        self._next = chunk.warmup_from  # the next frame index expected
        self._frames = self._decode()
        self._closed = False

    def _decode(self) -> Generator[Frame, None, None]:
        import av

        first, pts = self.chunk.warmup_from, self.probe.pts
        tb = self._stream.time_base
        try:
            for from_start in ((first == 0,) if first == 0 else (False, True)):
                if from_start:
                    if first:
                        log.info("%s: seek overshot frame %d; decoding from the start", self.probe.path, first)
                        self._container.seek(0, stream=self._stream, backward=True, any_frame=False)
                else:
                    # backward=True lands on the keyframe at or before the target (checked below)
                    self._container.seek(pts[first], stream=self._stream, backward=True, any_frame=False)
                overshot = seen_any = False
                for packet in self._container.demux(self._stream):
                    try:
                        decoded = packet.decode()
                    except (av.error.FFmpegError, ValueError) as exc:
                        if packet.pts is not None and packet.pts < pts[first]:
                            continue  # damage before the range only costs frames nobody needs
                        at = f" at {float(packet.pts * tb):.3f} s" if packet.pts is not None else ""
                        raise SourceError(f"cannot decode {self.probe.path} in {self.chunk.label()}: damaged "
                                          f"frame{at}: {_reason(exc)}") from None
                    for vf in decoded:
                        if vf.pts is None:
                            raise SourceError(f"cannot decode {self.probe.path}: a frame without a timestamp")
                        if not seen_any and not from_start and vf.pts > pts[first]:
                            overshot = True  # the index had no keyframe before the target
                            break
                        seen_any = True
                        if vf.pts < pts[first]:
                            continue
                        yield self._frame(vf, tb)
                        if self._next >= self.chunk.stop:
                            return
                    if overshot:
                        break
                if not overshot:
                    return
        except av.error.FFmpegError as exc:
            raise SourceError(f"cannot decode {self.probe.path} at {self.chunk.label()}: {_reason(exc)}") from None

    def _frame(self, vf: Any, tb: Any) -> Frame:
        i = self._next
        if i >= len(self.probe.pts) or vf.pts != self.probe.pts[i]:
            want = f"{self.probe.seconds(i):.3f} s" if i < len(self.probe.pts) else "none"
            raise SourceError(f"cannot decode {self.probe.path} at {self.chunk.label()}: frame {i} decoded at "
                              f"{float(vf.pts * tb):.3f} s, expected {want} (damaged or missing frames)")
        self._next += 1
        image = np.ascontiguousarray(vf.to_ndarray(format="rgb24"))
        return Frame(image, index=i, pts=float(vf.pts * tb))

    def read(self) -> Frame | None:
        if self._closed:
            return None
        frame = next(self._frames, None)
        if frame is None and self._next < self.chunk.stop:
            raise SourceError(f"cannot decode {self.probe.path} at {self.chunk.label()}: decoded "
                              f"{self._next - self.chunk.warmup_from} of {self.chunk.stop - self.chunk.warmup_from} "
                              "frames (damaged or missing frames)")
        return frame

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._frames.close()
        self._container.close()


class ChunkWriter(Sink):
    """Writes a chunk's own frames (indices ``>= chunk.start``) to ``sink``; warm-up frames are
    computed by the pipeline but not written."""

    def __init__(self, sink: Sink, chunk: Chunk) -> None:
        self.sink, self.chunk = sink, chunk
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        if frame.index < self.chunk.start:
            return
        self.sink.write(frame)
        self.frames_written += 1

    def close(self) -> None:
        self.sink.close()

    def abort(self) -> None:
        self.sink.abort()


def count_video_frames(path: str | os.PathLike[str]) -> int | None:
    """Frames in the first video stream of a *finished* container (packets counted, nothing
    decoded); ``None`` when the file is missing or cannot be read as a video."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            return sum(1 for p in c.demux(c.streams.video[0]) if p.pts is not None)
    except (av.error.FFmpegError, OSError, ValueError):
        return None


class _RemuxSink(VideoFileSink):
    """A :class:`VideoFileSink` fed with encoded packets instead of frames: the same temp file,
    rename and audio copy, with the video stream taken from a chunk file (no encoder)."""

    def open_like(self, stream: Any) -> None:
        """Open the output with a video stream copied from ``stream`` (a chunk's)."""
        def copy(container: Any) -> Any:
            out = container.add_stream_from_template(stream)
            out.time_base = stream.time_base
            return out

        self._open_container(copy)

    def write_packet(self, packet: Any, end: float) -> None:
        """Mux one video packet; ``end``: presentation end (s) of the video muxed so far."""
        import av

        try:
            stamp = float(packet.dts * packet.time_base) if packet.dts is not None else end
            packet.stream = self._vstream
            self._container.mux(packet)
            self._video_end = end
            self._pump_audio(until=stamp)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise SinkError(f"cannot write {self.path}: {_reason(exc)}") from None
        self.frames_written += 1

    def _flush_video(self) -> None:
        """Packets are copied as they are: there is no encoder to drain."""


def join_chunks(parts: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *, fps: float,
                audio_from: str | os.PathLike[str] | None = None,
                expected_pts: Sequence[float] | None = None, overwrite: bool = False) -> int:
    """Join encoded chunk files into ``output`` without re-encoding; returns the frames written.

    The video packets of ``parts`` are remuxed in order (decode timestamps nudged up by a tick
    where one chunk's last packets and the next one's first would tie; presentation timestamps are
    never changed). ``audio_from``'s audio goes in once, over the whole, cut at the end of the last
    frame, exactly as the single-process sink does. Output goes to a temp file renamed at the end.

    Args:
        parts: chunk files, in order, each encoded with the same settings.
        output: the final file (its extension picks the container; the same as the parts').
        fps: the nominal frame rate (for the end of the last frame).
        audio_from: the input whose audio is copied.
        expected_pts: every frame's presentation time (s), to check the result against.
        overwrite: replace an existing ``output`` (once the joined file is complete).

    Raises:
        SinkError: a part is missing or unreadable, the parts' streams differ, or the frames do
            not come out as expected (the partial output is removed); ``OutputExistsError`` when
            ``output`` exists and ``overwrite`` is False.
    """
    av = _import_av(SinkError)
    if not parts:
        raise SinkError(f"cannot write {output}: no chunks to join")
    t0 = time.perf_counter()
    sink = _RemuxSink(output, fps=fps, audio_from=audio_from, overwrite=overwrite)
    seen: list[float] = []
    try:
        last_dts: int | None = None
        extradata: bytes | None = None
        end = 0.0
        for i, part in enumerate(parts):
            try:
                c = av.open(str(part))
            except (av.error.FFmpegError, OSError) as exc:
                raise SinkError(f"cannot join {output}: chunk {i} ({part}) unreadable: {_reason(exc)}") from None
            with c:
                vs = c.streams.video[0]
                data = bytes(vs.codec_context.extradata or b"")
                if i == 0:
                    sink.open_like(vs)
                    extradata = data
                elif data != extradata:
                    raise SinkError(f"cannot join {output}: chunk {i} was encoded with other codec settings")
                for p in c.demux(vs):
                    if p.dts is None and p.pts is None:
                        continue
                    if p.dts is not None and last_dts is not None and p.dts <= last_dts:
                        if p.pts is not None and last_dts + 1 > p.pts:
                            raise SinkError(f"cannot join {output}: chunk {i} overlaps the chunk before it")
                        p.dts = last_dts + 1  # a tie at the seam (encoder delay); pts stays exact
                    if p.dts is not None:
                        last_dts = p.dts
                    if p.pts is not None:
                        t = float(p.pts * p.time_base)
                        seen.append(t)
                        end = max(end, t + 1.0 / fps)
                    sink.write_packet(p, end)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    if expected_pts is not None:
        got = sorted(seen)
        if len(got) != len(expected_pts) or any(abs(a - b) > 1e-6 for a, b in zip(got, expected_pts)):
            Path(output).unlink(missing_ok=True)
            raise SinkError(f"cannot join {output}: {len(got)} frames joined, {len(expected_pts)} expected "
                            "(or their timestamps differ)")
    log.info("joined %d chunks into %s (%d frames) in %.2f s", len(parts), output, len(seen), time.perf_counter() - t0)
    return len(seen)

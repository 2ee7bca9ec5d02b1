"""The work one Ray task does: stylise a whole file, or one chunk of a file.

Both run the single-process frame path (:class:`~rtstyle.pipeline.Pipeline` with the same
source semantics, Stylizer and :class:`~rtstyle.io.video.VideoFileSink`), so a task's output is
what ``rtstyle stylize`` writes. These functions run on workers; they import nothing of Ray but
the progress calls.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from ..backends import BackendOptions
from ..io.chunks import Chunk, ChunkSource, ChunkWriter, VideoProbe
from ..pipeline import Pipeline
from ..schedule import ScheduledSwap
from .config import BatchOptions, StylizerRecipe
from .progress import Reporter

__all__ = ["ChunkTask", "FileTask", "due_frames", "run_chunk", "run_file", "split_schedule"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileTask:
    """Stylise ``input`` into ``output`` (one task)."""

    key: str
    input: str
    output: str


@dataclass(frozen=True)
class ChunkTask:
    """Stylise ``chunk`` of a probed file into ``part`` (a chunk file joined later); the probe
    travels beside it (one object in Ray's store shared by all of a file's chunks).

    ``past``: the schedule entry due before the chunk's warm-up (its style is the chunk's starting
    style); ``schedule``: entries due inside the chunk, as exact frame indices.
    """

    key: str
    chunk: Chunk
    part: str
    past: ScheduledSwap | None
    schedule: tuple[ScheduledSwap, ...]


def _backend_options(opts: BatchOptions) -> BackendOptions:
    threads = max(1, int(opts.worker_cpus))
    # torch reads the thread count from OMP_NUM_THREADS (Ray sets it to the task's CPUs);
    # OpenVINO and ONNX Runtime take it as an option
    return BackendOptions(cache_dir=opts.cache_dir, extra={"threads": threads})


def _encode_kw(opts: BatchOptions) -> dict[str, Any]:
    return {k: v for k, v in (("crf", opts.crf), ("preset", opts.encoder_preset)) if v is not None}


def _result(task_key: str, frames: int, t0: float, attempt: int, **extra: Any) -> dict[str, Any]:
    return dict(key=task_key, frames=frames, wall_s=round(time.perf_counter() - t0, 3), attempt=attempt,
                pid=os.getpid(), node=socket.gethostname(), **extra)


def _failure(key: str, exc: BaseException) -> dict[str, Any]:
    """An error of the task's own (bad input, bad options) as a result: deterministic, so Ray does not
    retry it (its retries are for dead workers and lost nodes), and the driver names it in one line."""
    log.info("task %s failed", key, exc_info=True)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (OSError, ValueError)) and type(exc).__name__ not in ("SourceError", "SinkError"):
        text = f"{type(exc).__name__}: {text}"
    return dict(key=key, error=text[:300], pid=os.getpid())


def run_file(task: FileTask, recipe: StylizerRecipe, opts: BatchOptions, progress: Any) -> dict[str, Any]:
    """Stylise one whole file as ``rtstyle stylize INPUT -o OUTPUT`` does; returns its figures (or
    ``{"error": ...}``)."""
    try:
        return _run_file(task, recipe, opts, progress)
    except Exception as e:  # noqa: BLE001 - becomes the file's one line in the summary
        return _failure(task.key, e)


def run_chunk(task: "ChunkTask", probe: VideoProbe, recipe: StylizerRecipe, opts: BatchOptions,
              progress: Any) -> dict[str, Any]:
    """Stylise one chunk (warm-up frames first, not written) into its part file; returns its figures
    (or ``{"error": ...}``, e.g. for a damaged range of the input)."""
    try:
        return _run_chunk(task, probe, recipe, opts, progress)
    except Exception as e:  # noqa: BLE001 - becomes the file's one line, with the chunk's time range
        return _failure(task.key, e)


def _run_file(task: FileTask, recipe: StylizerRecipe, opts: BatchOptions, progress: Any) -> dict[str, Any]:
    from ..io import VideoFileSink, open_source
    from ..schedule import parse_schedule

    t0 = time.perf_counter()
    rep = Reporter(progress, task.key)
    attempt = rep.start()
    schedule = parse_schedule(opts.swap) if opts.swap else []
    with open_source(task.input) as src:
        info = src.info
        sink = VideoFileSink(task.output, fps=info.fps or 30.0, time_base=info.extra.get("time_base"),
                             audio_from=info.path if info.has_audio else None, overwrite=opts.overwrite,
                             **_encode_kw(opts))
        stylizer = recipe.make(_backend_options(opts))
        try:
            pipe = Pipeline(src, stylizer, [sink], schedule=schedule, max_frames=opts.max_frames,
                            on_frame=lambda f: rep.frame())
            pipe.run()
        finally:
            stylizer.close()
            rep.finish()
    return _result(task.key, sink.frames_written, t0, attempt)


def _run_chunk(task: ChunkTask, probe: VideoProbe, recipe: StylizerRecipe, opts: BatchOptions,
               progress: Any) -> dict[str, Any]:
    """Raises:
        SourceError: the chunk's frames cannot all be decoded (a damaged range).
    """
    from ..io import VideoFileSink
    from ..io.base import SourceError

    t0 = time.perf_counter()
    chunk = task.chunk
    rep = Reporter(progress, task.key)
    attempt = rep.start()
    if attempt > 1:
        log.info("%s: attempt %d of chunk %d (%s)", probe.path, attempt, chunk.index, chunk.label())
    src = ChunkSource(probe, chunk)
    with src:
        # overwrite: a part is the job's own file (a retry may find the one a killed attempt renamed)
        sink = VideoFileSink(task.part, fps=probe.fps or 30.0, time_base=probe.time_base, overwrite=True,
                             **_encode_kw(opts))
        writer = ChunkWriter(sink, chunk)
        stylizer = recipe.make(_backend_options(opts))
        try:
            if task.past is not None:  # the style in effect where the warm-up starts, without a fade
                sw = task.past
                stylizer.activate(stylizer.prepare(sw.model, style_image=sw.style_image, style_vector=sw.style_vector,
                                                   options=sw.options), crossfade=0)

            def on_frame(f: Any) -> None:
                if f.index >= chunk.start:
                    rep.frame()

            pipe = Pipeline(src, stylizer, [writer], schedule=list(task.schedule), on_frame=on_frame)
            pipe.run()
        finally:
            stylizer.close()
            rep.finish()
    if writer.frames_written != chunk.frames:
        raise SourceError(f"cannot decode {probe.path} at {chunk.label()}: {writer.frames_written} of "
                          f"{chunk.frames} frames (damaged or missing frames)")
    return _result(task.key, writer.frames_written, t0, attempt, chunk=chunk.index, warmup=chunk.warmup_frames,
                   start=chunk.start, stop=chunk.stop, start_s=chunk.start_s, end_s=chunk.end_s)


def due_frames(schedule: list[ScheduledSwap], probe: VideoProbe) -> list[tuple[int, ScheduledSwap]]:
    """Each schedule entry with the frame it lands on, decided by :meth:`ScheduledSwap.due` exactly
    as the single-process pipeline decides it (entries due after the last frame are left out)."""
    import bisect

    import numpy as np

    from ..frame import Frame

    dot = np.zeros((1, 1, 3), np.uint8)
    n = probe.frame_count
    out = []
    for sw in schedule:  # due() is monotonic in the frame index: binary search
        due = bisect.bisect_left(range(n), True, key=lambda i: sw.due(Frame(dot, i, probe.seconds(i)), probe.fps))
        if due < n:
            out.append((due, sw))
    return out


def split_schedule(due: list[tuple[int, ScheduledSwap]], chunk: Chunk
                   ) -> tuple[ScheduledSwap | None, tuple[ScheduledSwap, ...]]:
    """The entry in effect where ``chunk`` starts warming up, and the entries due inside it, as
    exact frame indices, so a swap lands on the same frame whichever chunk holds it."""
    past: tuple[int, ScheduledSwap] | None = None
    inside: list[ScheduledSwap] = []
    for frame, sw in due:
        if frame >= chunk.stop:
            continue
        if frame < chunk.warmup_from:
            if past is None or frame >= past[0]:  # ties: the later entry is applied last
                past = (frame, sw)
        else:
            inside.append(dataclasses.replace(sw, at_s=None, at_frame=frame))
    return (past[1] if past else None), tuple(inside)

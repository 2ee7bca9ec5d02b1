"""The driver of a distributed job: plan, submit Ray tasks, follow progress, join chunks, report.

Scheduling, placement and retries are Ray's (``max_retries`` with ``retry_exceptions``); this
module only decides the tasks, watches them and turns their results into outputs: a file task
writes its output itself (temp file + rename, as one process does), chunk tasks write chunk files
that the driver joins without re-encoding once all of a file's chunks are in.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..io.chunks import Chunk, VideoProbe, count_video_frames, join_chunks, plan_chunks, probe_video
from ..io.safety import temp_path
from .cluster import connect, import_ray
from .config import BatchOptions, StylizerRecipe
from .errors import BatchError
from .inputs import expand_inputs, output_paths
from .progress import ProgressActor, ProgressSnapshot
from .tasks import ChunkTask, FileTask, due_frames, run_chunk, run_file, split_schedule

__all__ = ["BatchError", "run_batch"]

log = logging.getLogger(__name__)


@dataclass
class _FileJob:
    input: Path
    output: Path
    probe: VideoProbe | None = None
    expected: int = 0
    status: str = "pending"  # pending | running | done | skipped | failed
    error: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    parts: dict[int, Path] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[Any, str] = field(default_factory=dict)  # ObjectRef -> task key
    started: float = 0.0
    wall_s: float = 0.0

    @property
    def chunk_dir(self) -> Path:
        return self.output.parent / f".{self.output.name}.chunks"


def check_paths(inp: Path, out: Path) -> None:
    """Refuse to write an input over itself (the same path, a link to it, or a hard link).

    Raises:
        BatchError: ``out`` is ``inp``.
    """
    from ..io.safety import SameFileError, check_output

    try:
        check_output(out, overwrite=True, inputs=(inp,))
    except SameFileError:
        raise BatchError(f"refusing to write {out}: it is the input file (choose another output)") from None


class _TaskFailed(Exception):
    """A task's own error, carried back as its result."""


def _one_line(exc: BaseException) -> str:
    """A task's failure as one line: the original error's message when Ray carries it."""
    cause = getattr(exc, "cause", None)
    err = cause if isinstance(cause, BaseException) else exc
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, _TaskFailed):
        return text
    if "worker died" in text.lower() or "worker crashed" in text.lower() or err is exc:
        text = f"{type(err).__name__}: {text}"
    return text[:300]


def _auto_warmup(recipe: StylizerRecipe, opts: BatchOptions, fps: float) -> int:
    if opts.warmup_frames is not None:
        return int(opts.warmup_frames)
    n = recipe.crossfade if opts.swap else 0
    if recipe.temporal:
        n += int(math.ceil(fps or 25.0))  # one second: the stabiliser's memory has mostly faded by then
    return n


def run_batch(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    recipe: StylizerRecipe,
    *,
    options: BatchOptions | None = None,
    address: str | None = "local",
    num_cpus: int | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    on_progress: Callable[[ProgressSnapshot], None] | None = None,
) -> dict[str, Any]:
    """Stylise video files on a Ray cluster; returns the job report.

    A single file is cut into chunks of about ``options.chunk_seconds`` (one task each) and the
    chunks are joined without re-encoding; several files (a folder, glob, list file or sequence)
    run one task per file into the output folder. Outputs that already exist complete (the
    expected frame count) are skipped unless ``options.overwrite``; other existing outputs are
    refused. A failing file does not stop the others: it is listed in ``report["failed"]``.

    Args:
        inputs: a video file, folder, glob pattern, list file (``.txt``), or a sequence of files.
        output: the output video (one input) or folder (several).
        recipe: how workers build their Stylizer.
        options: job settings (:class:`BatchOptions`).
        address: ``"local"`` (an embedded cluster on this machine), ``"auto"``, ``"HOST:PORT"``
            or ``"ray://HOST:PORT"``.
        num_cpus: CPUs of an embedded cluster (default: this machine's).
        progress: show one progress bar over all frames.
        echo: called with a line per finished chunk and file (``-v``).
        on_progress: called with a :class:`ProgressSnapshot` about five times a second.

    Raises:
        RayUnavailableError: Ray is not installed or the cluster cannot be reached.
        BatchError / FileNotFoundError / ValueError: the job cannot start (one line).
        KeyboardInterrupt: after the workers were stopped and partial outputs removed.
    """
    ray = import_ray()
    from tqdm import tqdm

    from ..backends.cache import default_cache_dir
    from ..schedule import parse_schedule

    opts = options or BatchOptions()
    if not opts.cache_dir:  # workers may start elsewhere: give them the driver's cache by absolute path
        opts = replace(opts, cache_dir=str(default_cache_dir().resolve()))
    schedule = parse_schedule(opts.swap) if opts.swap else []
    say = echo or (lambda line: None)
    t_start = time.perf_counter()

    files, many = expand_inputs(inputs)
    outs = output_paths(files, output, many)
    if many:
        Path(output).mkdir(parents=True, exist_ok=True)
    jobs = [_FileJob(i, o) for i, o in zip(files, outs)]
    for job in jobs:
        check_paths(job.input, job.output)
    for job in jobs:
        try:
            job.probe = probe_video(job.input.absolute())  # workers may not start in this folder
        except Exception as e:  # noqa: BLE001 - named in the summary; the other files go on
            if not many:
                raise
            job.status, job.error = "failed", " ".join(str(e).split())
            continue
        n = job.probe.frame_count
        job.expected = n if opts.max_frames is None else min(n, opts.max_frames)
        if job.output.exists() and not opts.overwrite:
            have = count_video_frames(job.output)
            if have == job.expected:
                job.status = "skipped"
                say(f"{job.input.name}: skipped, {job.output} is complete ({have} frames)")
                continue
            why = f"{have} of {job.expected} frames" if have is not None else "not a readable video"
            msg = f"{job.output} exists ({why}); use -y/--overwrite to redo it"
            if not many:
                raise BatchError(msg)
            job.status, job.error = "failed", msg
    todo = [j for j in jobs if j.status == "pending"]
    report: dict[str, Any] = dict(inputs=len(jobs), skipped=sum(j.status == "skipped" for j in jobs), chunks=0,
                                  retried_chunks=0, retried_tasks=0, workers=0, worker_pids=0, chunk_times=[],
                                  frames_expected=sum(j.expected for j in todo), frames_out=0, warmup_frames=0)
    if not todo:
        return _finish(report, jobs, t_start, {})

    with connect(address, num_cpus=num_cpus) as cluster:
        slots = cluster["gpus"] / opts.worker_gpus if opts.worker_gpus else cluster["cpus"] / opts.worker_cpus
        report["workers"] = max(1, int(slots))
        report["cluster"] = dict(cluster)
        actor = ray.remote(num_cpus=0)(ProgressActor).remote()
        # Ray retries a task whose worker died (killed, out of memory, node lost); an error of the
        # task's own comes back as a result and is not retried (it would fail the same way again)
        task_opts = dict(num_cpus=opts.worker_cpus, num_gpus=opts.worker_gpus, max_retries=opts.retries,
                         retry_exceptions=False)
        file_fn = ray.remote(run_file).options(**task_opts)
        chunk_fn = ray.remote(run_chunk).options(**task_opts)
        recipe_ref, opts_ref = ray.put(recipe), ray.put(opts)
        pending: dict[Any, _FileJob] = {}
        attempts: dict[str, int] = {}
        pids: set[int] = set()
        bar = tqdm(total=report["frames_expected"], unit="frame", desc="stylize", disable=not progress,
                   dynamic_ncols=True)
        try:
            for job in todo:
                _submit(job, many, opts, schedule, recipe, recipe_ref, opts_ref, actor, file_fn, chunk_fn, ray,
                        _auto_warmup(recipe, opts, job.probe.fps if job.probe else 0.0))
                pending.update({r: job for r in job.refs})
                report["chunks"] += len(job.chunks)
            last_poll = 0.0
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                now = time.perf_counter()
                if now - last_poll >= 0.2 or ready:
                    last_poll = now
                    snap: ProgressSnapshot = ray.get(actor.snapshot.remote())
                    bar.update(snap.frames - bar.n)
                    for key, n in snap.attempts.items():
                        if n > attempts.get(key, 1):
                            say(f"{key}: attempt {n} (the previous one failed or its worker died)")
                        attempts[key] = n
                    pids.update(pid for pid, _ in snap.running.values())
                    if on_progress is not None:
                        on_progress(snap)
                for ref in ready:
                    job = pending.pop(ref)
                    key = job.refs.pop(ref)
                    _collect(job, ref, key, ray, attempts, say, pending)
                    if job.status == "running" and not job.refs:
                        _complete(job, say, opts.overwrite)
                    if job.status != "running":
                        job.wall_s = time.perf_counter() - job.started
            snap = ray.get(actor.snapshot.remote())
            attempts.update(snap.attempts)
            bar.update(snap.frames - bar.n)
        except BaseException:
            _stop(ray, list(pending))
            raise
        finally:
            bar.close()
            for job in jobs:
                _cleanup(job)
        for job in jobs:
            for res in job.results.values():
                pids.add(res["pid"])
                if "chunk" in res:
                    res["attempts"] = attempts.get(res["key"], res["attempt"])
                    report["chunk_times"].append({k: res[k] for k in ("key", "chunk", "start", "stop", "start_s", "end_s",
                                                                      "frames", "warmup", "wall_s", "attempts", "pid")})
                    report["warmup_frames"] += res["warmup"]
        report["retried_chunks"] = sum(1 for j in jobs for c in j.chunks if attempts.get(_chunk_key(j, c), 1) > 1)
        report["retried_tasks"] = sum(1 for n in attempts.values() if n > 1)
        report["worker_pids"] = len(pids)
    return _finish(report, jobs, t_start, attempts)


def _chunk_key(job: _FileJob, chunk: Chunk) -> str:
    return f"{job.input.name}#{chunk.index}"


def _submit(job: _FileJob, many: bool, opts: BatchOptions, schedule: list, recipe: StylizerRecipe, recipe_ref: Any,
            opts_ref: Any, actor: Any, file_fn: Any, chunk_fn: Any, ray: Any, warmup: int) -> None:
    assert job.probe is not None
    job.status, job.started = "running", time.perf_counter()
    cuts = _scene_cuts(job.probe, opts.max_frames) if recipe.temporal and not many and opts.chunk_seconds > 0 else []
    chunks = [] if many else plan_chunks(job.probe, opts.chunk_seconds, warmup_frames=warmup,
                                         max_frames=opts.max_frames, cuts=cuts)
    if len(chunks) <= 1:  # one task writes the file exactly as one process does
        task = FileTask(job.input.name, str(job.input.absolute()), str(job.output.absolute()))
        ref = file_fn.remote(task, recipe_ref, opts_ref, actor)
        job.refs[ref] = job.input.name
        return
    job.chunks = chunks
    job.chunk_dir.mkdir(parents=True, exist_ok=True)
    probe_ref = ray.put(job.probe)
    due = due_frames(schedule, job.probe)
    for c in chunks:
        past, inside = split_schedule(due, c)
        part = job.chunk_dir / f"chunk_{c.index:04d}{job.output.suffix}"
        job.parts[c.index] = part
        key = _chunk_key(job, c)
        ref = chunk_fn.remote(ChunkTask(key, c, str(part.absolute()), past, inside), probe_ref, recipe_ref, opts_ref,
                              actor)
        job.refs[ref] = key


def _scene_cuts(probe: VideoProbe, max_frames: int | None) -> list[int]:
    """Frames that start a new shot, found by the temporal filter's own detector in one decode pass.

    The filter forgets its state at a cut in one process too, so a chunk that starts there has
    no seam at all (the filter sees frames at the internal size; a 64x36 thumbnail of either
    decides the same on real cuts)."""
    import av

    from ..temporal import SceneCutDetector

    t0 = time.perf_counter()
    det, cuts = SceneCutDetector(), []
    with av.open(probe.path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(stream)):
            if max_frames is not None and i >= max_frames:
                break
            if det.update(frame.to_ndarray(format="rgb24")):
                cuts.append(i)
    log.info("%s: %d scene cuts found in %.1f s", probe.path, len(cuts), time.perf_counter() - t0)
    return cuts


def _collect(job: _FileJob, ref: Any, key: str, ray: Any, attempts: dict[str, int], say: Callable[[str], None],
             pending: dict[Any, _FileJob]) -> None:
    """Take one finished task of ``job``: keep its result, or fail the job (and stop its other tasks)."""
    try:
        res = ray.get(ref)
        if "error" in res:
            raise _TaskFailed(res["error"])
    except Exception as e:  # noqa: BLE001 - the task's error or Ray's (worker died every time): one line
        if job.status != "running":
            return  # a sibling already failed the file; this is its cancelled chunk
        n = attempts.get(key, 1)
        where = ""
        if job.chunks:
            c = job.chunks[int(key.rsplit("#", 1)[1])]
            where = f" chunk {c.index + 1} of {len(job.chunks)} ({c.label()})"
        job.status = "failed"
        job.error = f"{job.input}{where} failed after {n} attempt{'s' if n != 1 else ''}: {_one_line(e)}"
        others = list(job.refs)
        for r in others:
            pending.pop(r, None)
        _stop(ray, others)
        job.refs.clear()
        say(job.error)
        return
    if job.status != "running":
        return
    job.results[key] = res
    if "chunk" in res:
        c = job.chunks[res["chunk"]]
        say(f"{job.input.name} chunk {c.index + 1}/{len(job.chunks)} ({c.label()}): {res['frames']} frames "
            f"(+{res['warmup']} warm-up) in {res['wall_s']:.1f} s, worker pid {res['pid']}")


def _complete(job: _FileJob, say: Callable[[str], None], overwrite: bool) -> None:
    """All of ``job``'s tasks are in: join its chunks (if any); the output is then final."""
    from ..io.base import IOErrorBase

    assert job.probe is not None
    if job.chunks:
        try:
            n = join_chunks([job.parts[c.index] for c in job.chunks], job.output, fps=job.probe.fps or 30.0,
                            audio_from=job.input if job.probe.has_audio else None,
                            expected_pts=[job.probe.seconds(i) for i in range(job.expected)],
                            overwrite=overwrite)
        except IOErrorBase as e:
            job.status, job.error = "failed", f"{job.input}: {e}"
            say(job.error)
            return
        say(f"{job.input.name}: joined {len(job.chunks)} chunks into {job.output} ({n} frames)")
    else:
        res = next(iter(job.results.values()))
        say(f"{job.input.name}: wrote {job.output} ({res['frames']} frames in {res['wall_s']:.1f} s, "
            f"worker pid {res['pid']})")
    job.status = "done"


def _stop(ray: Any, refs: list) -> None:
    """Stop tasks now (their workers are killed) and wait a little for them to go."""
    for r in refs:
        try:
            ray.cancel(r, force=True)
        except Exception as e:  # noqa: BLE001 - already finished or gone: nothing to stop
            log.debug("cancel %s: %s", r, e)
    if refs:
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=10)
        for r in done:  # take their (cancelled) results, or Ray reports them as unhandled errors later
            try:
                ray.get(r, timeout=1)
            except Exception as e:  # noqa: BLE001 - expected: TaskCancelledError
                log.debug("stopped task: %s", type(e).__name__)


def _cleanup(job: _FileJob) -> None:
    """Remove what an unfinished job left: chunk files always, the partial output unless done."""
    if not job.started:
        return  # never submitted: nothing of this job's own to remove
    if job.chunks:
        shutil.rmtree(job.chunk_dir, ignore_errors=True)
    if job.status not in ("done", "skipped"):
        temp_path(job.output).unlink(missing_ok=True)  # what a killed file task left
        if job.status == "running":
            job.status = "failed"
            job.error = job.error or f"{job.input}: interrupted"


def _finish(report: dict[str, Any], jobs: list[_FileJob], t_start: float, attempts: dict[str, int]) -> dict[str, Any]:
    wall = time.perf_counter() - t_start
    done = [j for j in jobs if j.status == "done"]
    report["frames_out"] = sum(sum(r["frames"] for r in j.results.values()) for j in done)
    report["written"] = len(done)
    report["failed"] = [{"input": str(j.input), "output": str(j.output), "error": j.error} for j in jobs
                        if j.status == "failed"]
    report["files"] = [{"input": str(j.input), "output": str(j.output), "status": j.status, "frames": j.expected,
                        "chunks": len(j.chunks), "wall_s": round(j.wall_s, 3),
                        "pids": sorted({r["pid"] for r in j.results.values() if "pid" in r})} for j in jobs]
    report["wall_s"] = round(wall, 3)
    report["fps"] = round(report["frames_out"] / wall, 3) if wall > 0 else 0.0
    return report

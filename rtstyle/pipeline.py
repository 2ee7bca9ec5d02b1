"""Pipeline(source, stylizer, sinks): overlapped stages with bounded queues.

Three threads: **read** (decode/capture) -> **stylize** (preprocess, inference, postprocess) ->
**write** (every sink). Heavy work in each stage (FFmpeg decode/encode, OpenCV resize, PyTorch /
ONNX Runtime / OpenVINO kernels) releases the GIL, so the stages really run at once.

Two semantics, chosen from the source:

* **live** (camera, stream, synthetic live): between stages sits a one-slot "latest" buffer;
  a newer frame replaces an unconsumed one, which is counted as dropped. Latency never builds up.
* **file**: bounded blocking queues; no frame is ever dropped or duplicated, order and
  timestamps are kept. Every sink sees every frame, so a preview window beside a file output
  shows the job at the job's pace.
"""
from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

from ._openmp import release_thread_pool
from .frame import Frame
from .io.base import LatestFrameSlot, Sink, Source
from .io.safety import refuse_input_as_output
from .io.reconnect import recovery_report
from .schedule import ScheduledSwap, parse_schedule
from .stats import RunStats
from .style_controls import StyleControls
from .stylizer import StyleState, Stylizer

__all__ = ["Pipeline", "ScheduledSwap", "parse_schedule"]

log = logging.getLogger(__name__)

_END = object()


class _Latest(LatestFrameSlot):
    """Live-mode stage buffer: the sources' latest-wins slot speaking the pipeline's queue protocol
    (``put`` says whether it replaced an unread frame; ``_END`` marks the end without discarding
    an unread frame; an empty wait raises ``queue.Empty``)."""

    def put(self, item: Any) -> bool:  # type: ignore[override]
        if item is _END:
            self.finish()
            return False
        before = self.dropped
        super().put(item)
        return self.dropped > before

    def get(self, timeout: float | None = None) -> Any:  # type: ignore[override]
        try:
            frame = super().get(timeout)
        except TimeoutError:
            raise queue.Empty from None
        return _END if frame is None else frame

    def has_newer(self) -> bool:
        """Whether a newer frame is waiting (the caller then drops the one it holds and takes it)."""
        with self._cond:
            return self._frame is not None

    def discard(self) -> int:
        """Drop an unread frame; returns how many (0 or 1)."""
        with self._cond:
            had = int(self._frame is not None)
            self._frame = None
            return had


class _Bounded:
    def __init__(self, size: int) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=size)

    def put(self, item: Any, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float | None = None) -> Any:
        return self._q.get(timeout=timeout)


class Pipeline(StyleControls):
    """Run frames from a source through a stylizer into sinks, stages overlapped.

    The style controls (:meth:`swap`, :meth:`next_style`, :meth:`scale_brush` ...) come from
    :class:`~rtstyle.style_controls.StyleControls`; schedules from :mod:`rtstyle.schedule`.

    Args:
        source: where frames come from (its ``info.live`` picks live vs file semantics).
        stylizer: the :class:`Stylizer` (its style may be swapped while running).
        sinks: one or more sinks; each receives every frame (file) or the latest (live).
        live: override the source's semantics.
        queue_size: depth of the bounded queues in file mode.
        schedule: style swaps at given times/frames (file jobs: exact frame, nothing dropped).
        styles: the cycle used by next/previous-style hotkeys and the control endpoint.
        max_frames: stop after this many frames read.
        on_frame: called in the writer thread with every output frame (progress bars, tests).
        swap_hold: live mode on the CPU: while a requested style change is being prepared, the
            stylize stage waits for it up to this many seconds instead of stylising frames with the
            old style. On a 2-core CPU the preparation (a VGG pass over the new style image) and the
            hot path share the cores; holding lets the new style arrive sooner (MetaNet, 2-core box:
            docs/benchmarks.md, "Figures behind design choices") at the cost of a
            short freeze, counted as dropped frames. ``None``: 0.3 s
            on the CPU, 0 on CUDA (the GPU stream runs beside the CPU-side preparation). File mode
            never holds or drops.

    Use ``run()`` (blocking; Ctrl-C stops cleanly and finalises the sinks) or ``start()`` /
    ``stop()`` / ``wait()``.
    """

    def __init__(
        self,
        source: Source,
        stylizer: Stylizer,
        sinks: Sequence[Sink] | Sink = (),
        *,
        live: bool | None = None,
        queue_size: int = 8,
        schedule: Sequence[ScheduledSwap] = (),
        styles: Sequence[str] = (),
        max_frames: int | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        swap_hold: float | None = None,
    ) -> None:
        self.source = source
        if swap_hold is None:
            swap_hold = 0.0 if stylizer.device.type == "cuda" else 0.3
        if swap_hold < 0:
            raise ValueError(f"swap_hold must be >= 0 seconds, got {swap_hold}")
        self.swap_hold = float(swap_hold)
        self.stylizer = stylizer
        self.sinks: list[Sink] = [sinks] if isinstance(sinks, Sink) else list(sinks)
        self.live = bool(source.info.live if live is None else live)
        self.schedule = list(schedule)
        self.styles = list(styles)
        self.max_frames = max_frames
        self.on_frame = on_frame
        self.stats = RunStats()
        # The newest frame the sinks were given, for readers outside the stages (the control page's
        # preview); replaced by reference in the writer thread, never copied or mutated.
        self.latest: Frame | None = None
        self.paused = threading.Event()
        self._stop = threading.Event()  # stop reading (Ctrl-C, quit key, max_frames)
        self._abort = threading.Event()  # a stage failed: everything stops now
        self._reading_done = threading.Event()
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._frozen = False
        if self.live:
            self._q_in: Any = _Latest()
            self._q_out: Any = _Latest()
        else:
            self._q_in = _Bounded(queue_size)
            self._q_out = _Bounded(queue_size)
        self._pending: list[tuple[ScheduledSwap, Future[StyleState]]] = []
        self._style_idx = 0
        if source.info.width and source.info.height:
            stylizer.set_frame_size(source.info.width, source.info.height)
        refuse_input_as_output(source.info.path, self.sinks)  # the input is never written over
        for s in self.sinks:
            s.bind(self)

    # ------------------------------------------------------------------ controls (any thread)
    # swap / next_style / previous_style / scale_brush / brush_*: rtstyle.style_controls.StyleControls
    def toggle_pause(self) -> None:
        if self.paused.is_set():
            self.paused.clear()
        else:
            self.paused.set()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def pending_swaps(self) -> list[ScheduledSwap]:
        """Scheduled swaps not applied (yet): after a file run, those past the end of the input."""
        return [sw for sw, _ in self._pending]

    # ------------------------------------------------------------------ stages
    def _fail(self, e: BaseException) -> None:
        self._errors.append(e)
        self._abort.set()
        self._stop.set()

    def _reader(self) -> None:
        st = self.stats
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and st.frames_in >= self.max_frames:
                    break
                t0 = time.perf_counter()
                frame = self.source.read()
                if frame is None:
                    break
                st.stages["read"].add(time.perf_counter() - t0)
                st.frames_in += 1
                if self.live:
                    if self._q_in.put(frame):
                        st.drop()
                elif not self._q_in.put(frame, self._abort):
                    break
        except BaseException as e:  # noqa: BLE001 - re-raised from run()
            self._fail(e)
        finally:
            self._reading_done.set()
            if self.live:
                self._q_in.put(_END)
            else:
                self._q_in.put(_END, self._abort)

    def _apply_schedule(self, frame: Frame) -> None:
        fps = self.source.info.fps
        for item in list(self._pending):
            sw, fut = item
            if sw.due(frame, fps):
                state = fut.result()  # file mode: wait rather than drop; prepared in advance
                self.stylizer.activate(state)
                self._pending.remove(item)
                log.info("frame %d: switched to %s", frame.index, state.name)

    _STOP_WORKER = object()

    def _next_input(self) -> Any:
        """Next frame, ``_END``, or ``_STOP_WORKER`` when the worker must quit now."""
        while True:
            try:
                return self._q_in.get(timeout=0.1)
            except queue.Empty:
                if self._abort.is_set() or (self._stop.is_set() and self.live):
                    return self._STOP_WORKER

    def _take(self) -> Any:
        """Next frame to stylise with due swaps applied; ``None`` for a frame skipped while
        paused; or ``_END`` / ``_STOP_WORKER``."""
        item = self._next_input()
        if item is _END or item is self._STOP_WORKER:
            return item
        if self.paused.is_set() and self.live:
            self.stats.drop()
            return None
        if self.live and self.swap_hold > 0 and self._hold_for_swap():
            # the frame waited while the new style was prepared: a fresher one may have arrived
            if self._q_in.has_newer():
                self.stats.drop()
                return None
        if self._pending:
            self._apply_schedule(item)
        return item

    def _hold_for_swap(self) -> bool:
        """Live: wait (at most ``swap_hold`` from the request) for a style change being prepared.
        Returns whether it waited."""
        pending = self.stylizer.pending_swap()
        if pending is None:
            return False
        fut, since = pending
        left = self.swap_hold - (time.perf_counter() - since)
        if left <= 0:
            return False
        wait([fut], timeout=left)
        return True

    def _emit(self, out: Frame) -> bool:
        st = self.stats
        if not out.meta.get("slate"):
            st.stages["preprocess"].add(out.meta["t_pre"])
            st.stages["inference"].add(out.meta["t_infer"])
            st.stages["postprocess"].add(out.meta["t_post"])
        if self.live:
            if self._q_out.put(out):
                st.drop()
            return not self._stop.is_set()
        return self._q_out.put(out, self._abort)

    def _worker(self) -> None:
        try:
            if self.stylizer.device.type == "cuda":  # the staged path honours the whole frame contract
                self._worker_cuda()
                return
            while True:
                frame = self._take()
                if frame is _END or frame is self._STOP_WORKER:
                    break
                # a source's "signal lost" slate (io.reconnect) goes out as drawn: stylising would smear its text
                if frame is not None and not self._emit(frame if frame.meta.get("slate") else self.stylizer(frame)):
                    break
        except BaseException as e:  # noqa: BLE001
            self._fail(e)
        finally:
            if self.live:
                self._q_out.put(_END)
            else:
                self._q_out.put(_END, self._abort)

    def _worker_cuda(self) -> None:
        """GPU path: uploads, compute and downloads of consecutive frames overlap (rtstyle.gpu)."""
        from .gpu import StagedStylizer

        db = StagedStylizer(self.stylizer)
        while True:
            frame = self._take()
            if frame is self._STOP_WORKER:
                return
            if frame is _END:
                break
            if frame is None:
                continue
            if frame.meta.get("slate"):  # sent as drawn, as in _worker
                if not self._emit(frame):
                    return
                continue
            ready = db.push(frame)
            if ready is not None and not self._emit(ready):
                return
        for ready in db.flush():
            if not self._emit(ready):
                return

    def _writer(self) -> None:
        st = self.stats
        try:
            while True:
                try:
                    item = self._q_out.get(timeout=0.1)
                except queue.Empty:
                    if self._abort.is_set():
                        break
                    for s in self.sinks:  # keep interactive sinks responsive while paused/idle
                        s.poll()
                    continue
                if item is _END:
                    break
                frame: Frame = item
                now = time.perf_counter()
                latency = now - frame.captured_at
                frame.meta["latency_ms"] = 1000 * latency
                frame.meta["fps"] = st.fps_ema
                t0 = time.perf_counter()
                for s in self.sinks:
                    s.write(frame)
                t1 = time.perf_counter()
                self.latest = frame
                st.stages["write"].add(t1 - t0)
                if self.live:
                    st.latency.add(t1 - frame.captured_at)
                st.tick_out(t1)
                if self.on_frame is not None:
                    self.on_frame(frame)
        except BaseException as e:  # noqa: BLE001
            self._fail(e)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Pipeline":
        if self._threads:
            raise RuntimeError("pipeline already started")
        if self.live:
            # Everything alive now (models, backends, the first style) lives for the whole run: move
            # it out of the cyclic GC's reach, so that a full collection (triggered by the objects a
            # style change creates) does not walk it. Without this every few MetaNet style changes
            # paused on a collection (docs/benchmarks.md); with it, none did.
            gc.collect()
            gc.freeze()
            self._frozen = True  # undone in wait(), when the stages have finished
        # Scheduled styles are prepared off the hot path, ahead of time.
        self._pending = [(sw, self.stylizer.prefetch(sw.model, style_image=sw.style_image,
                                                     style_vector=sw.style_vector, options=sw.options))
                         for sw in self.schedule]
        self.stats = RunStats()
        # The stylize thread runs the model from now on: free this thread's OpenMP pool, or every
        # idle OpenMP worker falls back to sleeping between parallel regions (rtstyle._openmp;
        # the slower eager frames this caused are in docs/benchmarks.md, "OpenMP pools").
        release_thread_pool()
        for name, fn in (("read", self._reader), ("stylize", self._worker), ("write", self._writer)):
            t = threading.Thread(target=fn, name=f"rtstyle-{name}", daemon=True)
            self._threads.append(t)
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Ask the stages to stop; in file mode frames already read are still written."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the stages to finish; True if they did.

        Sinks with a GUI (the preview window) are drawn and their events handled here, on the
        calling thread, while waiting: call ``run()`` / ``wait()`` from the main thread then.
        """
        deadline = None if timeout is None else time.perf_counter() + timeout
        gui = [s for s in self.sinks if s.needs_gui_thread]
        for t in self._threads:
            while t.is_alive():
                if gui:
                    try:
                        for s in gui:
                            s.pump(0.02)
                    except Exception as e:  # noqa: BLE001 - stops the stages; re-raised from run()
                        self._fail(e)
                        gui = []
                else:
                    t.join(0.1)
                if deadline is not None and time.perf_counter() > deadline:
                    return False
        if self._frozen:  # give the objects frozen at start back to the collector
            self._frozen = False
            gc.unfreeze()
        return True

    def run(self, duration: float | None = None) -> RunStats:
        """Run to the end of the source (or until stopped, or ``duration`` seconds) and finalise
        the sinks.

        Ctrl-C stops reading, lets the frames in flight reach the sinks and closes them
        normally, so a file output is playable up to where it stopped. Errors from any stage are
        re-raised here after partial outputs are removed.
        """
        self.start()
        interrupted = False
        try:
            if duration is not None and not self.wait(timeout=duration):
                self.stop()
            self.wait()
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: finishing frames in flight")
            self.stop()
            self.wait(timeout=30)
        finally:
            self.stats.ended = time.perf_counter()
            for t in self._threads:
                t.join(1.0)
            if self.live:  # frames still waiting in the one-slot buffers were never shown
                self.stats.drop(self._q_in.discard() + self._q_out.discard())
            failed = bool(self._errors)
            for s in self.sinks:
                try:
                    s.abort() if failed else s.close()
                except Exception as e:  # noqa: BLE001 - report the first sink error
                    if not failed:
                        self._errors.append(e)
        if self._errors:
            raise self._errors[0]
        if interrupted:
            raise KeyboardInterrupt
        return self.stats

    def _report_fields(self) -> dict[str, Any]:
        st = self.stylizer
        pd = st.precision_decision  # precision "auto": what it became and why
        return dict(model=st.spec.name, style=st.style_name, backend=st.backend_name, device=str(st.device),
                    device_requested=st.device_requested,
                    precision=pd.precision if pd is not None else st.precision,
                    precision_reason=pd.reason if pd is not None else "as requested", live=self.live, swaps=st.swaps,
                    **recovery_report(self.source, self.sinks))  # reconnects / outage_s of sources and sinks

    def report(self, **extra: Any) -> dict[str, Any]:
        """The run report: model/backend/device, frame counts, fps, per-stage times, latency."""
        return self.stats.report(**{**self._report_fields(), **extra})

    def write_report(self, path: str | Path, **extra: Any) -> dict[str, Any]:
        """Write :meth:`report` as JSON to ``path``."""
        return self.stats.write_report(path, **{**self._report_fields(), **extra})

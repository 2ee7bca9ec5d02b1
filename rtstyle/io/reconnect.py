"""Live sources that come back: :class:`ReconnectingSource` and the recovery report.

A USB camera that hiccups, a capture device that is unplugged and plugged back, or a network
stream whose sender restarts must not end a live run (a virtual camera in OBS would go black).
:class:`ReconnectingSource` wraps a *factory* of the real source: it keeps the sinks fed at the
source's rate while the signal is gone (the last frame, then a "signal lost" slate), reopens the
source with exponential backoff and carries on when frames come again.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..frame import Frame
from .base import LatestFrameSlot, Source

__all__ = ["ReconnectingSource", "Recovering", "recovery_report"]

log = logging.getLogger(__name__)


@runtime_checkable
class Recovering(Protocol):
    """A source or sink that survives outages and counts them (reported by the pipeline)."""

    def recovery_stats(self) -> dict[str, Any]:
        """Counters such as ``reconnects`` and ``outage_s``."""
        ...


def recovery_report(source: object, sinks: Iterable[object]) -> dict[str, Any]:
    """Report fields for a run: ``reconnects`` / ``outage_s`` of the source (when it recovers)
    and ``sink_recovery``, one entry per sink that reconnects (e.g. an RTMP stream; its
    ``recovery_stats()`` may name it with a ``"sink"`` key, else the class name is used)."""
    out: dict[str, Any] = {}
    if isinstance(source, Recovering):
        st = source.recovery_stats()
        out.update(reconnects=st["reconnects"], outage_s=st["outage_s"], source_recovery=st)
    sink_stats = [{"sink": type(s).__name__, **s.recovery_stats()} for s in sinks if isinstance(s, Recovering)]
    if sink_stats:
        out["sink_recovery"] = sink_stats
    return out


def _reason(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def _close_quietly(src: Source | None) -> None:
    if src is None:
        return
    try:
        src.close()
    except Exception as exc:  # a vanished device may fail to close; it is being replaced anyway
        log.debug("closing a lost source: %s", _reason(exc))


class ReconnectingSource(Source):
    """A live source that outlives the outages of the source it wraps.

    ``factory()`` opens the real source (e.g. ``lambda: CameraSource(0)``). The first call happens
    here and its errors propagate: a camera that is not there at start is the user's error. After
    that, when the source raises, ends, or delivers nothing for ``stall_timeout`` seconds, it is
    closed and reopened by calling ``factory()`` again, waiting ``backoff`` seconds after the
    first failed attempt, doubling up to ``backoff_max``.

    Meanwhile :meth:`read` keeps returning frames at the source's rate: the last real frame for
    the first ``slate_after`` seconds of the gap, then a slate (the last frame dimmed and greyed
    with "SIGNAL LOST" drawn on it) that carries ``meta["slate"] = True``: the pipeline sends it
    to the sinks as drawn instead of stylising its text away. Every frame handed out gets this
    source's own index and a ``pts`` on one clock, so sinks see one unbroken stream across
    reopens; a reopened source of another size is resized to the first one's.

    Args:
        factory: opens the wrapped source; raises (typically :class:`SourceError`) when it cannot.
        name: what log lines and errors call the source.
        hold_after: seconds without a frame before the last frame is repeated.
        slate_after: seconds without a frame before the slate replaces the repeated frame.
        stall_timeout: seconds without a frame after which an open source counts as dead.
        give_up_after: seconds without a frame after which :meth:`read` ends the stream (returns
            ``None``, so that sinks are finalised and a recording is kept) and :attr:`gave_up` says
            why in one line; ``None``: never give up.
        backoff / backoff_max: first and longest wait between failed reopen attempts.
    """

    def __init__(
        self,
        factory: Callable[[], Source],
        *,
        name: str | None = None,
        hold_after: float = 0.5,
        slate_after: float = 3.0,
        stall_timeout: float = 2.0,
        give_up_after: float | None = None,
        backoff: float = 0.25,
        backoff_max: float = 8.0,
    ) -> None:
        for key, value in (("hold_after", hold_after), ("slate_after", slate_after),
                           ("stall_timeout", stall_timeout), ("backoff", backoff), ("backoff_max", backoff_max)):
            if value <= 0:
                raise ValueError(f"{key} must be > 0 seconds, got {value}")
        if give_up_after is not None and give_up_after <= 0:
            raise ValueError(f"give_up_after must be > 0 seconds or None, got {give_up_after}")
        self._factory = factory
        self.hold_after = float(hold_after)
        self.slate_after = float(slate_after)
        self.stall_timeout = float(stall_timeout)
        self.give_up_after = None if give_up_after is None else float(give_up_after)
        self.backoff = float(backoff)
        self.backoff_max = max(float(backoff_max), self.backoff)
        first = factory()
        self.name = name or str(first.info.path or first.info.extra.get("device", type(first).__name__))
        self.info = dataclasses.replace(first.info, live=True, frame_count=None)
        self.fps = first.info.fps if first.info.fps > 0 else 30.0
        self._lock = threading.Lock()
        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._closed = False
        self._current: Source | None = first
        self._gen = 0  # bumped when a stalled source is abandoned: its pump thread must not deliver
        now = time.perf_counter()
        self._t0 = now
        self._last_arrival = now  # when the pump last received a real frame
        self._alive_since = now  # when the current source was opened
        self._last_image: np.ndarray | None = None
        self._last_emit = 0.0
        self._last_pts = -1.0
        self._index = 0
        self._gap_start: float | None = None  # set while substitutes are being handed out
        self._slate_cache: tuple[int, np.ndarray] | None = None
        self._slate_base: np.ndarray | None = None
        self._outage_done = 0.0
        self.outages = 0
        self.reconnects = 0
        self.failed_attempts = 0
        self.frames_held = 0
        self.frames_slate = 0
        #: why the stream ended early (``give_up_after`` passed without a frame), else ``None``
        self.gave_up: str | None = None
        self._pumps: list[threading.Thread] = []
        self._start_pump(first, 0)

    # -- counters ---------------------------------------------------------------------------
    @property
    def outage_s(self) -> float:
        """Seconds without a real frame, summed over the gaps the sinks were fed substitutes in."""
        with self._lock:
            ongoing = time.perf_counter() - self._gap_start if self._gap_start is not None else 0.0
            return self._outage_done + ongoing

    def recovery_stats(self) -> dict[str, Any]:
        """``reconnects``, ``outage_s``, ``outages``, ``failed_attempts``, ``frames_held``, ``frames_slate``."""
        outage = round(self.outage_s, 3)
        with self._lock:
            return dict(reconnects=self.reconnects, outage_s=outage, outages=self.outages,
                        failed_attempts=self.failed_attempts, frames_held=self.frames_held,
                        frames_slate=self.frames_slate)

    # -- pump threads: read the wrapped source, reopen it when it fails ----------------------
    def _start_pump(self, src: Source | None, gen: int) -> None:
        t = threading.Thread(target=self._pump, args=(src, gen), name="rtstyle-reconnect", daemon=True)
        self._pumps = [p for p in self._pumps if p.is_alive()] + [t]
        t.start()

    def _pump(self, src: Source | None, gen: int) -> None:
        # A source that opens but fails before its first frame (a stream that connects, then breaks)
        # would be reopened in a tight loop: such reopens back off too, until a frame comes.
        pause = 0.0
        while not self._stop.is_set():
            if src is None:
                if pause and self._stop.wait(pause):
                    return
                src = self._reopen(gen)
                if src is None:
                    return
            reason, delivered = self._drain(src, gen)
            pause = 0.0 if delivered else min(max(self.backoff, 2 * pause), self.backoff_max)
            with self._lock:
                if gen != self._gen:  # abandoned as stalled; another pump owns the job now
                    return
                self._current = None
            if self._stop.is_set():
                _close_quietly(src)
                return
            log.warning("%s: %s; reopening", self.name, reason)
            _close_quietly(src)
            src = None

    def _drain(self, src: Source, gen: int) -> tuple[str, bool]:
        """Read ``src`` into the slot until it fails; returns why it stopped and whether it delivered."""
        delivered = False
        while not self._stop.is_set():
            try:
                frame = src.read()
            except Exception as exc:  # any failure of a live source is an outage, not the end
                return _reason(exc), delivered
            if frame is None:
                return "the source ended", delivered
            with self._lock:
                if gen != self._gen:
                    return "abandoned", delivered
                self._last_arrival = time.perf_counter()
            self._slot.put(frame)
            delivered = True
        return "closed", delivered

    def _reopen(self, gen: int) -> Source | None:
        delay = self.backoff
        while not self._stop.is_set():
            try:
                src = self._factory()
            except Exception as exc:  # the device is still gone: wait and try again
                with self._lock:
                    self.failed_attempts += 1
                log.info("%s: reopening failed (%s); next try in %.2g s", self.name, _reason(exc), delay)
                if self._stop.wait(delay):
                    return None
                delay = min(2 * delay, self.backoff_max)
                continue
            with self._lock:
                if gen == self._gen and not self._stop.is_set():
                    self._current = src
                    self._alive_since = time.perf_counter()
                    self.reconnects += 1
                    n = self.reconnects
                    src_ok = True
                else:
                    src_ok = False
            if not src_ok:
                _close_quietly(src)
                return None
            log.warning("%s: reopened (reconnect %d)", self.name, n)
            return src
        return None

    def _abandon_stalled(self, now: float) -> None:
        """The open source delivered nothing for ``stall_timeout``: replace it without waiting for it."""
        with self._lock:
            stuck = self._current
            if stuck is None:
                return
            self._gen += 1
            gen = self._gen
            self._current = None
        log.warning("%s: no frame for %.1f s; reopening", self.name, now - max(self._last_arrival, self._alive_since))
        # close() of a stuck device may block (a driver call that never returns): not in read().
        threading.Thread(target=_close_quietly, args=(stuck,), name="rtstyle-reconnect-close", daemon=True).start()
        self._start_pump(None, gen)

    # -- consumer side ----------------------------------------------------------------------
    def read(self) -> Frame | None:
        """The newest real frame, or a substitute when none came in time; ``None`` once closed or
        given up (see :attr:`gave_up`)."""
        interval = 1.0 / self.fps
        while not self._closed and self.gave_up is None:
            try:  # a frame that is already waiting goes out before any verdict on the signal
                frame = self._slot.get(timeout=0)
            except TimeoutError:
                pass
            else:
                return None if frame is None else self._real(frame)
            now = time.perf_counter()
            with self._lock:
                last = self._last_arrival
                current, alive = self._current, max(self._last_arrival, self._alive_since)
            gap = now - last
            if self.give_up_after is not None and gap >= self.give_up_after:
                self.gave_up = f"{self.name}: no frames for {self.give_up_after:g} s, giving up"
                log.error("%s", self.gave_up)
                return None
            if current is not None and now - alive >= self.stall_timeout:
                self._abandon_stalled(now)
            if gap < self.hold_after or self._last_image is None:
                timeout = self.hold_after - gap if self._last_image is not None else interval
            else:
                timeout = self._last_emit + interval - now
            if self.give_up_after is not None:
                timeout = min(timeout, self.give_up_after - gap)
            try:
                frame = self._slot.get(timeout=max(0.0, min(timeout, self.stall_timeout)))
            except TimeoutError:
                now = time.perf_counter()
                if self._last_image is not None and now - last >= self.hold_after and now >= self._last_emit + interval:
                    return self._substitute(now, now - last, last)
                continue
            if frame is None:
                return None
            return self._real(frame)
        return None

    def _stamp(self, frame: Frame, at: float) -> Frame:
        frame.index = self._index
        self._index += 1
        self._last_pts = frame.pts = max(at - self._t0, self._last_pts + 1e-3)
        self._last_emit = time.perf_counter()
        return frame

    def _real(self, frame: Frame) -> Frame:
        w, h = self.info.width, self.info.height
        if w and h and (frame.width, frame.height) != (w, h):
            import cv2

            frame = frame.with_image(cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_AREA))
        with self._lock:
            if self._gap_start is not None:
                lost = time.perf_counter() - self._gap_start
                self._outage_done += lost
                self._gap_start = None
                self._slate_base = None
                self._slate_cache = None
                log.warning("%s: frames back after %.1f s", self.name, lost)
        self._last_image = frame.image
        return self._stamp(frame, frame.captured_at)

    def _substitute(self, now: float, gap: float, last: float) -> Frame:
        with self._lock:
            if self._gap_start is None:
                self._gap_start = last
                self.outages += 1
            if gap >= self.slate_after:
                self.frames_slate += 1
            else:
                self.frames_held += 1
        assert self._last_image is not None
        if gap >= self.slate_after:
            frame = Frame(self._slate(int(gap)), index=0, captured_at=now, meta={"slate": True})
        else:
            frame = Frame(self._last_image, index=0, captured_at=now, meta={"held": True})
        return self._stamp(frame, now)

    def _slate(self, seconds: int) -> np.ndarray:
        """The last frame dimmed and greyed, with "SIGNAL LOST" and the time since (redrawn once a second)."""
        if self._slate_cache is not None and self._slate_cache[0] == seconds:
            return self._slate_cache[1]
        import cv2

        if self._slate_base is None:
            grey = cv2.cvtColor(cv2.cvtColor(self._last_image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            self._slate_base = (grey.astype(np.uint16) * 3 // 10).astype(np.uint8)
        img = self._slate_base.copy()
        h, w = img.shape[:2]
        font = cv2.FONT_HERSHEY_SIMPLEX
        for text, rel, y_frac in (("SIGNAL LOST", 1.0, 0.47), (f"reconnecting ({seconds} s)", 0.5, 0.62)):
            scale = max(0.3, rel * w / 480)
            thick = max(1, round(2 * scale))
            (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
            org = ((w - tw) // 2, int(h * y_frac) + th // 2)
            cv2.putText(img, text, org, font, scale, (255, 255, 255), thick, cv2.LINE_AA)
        self._slate_cache = (seconds, img)
        return img

    def close(self) -> None:
        """Stop reopening and close the wrapped source. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._slot.finish()  # wakes a reader blocked in another thread
        with self._lock:
            current, self._current = self._current, None
        _close_quietly(current)
        for t in self._pumps:
            t.join(timeout=10.0)
            if t.is_alive():
                log.warning("%s: a reconnect thread did not stop", self.name)

"""Progress of a distributed job: workers report frames to one actor, the driver shows one bar.

Each task attempt announces itself (:meth:`ProgressActor.start`, with its process id) and then
reports frames written in small batches. A retried chunk starts again from zero; the actor counts
for each task the most frames any attempt reached, so the bar never goes backwards and ends at
exactly the job's frame count.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProgressActor", "ProgressSnapshot", "Reporter"]


@dataclass
class ProgressSnapshot:
    """What the driver sees of the running job.

    Attributes:
        frames: frames written so far over all tasks (the best attempt of each).
        attempts: task key -> attempts started.
        running: task key -> ``(pid, frames of the current attempt)`` of attempts not finished.
    """

    frames: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    running: dict[str, tuple[int, int]] = field(default_factory=dict)


class ProgressActor:
    """The job's frame counter (run as a Ray actor with no CPU of its own)."""

    def __init__(self) -> None:
        self._best: dict[str, int] = {}
        self._current: dict[str, int] = {}
        self._attempts: dict[str, int] = {}
        self._pids: dict[str, int] = {}
        self._finished: set[str] = set()

    def start(self, key: str, pid: int) -> int:
        """An attempt of task ``key`` began in process ``pid``; returns the attempt number (1, 2, ...)."""
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._current[key] = 0
        self._pids[key] = pid
        self._finished.discard(key)
        return self._attempts[key]

    def advance(self, key: str, frames: int) -> None:
        self._current[key] = self._current.get(key, 0) + frames
        self._best[key] = max(self._best.get(key, 0), self._current[key])

    def finish(self, key: str) -> None:
        self._finished.add(key)

    def snapshot(self) -> ProgressSnapshot:
        running = {k: (self._pids[k], self._current.get(k, 0)) for k in self._pids if k not in self._finished}
        return ProgressSnapshot(frames=sum(self._best.values()), attempts=dict(self._attempts), running=running)


class Reporter:
    """Worker side: batches frame counts to the actor (a call every ``every`` seconds at most)."""

    def __init__(self, actor: Any, key: str, every: float = 0.25) -> None:
        self.actor, self.key, self.every = actor, key, every
        self.attempt = 0
        self._pending = 0
        self._last = time.perf_counter()

    def start(self) -> int:
        import ray

        self.attempt = int(ray.get(self.actor.start.remote(self.key, os.getpid())))
        return self.attempt

    def frame(self) -> None:
        self._pending += 1
        now = time.perf_counter()
        if now - self._last >= self.every:
            self.flush()
            self._last = now

    def flush(self) -> None:
        if self._pending:
            self.actor.advance.remote(self.key, self._pending)  # calls from one caller arrive in order
            self._pending = 0

    def finish(self) -> None:
        self.flush()
        self.actor.finish.remote(self.key)

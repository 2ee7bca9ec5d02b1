"""Per-stage timers, an EMA fps counter and the JSON run report."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StageTimer", "RunStats"]


class StageTimer:
    """Running mean/percentiles of one stage's durations over a bounded window (memory flat)."""

    def __init__(self, window: int = 4096) -> None:
        self.samples: deque[float] = deque(maxlen=window)
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.count += 1
        self.total += seconds

    def summary(self) -> dict[str, float]:
        if not self.count:
            return {"count": 0}
        a = np.fromiter(self.samples, float)
        return {
            "count": self.count,
            "mean_ms": round(1000 * self.total / self.count, 3),
            "p50_ms": round(1000 * float(np.percentile(a, 50)), 3),
            "p95_ms": round(1000 * float(np.percentile(a, 95)), 3),
        }


@dataclass
class RunStats:
    """Counters of one pipeline run. Updated by the stage threads, read by anyone."""

    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None
    fps_ema: float = 0.0
    stages: dict[str, StageTimer] = field(default_factory=lambda: {
        k: StageTimer() for k in ("read", "preprocess", "inference", "postprocess", "write")})
    latency: StageTimer = field(default_factory=lambda: StageTimer(window=20000))
    _last_out: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick_out(self, now: float) -> None:
        with self._lock:
            self.frames_out += 1
            if self._last_out is not None:
                dt = now - self._last_out
                if dt > 0:
                    inst = 1.0 / dt
                    self.fps_ema = inst if self.fps_ema == 0 else 0.9 * self.fps_ema + 0.1 * inst
            self._last_out = now

    def drop(self, n: int = 1) -> None:
        with self._lock:
            self.frames_dropped += n

    @property
    def wall_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def report(self, **extra: Any) -> dict[str, Any]:
        wall = self.wall_s
        lat = self.latency.summary()
        rep: dict[str, Any] = dict(extra)
        rep.update(
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            frames_dropped=self.frames_dropped,
            wall_s=round(wall, 4),
            fps=round(self.frames_out / wall, 3) if wall > 0 else 0.0,
            stages={k: v.summary() for k, v in self.stages.items()},
        )
        if lat.get("count"):
            rep["latency_ms_p50"] = lat["p50_ms"]
            rep["latency_ms_p95"] = lat["p95_ms"]
        return rep

    def write_report(self, path: str | Path, **extra: Any) -> dict[str, Any]:
        rep = self.report(**extra)
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(rep, indent=2) + "\n")
        return rep

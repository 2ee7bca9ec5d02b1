#!/usr/bin/env python
"""Cost of showing one frame in the preview window (:class:`rtstyle.io.WindowSink`).

    DISPLAY=:1 python tools/bench_window.py                  # 640x480 and 1280x720, 200 frames each
    DISPLAY=:1 python tools/bench_window.py --sizes 1920x1080 --frames 100

Times the two halves separately, as the pipeline runs them: ``write`` (writer thread: copy the
frame and draw the fps/latency/style overlay) and ``pump`` (GUI thread: blit to the window, flip,
handle events). Needs a display (a desktop, or ``Xvfb :1 -screen 0 1920x1080x24 &``); under Xvfb
the X server draws in software on the same CPUs, so a desktop with a GPU is faster.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rtstyle.frame import Frame
from rtstyle.io import WindowSink


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=_size, nargs="+", default=[(640, 480), (1280, 720)])
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'size':>10}  {'write ms':>9}  {'pump ms':>8}  (medians of {args.frames} frames)")
    for w, h in args.sizes:
        frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
        meta = {"fps": 29.9, "latency_ms": 45.0, "style": "johnson.starry_night_lite"}
        sink = WindowSink("rtstyle bench")
        t_write, t_pump = [], []
        try:
            for i in range(args.frames + 10):
                t0 = time.perf_counter()
                sink.write(Frame(frames[i % 4], i, meta=dict(meta)))
                t1 = time.perf_counter()
                sink.pump(0.0)
                t2 = time.perf_counter()
                if i >= 10:  # the first frames create the window
                    t_write.append(t1 - t0)
                    t_pump.append(t2 - t1)
        finally:
            sink.close()
        print(f"{w:>5}x{h:<4}  {1e3 * statistics.median(t_write):9.2f}  {1e3 * statistics.median(t_pump):8.2f}")


if __name__ == "__main__":
    main()

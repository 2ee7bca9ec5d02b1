"""Memory over a long run: resident set size sampled while N frames go through the pipeline.

    python tools/bench_memory.py --frames 5000 --size 240 --json out/memory.json

Uses the synthetic source in non-live mode (as fast as the model allows) and a null sink, so
only the pipeline and stylizer are measured. Prints RSS every --every frames and the growth
between the first and last quarter of the run.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main(argv: list[str] | None = None) -> None:
    from rtstyle.cli import DEFAULT_MODEL
    from rtstyle.io import NullSink, SyntheticSource
    from rtstyle.pipeline import Pipeline
    from rtstyle.stylizer import Stylizer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--size", type=int, default=240, help="internal short side")
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    samples: list[tuple[int, float]] = []

    def on_frame(f) -> None:
        if f.index % a.every == 0:
            samples.append((f.index, rss_mb()))
            print(f"frame {f.index:>6}  rss {samples[-1][1]:8.1f} MB", flush=True)

    st = Stylizer(a.model, backend=a.backend, size=a.size, frame_size=(640, 480))
    t0 = time.perf_counter()
    with SyntheticSource(640, 480, fps=30, frames=a.frames, live=False) as src:
        Pipeline(src, st, [NullSink()], on_frame=on_frame).run()
    wall = time.perf_counter() - t0
    q = max(1, len(samples) // 4)
    first = sum(m for _, m in samples[1 : 1 + q]) / max(1, len(samples[1 : 1 + q]))
    last = sum(m for _, m in samples[-q:]) / q
    rep = {"frames": a.frames, "wall_s": wall, "rss_first_quarter_mb": first, "rss_last_quarter_mb": last,
           "growth_mb": last - first, "samples": samples}
    print(f"{a.frames} frames in {wall:.0f} s; RSS first quarter {first:.1f} MB, last quarter {last:.1f} MB, growth {last - first:+.1f} MB")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rep, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Naive single-threaded loop vs rtstyle file mode, plus the synthetic live run.

Thin over :func:`rtstyle.bench.run_bench` (also reachable as ``rtstyle bench``):

    python tools/bench_pipeline.py --model johnson.starry_night_lite --backends eager,openvino \
        --clip ../shared/media/videos/imageio_cockatoo_yuv420.mp4 --frames 60 --live-seconds 20 \
        --live-size 240 --json out/bench_pipeline.json
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from rtstyle.bench import run_bench
from rtstyle.cli import DEFAULT_MODEL


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--backends", default="eager")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--clip", default=None, help="real video to take frames from (default: the bundled sample)")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--live-seconds", type=float, default=0.0)
    ap.add_argument("--live-size", type=int, default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    w, h = map(int, a.size.split("x"))
    rep = run_bench(a.model, a.backends.split(","), (w, h), a.frames, precision=a.precision, clip_src=a.clip,
                    live_seconds=a.live_seconds, live_size=a.live_size)
    rep["machine"] = {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rep, indent=2) + "\n")


if __name__ == "__main__":
    main()

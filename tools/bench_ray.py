"""One process vs Ray chunks on the same clip: throughput, overhead, expected scaling, seams.

Runs ``rtstyle stylize`` twice as a user would (separate processes, wall clock end to end):
once in one process (all cores), once with ``--ray`` on an embedded cluster (one task per CPU of this
machine, one thread each), and reads the ``--report`` of both. With ``--temporal S`` it also compares
the warping error (rtstyle.temporal, Lai et al. 2018) of frame pairs that straddle a chunk boundary
with pairs inside a chunk, for the chunked output with the default warm-up, with no warm-up, and
for the one-process output at the same pairs:

    python tools/bench_ray.py --clip ../shared/media/videos/moviepy_video_with_failing_audio.mp4 \
        --chunk-seconds 3 --temporal 0.8 --json out/bench_ray.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _run(args: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rtstyle.cli", "-q", *args], check=True, env=env)
    return time.perf_counter() - t0


def _frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def _seams(out: Path, inputs: list[np.ndarray], starts: list[int]) -> dict[str, float]:
    """Mean warping error of the pairs (s-1, s) at chunk starts vs all other pairs."""
    from rtstyle.temporal import pair_warping_errors

    errs = pair_warping_errors(_frames(out), input_frames=inputs)  # errs[t-1]: pair (t-1, t)
    at = [errs[s - 1] for s in starts if 0 < s <= len(errs)]
    inside = [e for t, e in enumerate(errs, start=1) if t not in set(starts)]
    return {"boundary": float(np.mean(at)), "within": float(np.mean(inside)),
            "ratio": float(np.mean(at) / np.mean(inside)), "boundary_pairs": len(at)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--model", default="johnson.starry_night_lite")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--size", default=None, help="internal size (short side), as stylize --size")
    ap.add_argument("--chunk-seconds", type=float, default=3.0)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--temporal", type=float, default=None, help="also measure seams with this --temporal strength")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    common = ["-m", a.model, "-b", a.backend, "-y"] + (["--size", a.size] if a.size else []) + (
        ["--max-frames", str(a.max_frames)] if a.max_frames else [])
    rep: dict[str, Any] = {"clip": a.clip, "model": a.model, "backend": a.backend, "size": a.size,
                           "chunk_seconds": a.chunk_seconds,
                           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                       "python": platform.python_version()}}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        single_wall = _run(["stylize", a.clip, "-o", str(t / "single.mp4"), *common, "--report", str(t / "s.json")])
        s = json.loads((t / "s.json").read_text())
        env = dict(os.environ)
        ray_wall = _run(["stylize", a.clip, "-o", str(t / "ray.mp4"), *common, "--ray", "--chunk-seconds",
                         str(a.chunk_seconds), "--report", str(t / "r.json")], env=env)
        r = json.loads((t / "r.json").read_text())
        frames = r["frames_out"]
        chunk_s = [c["wall_s"] for c in r["chunk_times"]]
        rep["single"] = {"wall_s": round(single_wall, 2), "fps": round(frames / single_wall, 2),
                         "pipeline_fps": s.get("fps")}
        rep["ray"] = {"wall_s": round(ray_wall, 2), "fps": round(frames / ray_wall, 2), "job_wall_s": r["wall_s"],
                      "chunks": r["chunks"], "workers": r["workers"], "chunk_wall_s": chunk_s,
                      "chunk_work_s": round(sum(chunk_s), 2)}
        rep["overhead"] = {"ray_vs_single_fps": round(rep["ray"]["fps"] / rep["single"]["fps"], 3),
                           # outside the chunks: cluster start, planning, scheduling, the join
                           "outside_chunks_s": round(ray_wall - sum(chunk_s) / max(1, r["workers"]), 2)}
        # N machines like this one (W workers each): chunks run in waves of N*W, the rest is paid once
        w = r["workers"]
        mean = float(np.mean(chunk_s))
        fixed = rep["overhead"]["outside_chunks_s"]
        rep["expected_fps"] = {f"{n} machine(s) x {w} workers": round(frames / (fixed + mean * -(-len(chunk_s) // (n * w))), 2)
                               for n in (1, 2, 4, 8)}
        if a.temporal is not None:
            import av

            with av.open(a.clip) as c:
                inputs = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])][:frames]
            tmp_args = [*common, "--temporal", str(a.temporal)]
            _run(["stylize", a.clip, "-o", str(t / "ts.mp4"), *tmp_args])
            _run(["stylize", a.clip, "-o", str(t / "tr.mp4"), *tmp_args, "--ray", "--chunk-seconds",
                  str(a.chunk_seconds), "--report", str(t / "tr.json")], env=env)
            _run(["stylize", a.clip, "-o", str(t / "t0.mp4"), *tmp_args, "--ray", "--chunk-seconds",
                  str(a.chunk_seconds), "--chunk-warmup", "0"], env=env)
            tr = json.loads((t / "tr.json").read_text())
            starts = sorted(c["start"] for c in tr["chunk_times"] if c["chunk"] > 0)
            rep["seams"] = {"temporal": a.temporal, "chunk_starts": starts,
                            "warmup_frames": [c["warmup"] for c in tr["chunk_times"] if c["chunk"] > 0][:1],
                            "one_process": _seams(t / "ts.mp4", inputs, starts),
                            "chunked": _seams(t / "tr.mp4", inputs, starts),
                            "chunked_no_warmup": _seams(t / "t0.mp4", inputs, starts)}
    print(json.dumps(rep, indent=2))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rep, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Everything the CUDA frame path must show, in one run: ``tools/gpu_acceptance.py --json OUT``.

Stages (the same on ``--device cpu``, where the staged path runs on the stand-in scheduler):

1. **parity** - for every family ``rtstyle models`` lists (its case: :func:`rtstyle.models.family_examples`),
   the staged (double-buffered) path on the device against the CPU Stylizer at eager fp32 on frames
   of the bundled sample clip: the lowest PSNR over the frames. A family whose third-party weights
   are not under ``$RTSTYLE_WEIGHTS`` (or the user cache) is skipped with the reason.
2. **speed** - the default live model at 640x480, 1280x720 and 1920x1080 per engine (CUDA: eager
   fp16, compiled fp16 = torch.compile + CUDA graphs, tensorrt fp16 when torch-tensorrt imports;
   CPU: eager fp32, compiled fp32 unless ``--quick``): pure-inference fps (runner on a device
   tensor), end-to-end fps through the staged path (uint8 host frames in and out) and their
   ratio (overlap efficiency), peak GPU memory.
3. **live** - the synthetic live source through the pipeline: fps and latency p50/p95.

Writes JSON with ``device``, ``parity`` ``{family: {"model", "psnr_db" | "skipped"}}``, ``speed``
``[...]``, ``live`` and ``peak_gpu_mem_mb``. Needs no PyAV, no TensorRT and no ``../shared``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("gpu_acceptance")

SPEED_MODEL = "johnson.starry_night_lite"
SIZES = [(640, 480), (1280, 720), (1920, 1080)]


def sample_frames(n: int, size: tuple[int, int], every: int = 10) -> list[np.ndarray]:
    """``n`` frames (every ``every``-th) of the bundled sample clip, RGB uint8 at ``size``."""
    from importlib import resources

    import cv2

    with resources.as_file(resources.files("rtstyle.assets").joinpath("sample.mp4")) as sample:
        return _read_frames(cv2, sample, n, size, every)


def _read_frames(cv2: Any, sample: Path, n: int, size: tuple[int, int], every: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(sample))
    out: list[np.ndarray] = []
    i = 0
    try:
        while len(out) < n:
            ok, bgr = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a short clip: go round again
                ok, bgr = cap.read()
                if not ok:
                    raise RuntimeError(f"cannot read {sample}")
            if i % every == 0:
                img = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                out.append(np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
            i += 1
    finally:
        cap.release()
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else min(100.0, 10 * math.log10(255.0 ** 2 / mse))


def _scheduler(device: str) -> Any:
    from rtstyle.gpu import CudaScheduler, DeferredScheduler

    return CudaScheduler(device) if device.startswith("cuda") else DeferredScheduler()


def run_staged(st: Any, frames: list[Any], device: str, depth: int = 2) -> list[Any]:
    from rtstyle.gpu import StagedStylizer

    staged = StagedStylizer(st, depth=depth, scheduler=_scheduler(device))
    return [r for f in frames if (r := staged.push(f)) is not None] + staged.flush()


def parity(device: str, quick: bool) -> dict[str, dict[str, Any]]:
    from rtstyle.backends import BackendUnavailableError
    from rtstyle.frame import Frame
    from rtstyle.models import create_model, family_examples, get_spec
    from rtstyle.stylizer import Stylizer
    from rtstyle.weights import WeightNotFoundError

    cases = family_examples()  # one registered model per family: a new family is covered at once
    size = (160, 96) if quick else (320, 192)
    images = sample_frames(4 if quick else 8, size)
    style = images[-1]
    frames = [Frame(img, i) for i, img in enumerate(images[:-1])]
    out: dict[str, dict[str, Any]] = {}
    for family, name in cases.items():
        styled = get_spec(name).needs_style_image
        entry: dict[str, Any] = {"model": name}
        t0 = time.perf_counter()
        try:
            kw: dict[str, Any] = {"style_image": style} if styled else {}
            ref_st = Stylizer(create_model(name), device="cpu", backend="eager", precision="fp32", **kw)
            ref = [ref_st(f).image for f in frames]
            dev_st = Stylizer(create_model(name), device=device, backend="eager", precision="fp32", **kw)
            got = run_staged(dev_st, frames, device)
            if [f.index for f in got] != [f.index for f in frames]:
                raise RuntimeError(f"frames left out of order: {[f.index for f in got]}")
            entry["psnr_db"] = round(min(psnr(g.image, r) for g, r in zip(got, ref)), 2)
            entry["runner"] = type(dev_st.state.runner).__name__
            ref_st.close()
            dev_st.close()
        except WeightNotFoundError as e:
            entry["skipped"] = f"third-party weights not found: {_first_line(e)}"
        except BackendUnavailableError as e:
            entry["skipped"] = f"backend unavailable on {device}: {_first_line(e)}"
        except Exception as e:  # noqa: BLE001 - one family's failure is a result, the others still run
            log.exception("parity %s failed", family)
            entry["error"] = f"{type(e).__name__}: {_first_line(e)}"
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        log.info("parity %s: %s", family, entry)
        out[family] = entry
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.startswith("cuda") else None


def engines(device: str, quick: bool) -> list[tuple[str, str, str]]:
    """(label, backend, precision) to time, with the importable ones only."""
    from rtstyle.gpu import cuda_auto_backend

    if device.startswith("cuda"):
        out = [("eager fp16", "eager", "fp16")]
        best = cuda_auto_backend(device)
        out.append(("compiled fp16", "compiled", "fp16"))
        if best == "tensorrt":
            out.append(("tensorrt fp16", "tensorrt", "fp16"))
        return out
    return [("eager fp32", "eager", "fp32")] + ([] if quick else [("compiled fp32", "compiled", "fp32")])


def speed(device: str, quick: bool) -> list[dict[str, Any]]:
    import torch

    from rtstyle.backends import BackendUnavailableError
    from rtstyle.frame import Frame
    from rtstyle.stylizer import Stylizer

    sizes = [(320, 240)] if quick else SIZES
    runs = 3 if quick else 30
    rows: list[dict[str, Any]] = []
    for label, backend, precision in engines(device, quick):
        for w, h in sizes:
            row: dict[str, Any] = {"engine": label, "backend": backend, "precision": precision, "size": [w, h]}
            t0 = time.perf_counter()
            try:
                _peak_reset(device)
                st = Stylizer(SPEED_MODEL, device=device, backend=backend, precision=precision, frame_size=(w, h))
                row["prepare_s"] = round(time.perf_counter() - t0, 2)
                runner = st.state.runner
                x = torch.rand(1, 3, h, w, device=st.device) * 255
                for _ in range(3):
                    runner(x)
                _sync(device)
                ts = []
                for _ in range(runs):
                    t = time.perf_counter()
                    runner(x)
                    _sync(device)
                    ts.append(time.perf_counter() - t)
                row["infer_fps"] = round(1 / statistics.median(ts), 2)
                images = sample_frames(4, (w, h))
                frames = [Frame(images[i % len(images)], i) for i in range(runs + 4)]
                run_staged(st, frames[:4], device)  # warm the staged path's buffers and kernels
                t = time.perf_counter()
                out = run_staged(st, frames[4:], device)
                wall = time.perf_counter() - t
                row["e2e_fps"] = round(len(out) / wall, 2)
                row["overlap"] = round(row["e2e_fps"] / row["infer_fps"], 3)
                row["peak_gpu_mem_mb"] = _peak_mb(device)
                st.close()
            except BackendUnavailableError as e:
                row["skipped"] = _first_line(e)
            except Exception as e:  # noqa: BLE001 - recorded; the other engines still run
                log.exception("speed %s %dx%d failed", label, w, h)
                row["error"] = f"{type(e).__name__}: {_first_line(e)}"
            log.info("speed %s", row)
            rows.append(row)
    return rows


def live(device: str, quick: bool) -> dict[str, Any]:
    from rtstyle.bench import live_run

    backend = "eager"
    precision = "fp16" if device.startswith("cuda") else "fp32"
    rep = live_run(SPEED_MODEL, backend, precision, device, (640, 480), None, 2.0 if quick else 10.0)
    keys = ("fps", "frames_out", "frames_dropped", "latency_ms_p50", "latency_ms_p95")
    return {"model": SPEED_MODEL, "backend": backend, "precision": precision, "size": [640, 480],
            **{k: rep.get(k) for k in keys}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, type=Path, help="write the results here")
    ap.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu (default cuda)")
    ap.add_argument("--quick", action="store_true", help="small frames, few runs (a CI check of the script)")
    ap.add_argument("--stages", default="parity,speed,live", help="comma-separated subset of parity,speed,live")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from rtstyle.stylizer import resolve_device

    try:
        device = str(resolve_device(args.device))
    except ValueError as e:
        print(f"gpu_acceptance: {e}", file=sys.stderr)
        return 2
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - {"parity", "speed", "live"}
    if unknown:
        print(f"gpu_acceptance: unknown stages {sorted(unknown)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rep: dict[str, Any] = {
        "device": device,
        "device_name": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "quick": bool(args.quick),
        "parity": {}, "speed": [], "live": None,
    }
    _peak_reset(device)
    peaks: list[float | None] = []
    if "parity" in stages:
        rep["parity"] = parity(device, args.quick)
        peaks.append(_peak_mb(device))
    if "speed" in stages:
        rep["speed"] = speed(device, args.quick)
        peaks += [r.get("peak_gpu_mem_mb") for r in rep["speed"]]
    if "live" in stages:
        _peak_reset(device)
        try:
            rep["live"] = live(device, args.quick)
        except Exception as e:  # noqa: BLE001
            log.exception("live failed")
            rep["live"] = {"error": f"{type(e).__name__}: {_first_line(e)}"}
        peaks.append(_peak_mb(device))
    known = [p for p in peaks if p is not None]
    rep["peak_gpu_mem_mb"] = max(known) if known else None
    failed = [k for k, v in rep["parity"].items() if "error" in v] + [
        f"{r['engine']} {r['size']}" for r in rep["speed"] if "error" in r] + (
        ["live"] if isinstance(rep["live"], dict) and "error" in rep["live"] else [])
    rep["errors"] = failed
    rep["wall_s"] = round(time.perf_counter() - t0, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(args.json.suffix + ".tmp")
    tmp.write_text(json.dumps(rep, indent=2) + "\n")
    tmp.replace(args.json)
    print(f"wrote {args.json} ({rep['wall_s']} s on {device})" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Median inference time of one model on several backends, all in one process.

    python tools/bench_backends.py                       # TransformerNet(32, 5), 640x480, the CPU set
    python tools/bench_backends.py --runs 20 --json out/bench.json
    python tools/bench_backends.py --model johnson.starry_night_lite --backends eager:fp32,openvino:bf16

Each backend is prepared (build or cache hit, timed separately), warmed up, then timed on the same
input; the table gives the median, the ratio to eager fp32 and the relative error against eager fp32
(``||y - y_ref|| / ||y_ref||``). Numbers are wall-clock on whatever else the machine is doing.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rtstyle.backends import BackendOptions, BackendUnavailableError, create_backend
from rtstyle.backends.cache import device_name

DEFAULT_BACKENDS = "eager:fp32,eager:bf16,onnx:fp32,openvino:fp32,openvino:bf16,compiled:fp32"


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def _model(args: argparse.Namespace) -> tuple[torch.nn.Module, str]:
    if args.model:
        from rtstyle.models import create_model

        return create_model(args.model).eval(), args.model
    from rtstyle.models.johnson import TransformerNet

    torch.manual_seed(args.seed)
    return TransformerNet(args.width, args.n_res).eval(), f"TransformerNet({args.width}, {args.n_res}) random init"


def _input(args: argparse.Namespace) -> torch.Tensor:
    w, h = args.size
    if args.photo:
        import cv2
        import numpy as np

        img = cv2.cvtColor(cv2.imread(str(args.photo)), cv2.COLOR_BGR2RGB)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().contiguous()
    g = torch.Generator().manual_seed(args.seed)
    return torch.rand(1, 3, h, w, generator=g) * 255


def _calibration(args: argparse.Namespace) -> list[torch.Tensor]:
    import cv2

    w, h = args.size
    files = sorted(p for p in Path(args.calib).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.calib_count]
    out = []
    for p in files:
        img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        out.append(torch.from_numpy(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None].float())
    return out


def bench_one(model: torch.nn.Module, x: torch.Tensor, backend: str, precision: str, args: argparse.Namespace) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if precision == "int8":
        if not args.calib:
            raise ValueError("int8 needs --calib DIR (representative images for post-training quantisation)")
        extra["calibration"] = _calibration(args)
    opts = BackendOptions(device=args.device, precision=precision, cache_dir=args.cache_dir, extra=extra)
    t0 = time.perf_counter()
    runner = create_backend(backend, opts).prepare(model, (x,))
    prepare_s = time.perf_counter() - t0
    xd = x.to(runner.device)
    for _ in range(args.warmup):
        runner(xd)
    times = []
    y = None
    for _ in range(args.runs):
        if xd.is_cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        y = runner(xd)
        if xd.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return {"backend": backend, "precision": precision, "prepare_s": prepare_s, "median_ms": 1000 * statistics.median(times),
            "min_ms": 1000 * min(times), "times_ms": [1000 * t for t in times], "output": y.float().cpu()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default=DEFAULT_BACKENDS, help=f"backend:precision,... (default {DEFAULT_BACKENDS})")
    p.add_argument("--size", type=_size, default=(640, 480), help="WxH (default 640x480)")
    p.add_argument("--model", help="registered model name or checkpoint (default: random TransformerNet)")
    p.add_argument("--width", type=int, default=32, help="TransformerNet width (default 32)")
    p.add_argument("--n-res", type=int, default=5, help="TransformerNet residual blocks (default 5)")
    p.add_argument("--photo", type=Path, help="an image to use as input (default: random pixels)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", help="engine cache (default $RTSTYLE_ENGINES or ./engines)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--calib", type=Path, help="folder of images for int8 calibration (openvino:int8)")
    p.add_argument("--calib-count", type=int, default=16)
    args = p.parse_args(argv)

    model, label = _model(args)
    x = _input(args)
    w, h = args.size
    print(f"model {label}  input {w}x{h}  device {args.device} ({device_name(args.device)})  "
          f"torch {torch.__version__}  threads {torch.get_num_threads()}  warm-up {args.warmup}, timed {args.runs}")
    results: list[dict[str, Any]] = []
    for item in args.backends.split(","):
        backend, _, precision = item.strip().partition(":")
        precision = precision or "fp32"
        try:
            r = bench_one(model, x, backend, precision, args)
        except (BackendUnavailableError, ValueError, RuntimeError) as e:
            results.append({"backend": backend, "precision": precision, "error": f"{type(e).__name__}: {e}"})
            print(f"  {backend}/{precision}: {type(e).__name__}: {str(e).splitlines()[0][:160]}", file=sys.stderr)
            continue
        results.append(r)
        print(f"  {backend}/{precision}: median {r['median_ms']:.1f} ms (prepare {r['prepare_s']:.1f} s)", file=sys.stderr)

    ref = next((r for r in results if r.get("backend") == "eager" and r.get("precision") == "fp32" and "output" in r), None)
    print(f"\n{'backend':<10}{'precision':<10}{'median ms':>10}{'min ms':>9}{'fps':>7}{'vs eager fp32':>15}"
          f"{'rel err':>10}{'PSNR dB':>9}{'prepare s':>11}")
    for r in results:
        if "error" in r:
            print(f"{r['backend']:<10}{r['precision']:<10}  {r['error'][:90]}")
            continue
        ratio = ref["median_ms"] / r["median_ms"] if ref else float("nan")
        err = float("nan")
        if ref is not None and ref["output"].shape == r["output"].shape:
            err = (torch.linalg.vector_norm(r["output"] - ref["output"]) / torch.linalg.vector_norm(ref["output"])).item()
        r["speedup_vs_eager_fp32"], r["rel_err_vs_eager_fp32"] = ratio, err
        if ref is not None and ref["output"].shape == r["output"].shape:
            from rtstyle.bench import psnr

            def u8(t: torch.Tensor) -> Any:
                return t.clamp(0, 255)[0].permute(1, 2, 0).round().byte().numpy()

            r["psnr_vs_eager_fp32_db"] = psnr(u8(r["output"]), u8(ref["output"]))
        print(f"{r['backend']:<10}{r['precision']:<10}{r['median_ms']:>10.1f}{r['min_ms']:>9.1f}"
              f"{1000 / r['median_ms']:>7.2f}{ratio:>14.2f}x{err:>10.1e}{r.get('psnr_vs_eager_fp32_db', float('nan')):>9.1f}"
              f"{r['prepare_s']:>11.1f}")
    # fraction of the machine's peak: achieved MAC/s over a large fp32 matmul's, measured in this run
    from rtstyle.bench import matmul_macs_per_s, model_macs

    macs = model_macs(model.float().eval(), x)
    peak = matmul_macs_per_s(device=args.device)
    print(f"\nmodel: {macs / 1e9:.2f} GMAC per frame; 2048^3 fp32 matmul here: {peak / 1e9:.1f} GMAC/s")
    for r in results:
        if "error" not in r:
            r["gmac_per_s"] = macs / (r["median_ms"] / 1000) / 1e9
            r["fraction_of_matmul_peak"] = r["gmac_per_s"] * 1e9 / peak
            print(f"  {r['backend']}/{r['precision']}: {r['gmac_per_s']:.1f} GMAC/s = {100 * r['fraction_of_matmul_peak']:.0f}% of the matmul rate")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"model": label, "gmac_per_frame": macs / 1e9, "matmul_gmac_per_s": peak / 1e9, "size": [w, h], "device": args.device, "device_name": device_name(args.device),
               "torch": torch.__version__, "python": platform.python_version(), "warmup": args.warmup, "runs": args.runs,
               "results": [{k: v for k, v in r.items() if k != "output"} for r in results]}
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

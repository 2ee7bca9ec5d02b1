"""Benchmarks behind ``rtstyle bench`` and ``tools/``: naive loop vs pipeline, backends, live.

Everything is measured in one process on the same frames and weights, and reported as medians
and ratios (the machines are shared and noisy).
"""
from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .image import to_image, to_tensor

__all__ = ["auto_backend", "inference_fps", "live_run", "make_clip", "naive_loop", "pipeline_run", "psnr", "run_bench"]

log = logging.getLogger(__name__)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def make_clip(src: str | Path | None, out: Path, size: tuple[int, int], frames: int, fps: int = 25) -> Path:
    """A benchmark clip of ``frames`` frames at ``size``: resized from ``src`` (a real video), or
    the bundled sample when ``src`` is None."""
    import av
    import cv2

    if src is None:
        from importlib import resources

        with resources.as_file(resources.files("rtstyle.assets").joinpath("sample.mp4")) as p:
            return make_clip(p, out, size, frames, fps)
    w, h = size
    imgs = []
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            imgs.append(cv2.resize(f.to_ndarray(format="rgb24"), (w, h), interpolation=cv2.INTER_AREA))
            if len(imgs) >= frames:
                break
    while len(imgs) < frames:  # loop short clips back and forth
        imgs += imgs[::-1][: frames - len(imgs)]
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "18", "preset": "veryfast"}
        for im in imgs:
            for p in s.encode(av.VideoFrame.from_ndarray(im, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return out


def naive_loop(clip: Path, out: Path, model: Any) -> dict[str, float]:
    """The baseline: one thread, decode -> eager fp32 inference -> encode, frame by frame."""
    import av
    import torch

    t0 = time.perf_counter()
    n = 0
    with av.open(str(clip)) as cin, av.open(str(out), "w") as cout:
        vin = cin.streams.video[0]
        s = cout.add_stream("libx264", rate=vin.average_rate)
        s.width, s.height, s.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        s.options = {"crf": "18", "preset": "veryfast"}
        for f in cin.decode(vin):
            x = to_tensor(f.to_ndarray(format="rgb24"), max_value=255.0)
            with torch.inference_mode():
                img = to_image(model(x), max_value=255.0)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                cout.mux(p)
            n += 1
        for p in s.encode(None):
            cout.mux(p)
    wall = time.perf_counter() - t0
    return {"frames": n, "wall_s": wall, "fps": n / wall}


def pipeline_run(clip: Path, out: Path, model: str, backend: str, precision: str, device: str,
                 keep_every: int = 10, preset: str = "veryfast") -> tuple[dict[str, Any], dict[int, np.ndarray]]:
    """rtstyle file mode (threads, bounded queues, the chosen backend); returns report + sample outputs."""
    from .io import VideoFileSink, VideoFileSource
    from .pipeline import Pipeline
    from .stylizer import Stylizer

    kept: dict[int, np.ndarray] = {}

    def keep(f: Any) -> None:
        if f.index % keep_every == 0:
            kept[f.index] = f.image

    t0 = time.perf_counter()
    st = Stylizer(model, backend=backend, precision=precision, device=device)
    with VideoFileSource(str(clip)) as src:
        st.set_frame_size(src.info.width, src.info.height)
        # overwrite: the benchmark's own scratch file ("openvino" and "openvino:int8" share a name)
        sink = VideoFileSink(str(out), fps=src.info.fps, time_base=src.info.extra.get("time_base"), preset=preset,
                             overwrite=True)
        prep = time.perf_counter() - t0
        pipe = Pipeline(src, st, [sink], on_frame=keep)
        pipe.run()
    st.close()
    rep = pipe.report()
    rep["prepare_s"] = prep
    return rep, kept


def inference_fps(model: str, backend: str, precision: str, device: str, size: tuple[int, int], runs: int = 10) -> dict[str, float]:
    """Pure inference (runner only, preprocessed input) at ``size``: median seconds and fps."""
    import torch

    from .stylizer import Stylizer

    w, h = size
    st = Stylizer(model, backend=backend, precision=precision, device=device, frame_size=(w, h))
    x = torch.rand(1, 3, h, w, device=st.device) * 255
    r = st.state.runner
    for _ in range(2):
        r(x, *st.state.style_inputs)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        r(x, *st.state.style_inputs)
        ts.append(time.perf_counter() - t)
    st.close()
    med = statistics.median(ts)
    return {"median_s": med, "fps": 1 / med}


def live_run(model: str, backend: str, precision: str, device: str, size: tuple[int, int], internal: int | None,
             seconds: float, fps: float = 30.0) -> dict[str, Any]:
    """Synthetic live source at ``size``/``fps`` -> stylizer -> null sink; fps and latency."""
    from .io import NullSink, SyntheticSource
    from .pipeline import Pipeline
    from .stylizer import Stylizer

    from .jobs import live_backend_options

    w, h = size
    # the live floor of --precision auto, as rtstyle live runs it
    st = Stylizer(model, backend=backend, precision=precision, device=device, size=internal, frame_size=(w, h),
                  options=live_backend_options())
    with SyntheticSource(w, h, fps=fps, live=True) as src:
        sink = NullSink(lossless=False)
        pipe = Pipeline(src, st, [sink], live=True)
        pipe.run(duration=seconds)
    st.close()
    rep = pipe.report(internal_size=internal)
    return rep


def auto_backend(device: str) -> str:
    """The backend ``--backend auto`` runs on ``device``: on CUDA :func:`rtstyle.gpu.cuda_auto_backend`
    (tensorrt > compiled > eager, precision ``auto`` then picking fp16), elsewhere
    :func:`rtstyle.backends.resolve_backend`."""
    from .stylizer import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        from .gpu import cuda_auto_backend

        return cuda_auto_backend(str(dev))
    from .backends import resolve_backend

    return resolve_backend("auto", str(dev))


def run_bench(model: str, backends: list[str], size: tuple[int, int] | int = (640, 480), frames: int = 30,
              device: str = "cpu", precision: str = "auto", clip_src: str | Path | None = None,
              live_seconds: float = 0.0, live_size: int | None = None, print_table: bool = True) -> dict[str, Any]:
    """Naive loop vs rtstyle file mode per backend, plus pure-inference fps, on one clip.

    ``backends`` items are ``name`` (at ``precision``) or ``name:precision``; with ``auto`` each result
    names the precision chosen and why (``precision_reason``)."""
    from .models import create_model

    if isinstance(size, int):
        size = (size * 4 // 3, size)
    rep: dict[str, Any] = {"model": model, "size": list(size), "frames": frames, "device": device, "results": {}}
    with tempfile.TemporaryDirectory() as td:
        tdp = Path(td)
        clip = make_clip(clip_src, tdp / "clip.mp4", size, frames)
        net = create_model(model)
        naive = naive_loop(clip, tdp / "naive.mp4", net)
        rep["naive"] = naive
        # fp32 eager reference frames for the quality check
        ref_rep, ref = pipeline_run(clip, tdp / "ref.mp4", model, "eager", "fp32", device)
        rep["eager_fp32"] = {"pipeline_fps": ref_rep["fps"]}
        for item in backends:
            b, _, prec = item.partition(":")  # "openvino:int8" pins a precision for one backend
            prec = prec or precision
            try:
                r, kept = pipeline_run(clip, tdp / f"{b}.mp4", model, b, prec, device)
                inf = inference_fps(model, b, prec, device, size)
            except Exception as e:  # noqa: BLE001 - one failing backend must not end the comparison
                rep["results"][f"{b}/{prec}"] = {"error": f"{type(e).__name__}: {e}"}
                continue
            q = [psnr(kept[i], ref[i]) for i in sorted(set(kept) & set(ref))]
            name = f"{b}/{r['precision']}" + (" (auto)" if prec == "auto" else "")
            rep["results"][name] = {
                "precision": r["precision"],
                "precision_reason": r.get("precision_reason", ""),
                "pipeline_fps": r["fps"],
                "speedup_vs_naive": r["fps"] / naive["fps"],
                "speedup_vs_eager_fp32": r["fps"] / ref_rep["fps"],
                "inference_fps": inf["fps"],
                "pipeline_over_inference": r["fps"] / inf["fps"],
                "psnr_vs_eager_fp32_db": min(q) if q else None,
                "frames_out": r["frames_out"],
                "stages": r["stages"],
            }
    if live_seconds > 0:
        live_backend = auto_backend(device)
        rep["live"] = live_run(model, live_backend, precision, device, (640, 480), live_size, live_seconds)
        rep["live"]["backend"] = live_backend
    if print_table:
        print(f"model {model}  frames {frames} at {size[0]}x{size[1]}  device {device}")
        print(f"naive loop (decode -> eager fp32 -> encode, 1 thread): {naive['fps']:.2f} fps")
        print(f"rtstyle file mode, eager fp32: {ref_rep['fps']:.2f} fps")
        print(f"{'backend':<22}{'pipeline fps':>14}{'x naive':>9}{'x eager fp32':>14}{'infer fps':>11}{'e2e/infer':>11}"
              f"{'PSNR dB':>9}")
        for name, r in rep["results"].items():
            if "error" in r:
                print(f"{name:<22}  {r['error']}")
                continue
            ps = r["psnr_vs_eager_fp32_db"]
            print(f"{name:<22}{r['pipeline_fps']:>14.2f}{r['speedup_vs_naive']:>9.2f}{r['speedup_vs_eager_fp32']:>14.2f}"
                  f"{r['inference_fps']:>11.2f}{r['pipeline_over_inference']:>11.2f}"
                  f"{(ps if ps is not None else float('nan')):>9.1f}")
            if r["precision_reason"] and r["precision_reason"] != "as requested":
                print(f"{'':<22}precision: {r['precision_reason']}")
        if "live" in rep:
            lv = rep["live"]
            print(f"live synthetic 640x480@30 (internal {live_size or 'native'}, {lv['backend']}): {lv['fps']:.1f} fps out, "
                  f"dropped {lv['frames_dropped']}, latency p50 {lv.get('latency_ms_p50')} ms p95 {lv.get('latency_ms_p95')} ms")
    return rep


def model_macs(model: Any, example: Any) -> int:
    """Multiply-accumulates of one forward pass, counted from the conv/linear layers actually run."""
    import torch
    from torch import nn

    total = 0

    def hook(mod: nn.Module, inp: Any, out: Any) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
            total += out.numel() * k
        elif isinstance(mod, nn.ConvTranspose2d):
            total += inp[0].numel() * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
        elif isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return total


def matmul_macs_per_s(n: int = 2048, runs: int = 5, dtype: str = "fp32", device: str = "cpu") -> float:
    """Attainable MAC/s of this machine: median of an ``n x n`` matmul in ``dtype`` (the roofline
    ceiling that convolution kernels are compared against)."""
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    a = torch.randn(n, n, dtype=dt, device=device)
    b = torch.randn(n, n, dtype=dt, device=device)
    for _ in range(2):
        a @ b
    ts = []
    for _ in range(runs):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return n**3 / statistics.median(ts)

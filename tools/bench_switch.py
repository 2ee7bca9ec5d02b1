"""Style-switch latency in a running live pipeline: "new style" request -> first output frame with it.

    python tools/bench_switch.py --model adain.vgg16 --styles ../shared/media/styles/{wave,udnie,mondrian}.jpg
    python tools/bench_switch.py --model msgnet.lite --bank wave udnie mondrian --brush 192 384
    python tools/bench_switch.py --model metanet.lite --style-encoder int8 --first-style udnie.jpg --styles ...
    python tools/bench_switch.py --model linear.r31 --model-option max_style_side=256 --first-style ... --styles ...

A synthetic 640x480 source runs live at 30 fps into a null sink. After a warm-up, each switch is
requested from the main thread (`Pipeline.swap`, as the control endpoint and hotkeys do) and the
time until the writer thread receives the first frame stylised with the new style is recorded,
together with the time the Stylizer spent preparing it (style encoding + backend preparation).
Each style is switched to twice (the second time hits the prepared-state cache); both are reported.
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from rtstyle import Pipeline, Stylizer
from rtstyle.io import NullSink, SyntheticSource
from rtstyle.jobs import live_backend_options


def measure(model: Any, switches: list[dict[str, Any]], backend: str, size: tuple[int, int], internal: int | None,
            first: dict[str, Any], settle: float = 1.0, swap_hold: float | None = None,
            style_encoder: str | None = None, warmup: float = 2.0, passes: int = 2,
            precision: str = "auto") -> list[dict[str, Any]]:
    seen: dict[str, float] = {}
    lock = threading.Lock()
    label = model if isinstance(model, str) else model.spec.name

    def on_frame(frame: Any) -> None:
        with lock:
            seen.setdefault(frame.meta.get("style", ""), time.perf_counter())

    w, h = size
    st = Stylizer(model, backend=backend, size=internal, frame_size=(w, h), style_encoder=style_encoder,
                  precision=precision, options=live_backend_options(), **first)  # auto's live floor, as rtstyle live
    rows: list[dict[str, Any]] = []
    with SyntheticSource(w, h, fps=30.0, live=True) as src:
        pipe = Pipeline(src, st, [NullSink(lossless=False)], live=True, on_frame=on_frame, swap_hold=swap_hold)
        pipe.start()
        time.sleep(warmup)
        for rep in range(1, passes + 1):
            for sw in switches:
                with lock:
                    seen.clear()
                t0 = time.perf_counter()
                state = pipe.swap(**sw).result(timeout=120)
                deadline = time.time() + 30
                while time.time() < deadline:
                    with lock:
                        t1 = seen.get(state.name)
                    if t1 is not None:
                        break
                    time.sleep(0.001)
                else:
                    raise RuntimeError(f"no frame with {state.name} within 30 s")
                rows.append({"model": label, "switch": json.dumps(sw, default=str), "pass": rep,
                             "latency_ms": round(1000 * (t1 - t0), 1), "prepare_ms": round(1000 * state.prepared_s, 1)})
                print(f"{label:<14} {rows[-1]['switch']:<60} pass {rep}: first frame after {rows[-1]['latency_ms']:7.1f} ms "
                      f"(prepare {rows[-1]['prepare_ms']:.1f} ms)", flush=True)
                time.sleep(settle)
        pipe.stop()
        pipe.wait()
    st.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--styles", nargs="*", default=[], help="style images to switch to, in order")
    ap.add_argument("--bank", nargs="*", default=[], help="bank styles (names) to switch to (msgnet.*)")
    ap.add_argument("--brush", nargs="*", type=float, default=[], help="brush sizes to switch to (msgnet.*)")
    ap.add_argument("--first-style", default=None, help="style image active at start (style-image models)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--internal", type=int, default=240, help="internal short side (default 240)")
    ap.add_argument("--swap-hold", type=float, default=None, help="Pipeline swap_hold in seconds (default: its own)")
    ap.add_argument("--style-encoder", choices=["auto", "fp32", "bf16", "int8"], default=None,
                    help="style-image encoder precision (metanet, adain, linear, wct; default: the model's own auto: "
                    "bf16 on AMX / AVX512_BF16 hosts, else fp32)")
    ap.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a factory option of the model (e.g. max_style_side=256); repeat")
    ap.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | int8 (OpenVINO): passed to the Stylizer")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of live run before the first switch")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds between switches")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    if not (a.styles or a.bank or a.brush):
        ap.error("nothing to switch to: give --styles, --bank or --brush")
    w, h = (int(v) for v in a.size.lower().split("x"))
    switches: list[dict[str, Any]] = [{"style_image": s} for s in a.styles]
    switches += [{"style_vector": b} for b in a.bank]
    switches += [{"options": {"brush": b}} for b in a.brush]
    first = {"style_image": a.first_style} if a.first_style else {}
    model: Any = a.model
    if a.model_option:
        from rtstyle.models import create_model

        opts = {}
        for kv in a.model_option:
            k, _, v = kv.partition("=")
            opts[k] = int(v) if v.lstrip("-").isdigit() else float(v) if v.replace(".", "", 1).isdigit() else v
        model = create_model(a.model, **opts)
    rows = measure(model, switches, a.backend, (w, h), a.internal, first, swap_hold=a.swap_hold,
                   style_encoder=a.style_encoder, warmup=a.warmup, settle=a.settle, precision=a.precision)
    summary = {}
    for p in (1, 2):
        lat = [r["latency_ms"] for r in rows if r["pass"] == p]
        prep = [r["prepare_ms"] for r in rows if r["pass"] == p]
        summary[f"pass{p}"] = {"median_latency_ms": statistics.median(lat), "max_latency_ms": max(lat),
                               "median_prepare_ms": statistics.median(prep)}
    print(json.dumps(summary, indent=2))
    if a.json:
        a.json.write_text(json.dumps({"model": a.model, "model_options": a.model_option, "style_encoder": a.style_encoder,
                                      "precision": a.precision, "backend": a.backend, "size": a.size, "internal": a.internal,
                                      "rows": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

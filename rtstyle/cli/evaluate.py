"""``rtstyle eval temporal``: warping error and style loss of a video, per-frame vs stabilised."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import CLIError, default_model, size_arg

__all__ = ["add_parser", "cmd_eval"]


def add_parser(sub: Any) -> None:
    s = sub.add_parser("eval", help="evaluations (temporal: warping error of a video, per-frame vs stabilised)")
    esub = s.add_subparsers(dest="what", required=True, metavar="WHAT")
    e = esub.add_parser("temporal", help="warping error (Lai et al. 2018) and style loss, with and without --temporal")
    e.add_argument("--video", required=True, help="video file or folder of frames")
    e.add_argument("--model", "-m", default=None)
    e.add_argument("--style", default=None, help="style image, for models that take one")
    e.add_argument("--strength", type=float, default=0.8, help="stabiliser strength to compare (default 0.8)")
    e.add_argument("--flow", default="dis", choices=["dis", "farneback"], help="flow of the metric (default dis)")
    e.add_argument("--max-frames", type=int, default=30)
    e.add_argument("--max-size", default="640x480", help="downscale frames to fit WxH (default 640x480)")
    e.add_argument("--loss-style", default=None, help="style image for the style loss (default: --style)")
    e.add_argument("--loss-frames", type=int, default=6)
    e.add_argument("--report", type=Path, default=None)
    s.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """``rtstyle eval temporal``: warping error and style loss, per-frame vs stabilised."""
    from ..temporal.evaluate import evaluate_temporal

    src = Path(args.video)
    if not src.exists():
        raise CLIError(f"input not found: {src}")
    max_size = size_arg(args.max_size) if args.max_size else None
    if isinstance(max_size, int):
        raise CLIError("--max-size must be WxH")
    rep = evaluate_temporal(str(src), args.model or default_model(), style_image=args.style, temporal=args.strength,
                            flow=args.flow, max_frames=args.max_frames, max_size=max_size,
                            loss_style=args.loss_style, loss_frames=args.loss_frames)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(rep, indent=2) + "\n")
    print(f"{rep['frames']} frames at {rep['size'][0]}x{rep['size'][1]}, flow {rep['flow']}, model {rep['model']}")
    print(f"{'variant':<12}{'warping err':>13}{'reduction':>11}{'style loss':>12}{'SL change':>11}{'added cost':>12}")
    for name, v in rep["variants"].items():
        red, slc, ov, sl = (v.get(k) for k in ("warping_error_reduction", "style_loss_change", "overhead", "style_loss"))
        print(f"{name:<12}{v['warping_error']:>13.5f}{(f'{100 * red:.0f}%' if red is not None else '-'):>11}"
              f"{(f'{sl:.4g}' if sl is not None else '-'):>12}{(f'{100 * slc:+.0f}%' if slc is not None else '-'):>11}"
              f"{(f'{100 * ov:.1f}%' if ov is not None else '-'):>12}")
    return 0

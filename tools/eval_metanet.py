"""Does a meta network's generated net carry *its* style? A style-identification score.

For each style image (held-out ones first), the model, run through the Stylizer with that style
image, stylises a few photos; each output is scored with the training loss's Gram style term
(:class:`rtstyle.eval.TrainingLoss`) against every listed style image. A style is "carried" when
its own image gives the lowest loss (rank 1 of N). Also prints the mean style and content losses
per style and the margin (best other / own), and can write a grid (one row per style, the style
image first, ``rtstyle grid``'s layout).

    python tools/eval_metanet.py --model metanet:runs/metanet/metanet_lite.safetensors \\
        --styles STYLE.jpg ... --contents PHOTO.jpg ... [--grid docs/grid_metanet.jpg] [--json OUT]

``--model`` may also be a training checkpoint (``runs/<run>/checkpoint.pt``): its config gives the
architecture, so a run can be scored while it trains. Any style-image model works (``adain.vgg16``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rtstyle.eval import TrainingLoss, load_for_eval, read_photos, save_grid, style_identification


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="metanet:FILE.safetensors, a registry name, or a checkpoint.pt")
    ap.add_argument("--styles", nargs="+", required=True, help="style images (each one generates a net)")
    ap.add_argument("--contents", nargs="+", required=True, help="content photos")
    ap.add_argument("--size", type=int, default=256, help="photos' shorter side")
    ap.add_argument("--vgg", default=None, help="VGG16 file (default: resolved like every third-party weight)")
    ap.add_argument("--backend", default="eager", help="Stylizer backend (default eager, fp32)")
    ap.add_argument("--grid", default=None, help="write a grid image here")
    ap.add_argument("--cell", type=int, default=200, help="grid cell width")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    model, step = load_for_eval(args.model, vgg=args.vgg)
    loss = TrainingLoss(vgg_path=args.vgg)
    photos = read_photos(args.contents, args.size)
    res = style_identification(loss, model, args.styles, photos, backend=args.backend)
    print(f"{args.model} (step {step}): own style ranked 1st for {res.carried}/{len(res.ranks)} styles")
    print(f"{'style':<40} {'rank':>4} {'style loss':>11} {'content':>9} {'margin':>7}")
    for i, (n, m) in enumerate(zip(res.styles, res.margins())):
        print(f"{n[:40]:<40} {res.ranks[i]:>4} {res.style_loss[i, i]:>11.3g} {res.content_loss[i]:>9.3g} {m:>7.2f}")
    if args.json:
        out = {"model": args.model, "step": step, "contents": [Path(c).name for c in args.contents], **res.to_json(),
               "margin_best_other_over_own": res.margins()}
        Path(args.json).write_text(json.dumps(out, indent=1))
    if args.grid:
        rows = [(n, outs) for n, outs in zip(res.styles, res.outputs)]
        save_grid(args.grid, photos, rows, cell_width=args.cell, styles=res.style_images)
        print(f"wrote {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does a meta network's generated net carry *its* style? A style-identification score.

For each style image (held-out ones first), the net generated from it stylises a few photos; each
output is scored with the training loss's Gram style term against every listed style image. A style
is "carried" when its own image gives the lowest loss (rank 1 of N). Also prints the mean style and
content losses per style, and can write a grid (photos x styles, each style image above its column).

    python tools/eval_metanet.py --model metanet:runs/metanet/metanet_lite.safetensors \\
        --styles STYLE.jpg ... --contents PHOTO.jpg ... [--grid docs/grid_metanet.jpg] [--json OUT]

``--model`` may also be a training checkpoint (``runs/<run>/checkpoint.pt``): its config gives the
architecture, so a run can be scored while it trains.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def _load(model: str, vgg_path: str | None) -> Any:
    from rtstyle.models import create_model
    from rtstyle.models.metanet import MetaNet

    if model.endswith(".pt"):
        ck = torch.load(model, map_location="cpu", weights_only=False)
        c = ck["config"]
        meta = MetaNet(c["width"], c["n_res"], c["hidden"], c["rank"] or None, c["style_size"],
                       c.get("style_norms", False))
        meta.load_state_dict(ck["model"])
        meta.vgg_path = vgg_path or c.get("vgg")
        return meta.eval(), int(ck["step"])
    meta = create_model(model, **({"vgg": vgg_path} if vgg_path else {}))
    return meta.float().eval(), int(meta.spec.extra.get("steps", 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="metanet:FILE.safetensors, a registry name, or a checkpoint.pt")
    ap.add_argument("--styles", nargs="+", required=True, help="style images (each one generates a net)")
    ap.add_argument("--contents", nargs="+", required=True, help="content photos")
    ap.add_argument("--size", type=int, default=256, help="photos' shorter side")
    ap.add_argument("--vgg", default=None, help="VGG16 file (default: resolved like every third-party weight)")
    ap.add_argument("--grid", default=None, help="write a grid image here")
    ap.add_argument("--cell", type=int, default=200, help="grid cell width")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import cv2

    from rtstyle.models.metanet import resize_long
    from rtstyle.training.data import load_rgb
    from rtstyle.training.losses import content_loss, gram
    from rtstyle.training.vgg import load_vgg16
    from rtstyle.weights import resolve_weight

    meta, step = _load(args.model, args.vgg)
    loss_vgg = load_vgg16(resolve_weight("vgg16", explicit=args.vgg))
    names = [Path(s).stem for s in args.styles]

    def t01(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0

    styles = [load_rgb(s, max_side=meta.style_image_side) for s in args.styles]
    with torch.no_grad():
        targets = [{k: gram(v) for k, v in loss_vgg(resize_long(t01(s), 256)).items()} for s in styles]
    photos = []
    for p in args.contents:
        img = load_rgb(p, short_side=args.size)
        photos.append(img[: img.shape[0] // 4 * 4, : img.shape[1] // 4 * 4])
    loss = np.zeros((len(styles), len(styles)))  # [generated-from, scored-against], mean over photos
    closs = np.zeros(len(styles))
    outs: list[list[np.ndarray]] = []
    with torch.no_grad():
        for i, s in enumerate(styles):
            net = meta.generate(s, name=names[i])
            row = []
            for img in photos:
                x = t01(img)
                y = net(x * 255.0).clamp(0, 255) / 255.0
                row.append((y[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
                fy, fx = loss_vgg(y), loss_vgg(x)
                closs[i] += 1e5 * float(content_loss(fy["relu2_2"], fx["relu2_2"])) / len(photos)
                for j, t in enumerate(targets):
                    loss[i, j] += 1e10 * sum(float(F.mse_loss(gram(fy[n]), t[n])) for n in t) / len(photos)
            outs.append(row)
    ranks = [int((loss[i] < loss[i, i]).sum()) + 1 for i in range(len(styles))]
    print(f"{args.model} (step {step}): own style ranked 1st for {sum(r == 1 for r in ranks)}/{len(ranks)} styles")
    print(f"{'style':<40} {'rank':>4} {'style loss':>11} {'content':>9}")
    for i, n in enumerate(names):
        print(f"{n[:40]:<40} {ranks[i]:>4} {loss[i, i]:>11.3g} {closs[i]:>9.3g}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "step": step, "styles": names,
                                               "contents": [Path(c).name for c in args.contents],
                                               "rank_of_own_style": ranks, "style_loss": loss.tolist(),
                                               "content_loss": closs.tolist()}, indent=1))
    if args.grid:
        cw = args.cell

        def cell(img: np.ndarray) -> np.ndarray:
            h = round(img.shape[0] * cw / img.shape[1])
            return cv2.resize(img, (cw, h), interpolation=cv2.INTER_AREA)

        ch = max(cell(p).shape[0] for p in photos)

        def pad(img: np.ndarray) -> np.ndarray:
            c = cell(img)[:ch]
            return np.pad(c, ((0, ch - c.shape[0]), (0, 0), (0, 0)), constant_values=255)

        header = [np.full((ch, cw, 3), 255, np.uint8)] + [pad(s) for s in styles]
        rows = [np.hstack(header)]
        for k, p in enumerate(photos):
            rows.append(np.hstack([pad(p)] + [pad(outs[i][k]) for i in range(len(styles))]))
        grid = np.vstack(rows)
        cv2.imwrite(args.grid, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(f"wrote {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

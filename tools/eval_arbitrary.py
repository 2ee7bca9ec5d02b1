"""Held-out matrix of arbitrary-style models: accuracy and matched ratio (:mod:`rtstyle.eval.arbitrary`).

    RTSTYLE_WEIGHTS=../shared/weights python tools/eval_arbitrary.py \\
        --model adain.vgg16 --model adain.r31 --model wct.r31 --model linear.r31 \\
        --out runs/eval_arbitrary [--grid docs/grid_heldout.jpg]

Every content photo (default: :data:`~rtstyle.eval.arbitrary.DEFAULT_CONTENTS` from
``../shared/media/photos/content``, centre-cropped to 4:3, longer side ``--size``) is stylised with every
held-out painting (default: :data:`~rtstyle.eval.arbitrary.HELD_OUT_STYLES` from ``../shared/media/styles``,
longer side ``--size``) by each ``--model``; each output's VGG16 Gram distance to every painting is
measured. Writes ``<out>/arbitrary.json`` (every cell), ``<out>/arbitrary.md`` (the table, also printed)
and a grid (``<out>/grid.jpg`` or ``--grid``): a row per model and painting, the painting first.
A model that fails to build (missing weights) is reported and skipped; the others still run.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
log = logging.getLogger("eval_arbitrary")


def _crop43(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if w * 3 > h * 4:
        nw = h * 4 // 3
        x = (w - nw) // 2
        return img[:, x:x + nw]
    nh = w * 3 // 4
    y = (h - nh) // 2
    return img[y:y + nh]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="model name (repeat)")
    ap.add_argument("--contents", nargs="+", type=Path, default=None, help="content photos")
    ap.add_argument("--styles", nargs="+", type=Path, default=None, help="held-out paintings (at least two)")
    ap.add_argument("--size", type=int, default=256, help="longer side of contents and paintings")
    ap.add_argument("--style-size", type=int, default=None,
                    help="longer side of the paintings given to the models (default --size); the Gram "
                    "distances are still measured against the paintings at --size")
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--vgg", default=None, help="VGG16 weights (default: resolved through RTSTYLE_WEIGHTS)")
    ap.add_argument("--out", type=Path, required=True, help="folder for arbitrary.json / arbitrary.md / grid.jpg")
    ap.add_argument("--grid", type=Path, default=None, help="grid path (default <out>/grid.jpg)")
    ap.add_argument("--cell", type=int, default=192, help="grid cell width")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rtstyle.eval.arbitrary import (DEFAULT_CONTENTS, evaluate_model, held_out_paths, markdown_table,
                                        size_for_matrix)
    from rtstyle.grid import save_grid
    from rtstyle.quality import QualityMeter
    from rtstyle.image import read_image
    from rtstyle.nn import load_vgg16

    contents = args.contents or [SHARED / "media/photos/content" / n for n in DEFAULT_CONTENTS]
    styles = args.styles or held_out_paths(SHARED / "media/styles")
    for p in [*contents, *styles]:
        if not Path(p).is_file():
            print(f"error: not found: {p}", file=sys.stderr)
            return 2
    meter = QualityMeter(load_vgg16(args.vgg, taps=("relu1_2", "relu2_2", "relu3_3", "relu4_1", "relu4_3")))
    c_imgs = [size_for_matrix(_crop43(read_image(p)), args.size) for p in contents]
    s_imgs = [size_for_matrix(read_image(p), args.size, multiple=1) for p in styles]
    c_stats = [meter.stats(c, "content") for c in c_imgs]
    s_stats = [meter.stats(s, "style") for s in s_imgs]
    if args.style_size and args.style_size != args.size:  # the models get the paintings at another size
        s_imgs = [size_for_matrix(read_image(p), args.style_size, multiple=1) for p in styles]
    results, failed = [], {}
    for m in dict.fromkeys(args.model):
        try:
            r = evaluate_model(m, c_imgs, s_imgs, meter, name=m, content_names=[Path(p).stem for p in contents],
                               style_names=[Path(p).stem for p in styles], backend=args.backend,
                               content_stats=c_stats, style_stats=s_stats)
        except Exception as e:  # one model's missing weights must not lose the others' results
            log.error("%s failed: %s: %s", m, type(e).__name__, e)
            failed[m] = f"{type(e).__name__}: {e}"
            continue
        results.append(r)
        print(f"{m}: accuracy {r.accuracy:.2f}, matched ratio {r.matched_ratio:.2f}", flush=True)
    if not results:
        print("error: no model ran", file=sys.stderr)
        return 1
    table = markdown_table(results)
    report = {
        "command": " ".join(["python", *sys.argv]) if argv is None else "eval_arbitrary " + " ".join(argv),
        "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "size": args.size,
        "style_size": args.style_size or args.size,
        "contents": [str(p) for p in contents],
        "styles": [str(p) for p in styles],
        "results": [r.to_dict() for r in results],
        "failed": failed,
    }
    _write(args.out / "arbitrary.json", json.dumps(report, indent=1) + "\n")
    _write(args.out / "arbitrary.md", table)
    rows, row_styles = [], []
    for r in results:
        for j, s in enumerate(r.styles):
            rows.append((f"{r.model} x {s.split('_')[1] if '_' in s else s}", [r.outputs[i][j] for i in range(len(c_imgs))]))
            row_styles.append(s_imgs[j])
    grid = save_grid(args.grid or args.out / "grid.jpg", c_imgs, rows, cell_width=args.cell, styles=row_styles)
    print(table)
    print(f"wrote {args.out / 'arbitrary.json'}, {grid}")
    return 0 if not failed else 3


if __name__ == "__main__":
    raise SystemExit(main())

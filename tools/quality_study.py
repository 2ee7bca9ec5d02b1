"""Quality study: feed-forward models vs the Gatys optimisation reference, scored with VGG16.

For every content x style pair, each ``--model`` (an arbitrary-style model run through
:class:`rtstyle.stylizer.Stylizer` with the style image) and the Gatys reference
(:func:`rtstyle.gatys.gatys`) stylise the content; :class:`rtstyle.quality.QualityMeter` scores
every output against the content and the style. An ``identity`` baseline (the content photo
itself as the output) is scored too: content 0 and the style distance of doing nothing.

Sizes: the content is resized so its longer side is ``--size``, each side rounded to a multiple
of 8; the style so its longer side is ``--size``. Every method gets exactly these arrays, and
they are what the metrics compare against.

Outputs: a JSON report (per-pair rows, per-method summary with mean/median of each metric and
mean seconds per image), a markdown table on stdout, each stylised image and ``<out>/grid.jpg``
(one row per pair: content | style | each model | gatys).

    python tools/quality_study.py --contents A.jpg B.jpg --styles S1.jpg S2.jpg \\
        --model adain.vgg16 [--model adain.r31] --gatys-steps 200 --size 256 \\
        --out docs/quality_adain --report docs/quality_adain.json
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("quality_study")

METRIC_KEYS = ("style_meanstd", "style_gram", "content")


def _size_content(img: np.ndarray, size: int) -> np.ndarray:
    """Longer side ``size``, each side rounded to a multiple of 8 (at least 16)."""
    import cv2

    h, w = img.shape[:2]
    s = size / max(h, w)
    nw, nh = (max(16, int(round(v * s / 8.0)) * 8) for v in (w, h))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(img, (nw, nh), interpolation=interp))


def _size_style(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    s = size / max(h, w)
    if s == 1:
        return img
    nw, nh = max(16, round(w * s)), max(16, round(h * s))
    return np.ascontiguousarray(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC))


def _save(path: Path, img: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"cannot write {path}")


def _fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Letterbox ``img`` into a white ``w`` x ``h`` cell."""
    import cv2

    ih, iw = img.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    cell = np.full((h, w, 3), 255, np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    cell[y:y + nh, x:x + nw] = small
    return cell


def make_grid(columns: list[str], rows: list[tuple[str, list[np.ndarray]]], cell: int = 256) -> np.ndarray:
    """A labelled grid: a header row with the column names, then one row of cells per entry.

    Args:
        columns: column labels.
        rows: ``(row label, images)`` with one RGB uint8 image per column.
        cell: the cells' width (height is 3/4 of it); images are letterboxed into cells.
    """
    import cv2

    cw, ch, pad = cell, cell * 3 // 4, 4
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, cell / 512)
    header_h = int(30 * scale / 0.5)

    def label_bar(text: str, width: int, height: int) -> np.ndarray:
        bar = np.full((height, width, 3), 255, np.uint8)
        (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
        cv2.putText(bar, text, (max(2, (width - tw) // 2), (height + th) // 2), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        return bar

    lines = [np.concatenate([np.pad(label_bar(c, cw, header_h), ((pad, 0), (pad, pad), (0, 0)), constant_values=255)
                             for c in columns], 1)]
    for label, images in rows:
        if len(images) != len(columns):
            raise ValueError(f"row {label!r} has {len(images)} images for {len(columns)} columns")
        cells = [_fit(im, cw, ch) for im in images]
        # row label in the content cell's corner
        (tw, th), base = cv2.getTextSize(label, font, scale * 0.8, 1)
        c0 = cells[0]
        cv2.rectangle(c0, (0, ch - th - base - 6), (min(cw, tw + 6), ch), (0, 0, 0), -1)
        cv2.putText(c0, label, (3, ch - base - 3), font, scale * 0.8, (255, 255, 255), 1, cv2.LINE_AA)
        lines.append(np.concatenate([np.pad(c, ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for c in cells], 1))
    return np.concatenate(lines, 0)


def _short(stem: str, n: int = 16) -> str:
    return stem if len(stem) <= n else stem[: n - 2] + ".."


def _markdown(summary: dict[str, dict[str, Any]], methods: list[str]) -> str:
    head = "| method | n | style_meanstd mean / median | style_gram mean / median | content mean / median | s / image |"
    lines = [head, "|" + "---|" * 6]
    for m in methods:
        s = summary[m]
        cells = [m, str(s["n"])]
        for k in METRIC_KEYS:
            cells.append(f"{s[k]['mean']:.4g} / {s[k]['median']:.4g}")
        sec = s.get("seconds_mean")
        cells.append("-" if sec is None else f"{sec:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rel(p: Path) -> str:
    p = p.resolve()
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contents", nargs="+", type=Path, required=True, help="content photos")
    ap.add_argument("--styles", nargs="+", type=Path, required=True, help="style images")
    ap.add_argument("--model", action="append", default=[], help="arbitrary-style model (repeatable), e.g. adain.vgg16")
    ap.add_argument("--gatys-steps", type=int, default=200, help="L-BFGS iterations of the Gatys reference (0: skip it)")
    ap.add_argument("--gatys-style-weight", type=float, default=None, help="override gatys()'s default style weight")
    ap.add_argument("--reuse-gatys", action="store_true",
                    help="reuse reference images of an earlier run with the same steps/size/weights (lossless PNGs in --out)")
    ap.add_argument("--size", type=int, default=256, help="longer side of the content (rounded to a multiple of 8)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the stylised images and grid.jpg")
    ap.add_argument("--report", type=Path, default=None, help="JSON report (default: <out>/report.json)")
    ap.add_argument("--vgg", type=Path, default=None, help="VGG16 weights (default: $RTSTYLE_WEIGHTS / cache)")
    ap.add_argument("--backend", default="eager", help="Stylizer backend (default eager)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    ap.add_argument("--cell", type=int, default=256, help="grid cell width in pixels")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--verbose", action="store_true", help="log model loading and Gatys runs")
    args = ap.parse_args(argv)
    if args.size < 32:
        ap.error(f"--size must be >= 32, got {args.size}")
    if args.gatys_steps < 0:
        ap.error(f"--gatys-steps must be >= 0, got {args.gatys_steps}")
    if not args.model and args.gatys_steps == 0:
        ap.error("nothing to study: give --model and/or --gatys-steps > 0")
    for p in [*args.contents, *args.styles]:
        if not p.is_file():
            ap.error(f"image not found: {p}")
    if len({p.stem for p in args.contents}) != len(args.contents) or len({p.stem for p in args.styles}) != len(args.styles):
        ap.error("content/style file names (stems) must be unique: they name the output images")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch
    from tqdm import tqdm

    from rtstyle.gatys import CONTENT_LAYER, STYLE_LAYERS, gatys
    from rtstyle.quality import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, QualityMeter, summarise
    from rtstyle.stylizer import Stylizer
    from rtstyle.image import read_image as load_rgb  # noqa: N813 (the name the study reads with)
    from rtstyle.nn import TAPS, load_vgg16

    taps = tuple(sorted({*STYLE_LAYERS, CONTENT_LAYER, *DEFAULT_STYLE_LAYERS, DEFAULT_CONTENT_LAYER}, key=TAPS.__getitem__))
    vgg = load_vgg16(args.vgg, taps=taps)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    vgg = vgg.to(device)
    meter = QualityMeter(vgg)

    contents = {p.stem: _size_content(load_rgb(p), args.size) for p in args.contents}
    styles = {p.stem: _size_style(load_rgb(p), args.size) for p in args.styles}
    methods = list(dict.fromkeys(args.model)) + (["gatys"] if args.gatys_steps > 0 else [])
    stylizers = {m: None for m in args.model}
    gatys_kw: dict[str, Any] = {} if args.gatys_style_weight is None else {"style_weight": args.gatys_style_weight}

    cache_file = args.out / "gatys_cache.json"  # reference runs are slow: kept for --reuse-gatys
    gatys_cache: dict[str, float] = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    grid_rows: list[tuple[str, list[np.ndarray]]] = []
    pairs = [(c, s) for c in contents for s in styles]
    bar = tqdm(total=len(pairs) * (len(methods) + 1), desc="quality", unit="img", disable=args.quiet, dynamic_ncols=True)
    for cname, sname in pairs:
        c_img, s_img = contents[cname], styles[sname]
        c_stats, s_stats = meter.stats(c_img, "content"), meter.stats(s_img, "style")
        cells = [c_img, s_img]

        def record(method: str, out: np.ndarray, seconds: float | None) -> None:
            m = meter.compare(meter.stats(out, f"{method} output"), c_stats, s_stats)
            row: dict[str, Any] = {"content_image": cname, "style_image": sname, "method": method,
                                   "size": f"{c_img.shape[1]}x{c_img.shape[0]}", **m}
            if seconds is not None:
                row["seconds"] = seconds
            rows.append(row)
            bar.update(1)

        record("identity", c_img, None)
        for model in args.model:
            bar.set_postfix_str(f"{cname} x {sname}: {model}")
            st = stylizers[model]
            if st is None:
                st = stylizers[model] = Stylizer(model, style_image=s_img, backend=args.backend, device=device,
                                                 frame_size=(c_img.shape[1], c_img.shape[0]))
            else:
                st.activate(st.prepare(model, style_image=s_img), crossfade=0)
            st.set_frame_size(c_img.shape[1], c_img.shape[0])
            st.stylize(c_img)  # warm-up at this frame size (not timed)
            t0 = time.perf_counter()
            out = st.stylize(c_img)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            sec = time.perf_counter() - t0
            _save(args.out / f"{cname}__{sname}__{model}.jpg", out)
            record(model, out, sec)
            cells.append(out)
        if args.gatys_steps > 0:
            bar.set_postfix_str(f"{cname} x {sname}: gatys")
            gpath = args.out / f"{cname}__{sname}__gatys.png"  # lossless: --reuse-gatys reads it back
            key = f"{gpath.name}:{args.gatys_steps}:{args.size}:{json.dumps(gatys_kw, sort_keys=True)}"
            if args.reuse_gatys and gpath.is_file() and key in gatys_cache:
                out, sec = load_rgb(gpath), gatys_cache[key]
            else:
                t0 = time.perf_counter()
                out = gatys(c_img, s_img, vgg=vgg, steps=args.gatys_steps, **gatys_kw)
                sec = time.perf_counter() - t0
                _save(gpath, out)
                gatys_cache[key] = sec
                cache_file.write_text(json.dumps(gatys_cache, indent=1))
            record("gatys", out, sec)
            cells.append(out)
        grid_rows.append((f"{_short(cname)} x {_short(sname)}", cells))
    bar.close()
    for st in stylizers.values():
        if st is not None:
            st.close()

    all_methods = ["identity", *methods]
    summary: dict[str, dict[str, Any]] = {}
    for m in all_methods:
        mrows = [r for r in rows if r["method"] == m]
        stats = summarise(mrows, keys=list(METRIC_KEYS))
        entry: dict[str, Any] = {"n": len(mrows), **{k: {"mean": v["mean"], "median": v["median"]} for k, v in stats.items()}}
        secs = [r["seconds"] for r in mrows if "seconds" in r]
        entry["seconds_mean"] = float(np.mean(secs)) if secs else None
        summary[m] = entry

    grid = make_grid(["content", "style", *methods], grid_rows, cell=args.cell)
    _save(args.out / "grid.jpg", grid)
    report_path = args.report or args.out / "report.json"
    report = {
        "config": {
            "contents": [_rel(p) for p in args.contents],
            "styles": [_rel(p) for p in args.styles],
            "models": list(dict.fromkeys(args.model)),
            "gatys_steps": args.gatys_steps,
            "gatys": {"style_layers": list(STYLE_LAYERS), "content_layer": CONTENT_LAYER, **gatys_kw},
            "size": args.size,
            "backend": args.backend,
            "device": device,
            "torch_threads": torch.get_num_threads(),
            "metrics": {"style_layers": list(meter.style_layers), "content_layer": meter.content_layer},
            "grid": _rel(args.out / "grid.jpg"),
            "notes": {
                "identity": "the content photo itself as the output (content 0; the style distance of doing nothing)",
                "seconds": "models: one warm Stylizer.stylize call (style encoding and warm-up excluded); "
                           "gatys: the whole optimisation",
                "sizes": "content: longer side --size, each side a multiple of 8; style: longer side --size",
            },
        },
        "rows": rows,
        "summary": summary,
    }
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(_markdown(summary, all_methods))
    print(f"\nreport: {_rel(report_path)}  grid: {_rel(args.out / 'grid.jpg')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

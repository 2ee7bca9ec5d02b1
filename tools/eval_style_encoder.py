"""How much an int8 style encoder changes MetaNet's generated nets, and how much faster it is.

    python tools/eval_style_encoder.py --model metanet.lite --styles <paintings> --contents <photos> \
        --json docs/metanet_encoder.json

For each painting: the style features from the fp32 and the int8 encoder (distance in the meta
network's normalised input units, next to the distances between different paintings), and the
generated nets' outputs on the photos (RMS difference in 0..255 between the int8 and the fp32 net's
output, next to the RMS difference between two paintings' fp32 outputs). Also the encoder's time
per style image (median, same process, side by side).
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import torch

import rtstyle.backends  # noqa: F401  (registers the graph runtime the int8 style encoder runs on)
from rtstyle.eval import read_photos
from rtstyle.models import create_model
from rtstyle.image import read_image, to_tensor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="metanet.lite")
    ap.add_argument("--styles", nargs="+", type=Path, required=True)
    ap.add_argument("--contents", nargs="+", type=Path, required=True)
    ap.add_argument("--content-side", type=int, default=256)
    ap.add_argument("--runs", type=int, default=7, help="timed encoder runs per painting (default 7)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    torch.set_grad_enabled(False)
    meta = {p: create_model(a.model, style_encoder=p) for p in ("fp32", "int8")}
    m = meta["fp32"]
    # encode() shrinks each painting to the net's style size, as a style change does
    styles = [to_tensor(read_image(p, max_side=m.style_image_side)) for p in a.styles]
    photos = [to_tensor(x, max_value=255.0) for x in read_photos(a.contents, a.content_side)]

    def z(f: torch.Tensor) -> torch.Tensor:
        return ((f - m.feat_shift) / m.feat_scale)[0]

    feats: dict[str, list[torch.Tensor]] = {}
    times: dict[str, list[float]] = {}
    for prec, mm in meta.items():
        mm.encode(styles[0])  # build / load the encoder
        feats[prec], times[prec] = [], []
        for s in styles:
            ts = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                f = mm.encode(s)
                ts.append(1000 * (time.perf_counter() - t0))
            feats[prec].append(f)
            times[prec].append(statistics.median(ts))

    def outputs(f: torch.Tensor) -> list[torch.Tensor]:
        net = m.generate_from_features(f)
        return [net(p).clamp(0, 255) for p in photos]

    def rms(xs: list[torch.Tensor], ys: list[torch.Tensor]) -> float:
        return float(torch.stack([(x - y).pow(2).mean().sqrt() for x, y in zip(xs, ys)]).mean())

    ref = [outputs(f) for f in feats["fp32"]]
    between_feat = [float((z(x) - z(y)).norm()) for x, y in itertools.combinations(feats["fp32"], 2)]
    between_out = [rms(x, y) for x, y in itertools.combinations(ref, 2)]
    rows = []
    for i, p in enumerate(a.styles):
        others = [float((z(feats["int8"][i]) - z(feats["fp32"][j])).norm()) for j in range(len(styles)) if j != i]
        d = float((z(feats["int8"][i]) - z(feats["fp32"][i])).norm())
        rows.append({"style": p.stem, "feature_distance_int8_vs_fp32": round(d, 2),
                     "nearest_other_painting": round(min(others), 2),
                     "output_rms_int8_vs_fp32": round(rms(outputs(feats["int8"][i]), ref[i]), 2),
                     "encoder_ms_fp32": round(times["fp32"][i], 1), "encoder_ms_int8": round(times["int8"][i], 1)})
        print(json.dumps(rows[-1]), flush=True)
    summary = {
        "feature_distance_int8_vs_fp32_median": statistics.median(r["feature_distance_int8_vs_fp32"] for r in rows),
        "feature_distance_between_paintings_median": round(statistics.median(between_feat), 2),
        "feature_distance_between_paintings_min": round(min(between_feat), 2),
        "output_rms_int8_vs_fp32_median": statistics.median(r["output_rms_int8_vs_fp32"] for r in rows),
        "output_rms_int8_vs_fp32_max": max(r["output_rms_int8_vs_fp32"] for r in rows),
        "output_rms_between_paintings_median": round(statistics.median(between_out), 2),
        "output_rms_between_paintings_min": round(min(between_out), 2),
        "own_painting_nearest": sum(r["feature_distance_int8_vs_fp32"] < r["nearest_other_painting"] for r in rows),
        "encoder_ms_fp32_median": statistics.median(times["fp32"]),
        "encoder_ms_int8_median": statistics.median(times["int8"]),
        # identical features would mean the int8 encoder fell back to fp32 (no OpenVINO/NNCF)
        "int8_differs_from_fp32": any(not torch.equal(x, y) for x, y in zip(feats["int8"], feats["fp32"])),
    }
    print(json.dumps(summary, indent=2))
    if a.json:
        a.json.write_text(json.dumps({"model": a.model, "contents": [p.name for p in a.contents],
                                      "content_side": a.content_side, "rows": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

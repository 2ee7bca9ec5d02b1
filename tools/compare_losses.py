"""Training-loss comparison: multi-style / arbitrary-style models against per-style Johnson nets.

Every model family here is trained with the same perceptual loss (:class:`rtstyle.eval.TrainingLoss`,
VGG16, weights from the training configs): content = ``content_weight`` x MSE of relu2_2, style = ``style_weight`` x the sum over relu1_2,
relu2_2, relu3_3, relu4_3 of the MSE between Gram matrices of the output and of the style image.
This tool scores each model's outputs on held photos with exactly that loss, so a multi-style net
(MSG-Net), a meta network (MetaNet) and a dedicated net per style (Johnson) are compared on the
objective they all optimised.

    python tools/compare_losses.py --styles starry_night wave \\
        --model "Johnson lite=johnson.{style}_lite" \\
        --model "MSG-Net=msgnet.lite#bank" \\
        --model "MetaNet=metanet.lite#image" \\
        --contents ../shared/media/photos/content --vgg ../shared/weights/vgg16_imagenet_to_relu4_3.pth \\
        --json docs/losses.json

``--model LABEL=MODEL[#bank|#image]``: ``{style}`` in MODEL is replaced by the style name; ``#bank``
picks the style from the model's bank by name (MSG-Net), ``#image`` gives it the style image
(``--style-dir/<style>.jpg``; MetaNet, AdaIN). Each photo is resized so its shorter side is
``--size``; the style image for the Gram targets so its longer side is ``--style-size``.
Prints a markdown table (mean over photos; lower is better) and writes every row to ``--json``.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rtstyle.eval import LossWeights, TrainingLoss, loss_table, markdown_table, parse_model_entry, read_photos
from rtstyle.image import find_image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", nargs="+", required=True, help="style names (files <style-dir>/<name>.jpg)")
    ap.add_argument("--style-dir", type=Path, default=Path("../shared/media/styles"),
                    help="folder of the style images (default ../shared/media/styles)")
    ap.add_argument("--model", action="append", required=True, help="LABEL=MODEL[#bank|#image] ({style} substituted)")
    ap.add_argument("--contents", type=Path, required=True, help="folder of held photos")
    ap.add_argument("--limit", type=int, default=0, help="use the first N photos (0: all)")
    ap.add_argument("--size", type=int, default=256, help="photo short side (default 256)")
    ap.add_argument("--style-size", type=int, default=256, help="style image long side for the Gram targets")
    ap.add_argument("--vgg", default=None)
    ap.add_argument("--content-weight", type=float, default=None, help="default: the training configs' weight")
    ap.add_argument("--style-weight", type=float, default=None, help="default: the training configs' weight")
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    try:
        models = [parse_model_entry(m) for m in a.model]
    except ValueError as e:
        ap.error(str(e))
    styles = {}
    for style in a.styles:
        found = find_image(a.style_dir, style)
        if found is None:
            ap.error(f"no style image {style}.jpg/.png/... in {a.style_dir}")
        styles[style] = found
    photos = read_photos(a.contents, a.size, limit=a.limit)
    w = LossWeights()
    w = replace(w, content=w.content if a.content_weight is None else a.content_weight,
                style=w.style if a.style_weight is None else a.style_weight)
    loss = TrainingLoss(w, vgg_path=a.vgg)

    def progress(r: dict) -> None:
        print(f"{r['style']:<14} {r['model']:<16} content {r['content']:10.4g}  style {r['style_loss']:10.4g}", flush=True)

    rows = loss_table(loss, models, styles, photos, backend=a.backend, style_side=a.style_size, on_row=progress)
    print("\n" + markdown_table(rows))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: str(v) for k, v in vars(a).items()}
        settings.update(content_weight=str(loss.weights.content), style_weight=str(loss.weights.style))
        a.json.write_text(json.dumps({"settings": settings, "photos": len(photos), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

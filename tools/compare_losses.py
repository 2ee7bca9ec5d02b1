"""Training-loss comparison: multi-style / arbitrary-style models against per-style Johnson nets.

Every model family here is trained with the same perceptual loss (``rtstyle.training.losses``,
VGG16): content = ``content_weight`` x MSE of relu2_2, style = ``style_weight`` x the sum over relu1_2,
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
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _resize_short(img: np.ndarray, side: int, multiple: int = 4) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    s = side / min(h, w)
    nw, nh = (max(multiple, int(round(v * s / multiple)) * multiple) for v in (w, h))
    return np.ascontiguousarray(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC))


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from rtstyle.models.metanet import resize_long
    from rtstyle.stylizer import Stylizer
    from rtstyle.training.data import list_images, load_rgb
    from rtstyle.training.losses import content_loss, gram, gram_style_loss
    from rtstyle.training.vgg import load_vgg16

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", nargs="+", required=True, help="style names (files <style-dir>/<name>.jpg)")
    ap.add_argument("--style-dir", type=Path, default=REPO.parent / "shared" / "media" / "styles")
    ap.add_argument("--model", action="append", required=True, help="LABEL=MODEL[#bank|#image] ({style} substituted)")
    ap.add_argument("--contents", type=Path, required=True, help="folder of held photos")
    ap.add_argument("--limit", type=int, default=0, help="use the first N photos (0: all)")
    ap.add_argument("--size", type=int, default=256, help="photo short side (default 256)")
    ap.add_argument("--style-size", type=int, default=256, help="style image long side for the Gram targets")
    ap.add_argument("--vgg", default=None)
    ap.add_argument("--content-weight", type=float, default=1e5)
    ap.add_argument("--style-weight", type=float, default=1e10)
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    torch.set_grad_enabled(False)
    vgg = load_vgg16(a.vgg)
    photos = [_resize_short(load_rgb(p), a.size) for p in list_images(a.contents)]
    if a.limit:
        photos = photos[: a.limit]
    photo_feats = [vgg(_t(p)) for p in photos]
    models = []
    for spec in a.model:
        label, _, rest = spec.partition("=")
        model, _, how = rest.partition("#")
        if not label or not model or how not in ("", "bank", "image"):
            ap.error(f"bad --model {spec!r}: LABEL=MODEL[#bank|#image]")
        models.append((label, model, how))

    rows: list[dict[str, Any]] = []
    for style in a.styles:
        files = [p for p in a.style_dir.glob(f"{style}.*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
        if not files:
            ap.error(f"no style image {style}.jpg/.png in {a.style_dir}")
        style_t = resize_long(_t(load_rgb(files[0])), a.style_size)
        targets = {k: gram(v) for k, v in vgg(style_t).items()}
        for label, model, how in models:
            name = model.replace("{style}", style)
            st = Stylizer(name, backend=a.backend, size=a.size, **({"style_image": str(files[0])} if how == "image" else {}))
            if how == "bank":
                st.activate(st.prepare(st.state.model, style_vector=style))
            lc, ls = [], []
            for img, fx in zip(photos, photo_feats):
                fy = vgg(_t(st.stylize(img)))
                lc.append(a.content_weight * float(content_loss(fy["relu2_2"], fx["relu2_2"])))
                ls.append(a.style_weight * float(gram_style_loss(fy, targets)))
            st.close()
            rows.append({"style": style, "model": label, "spec": name, "content": statistics.mean(lc),
                         "style_loss": statistics.mean(ls), "total": statistics.mean(lc) + statistics.mean(ls),
                         "per_photo": {"content": lc, "style": ls}})
            print(f"{style:<14} {label:<16} content {rows[-1]['content']:10.4g}  style {rows[-1]['style_loss']:10.4g}",
                  flush=True)

    print(f"\n| style | model | content loss | style loss | total |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['style']} | {r['model']} | {r['content']:.3g} | {r['style_loss']:.3g} | {r['total']:.3g} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(a).items()}, "photos": len(photos),
                                      "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

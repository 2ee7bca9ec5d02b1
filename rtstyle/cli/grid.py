"""``rtstyle grid`` (before/after grids of images x models) and ``rtstyle gatys`` (the slow
optimisation-based reference on one image)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ._common import CLIError, default_model

__all__ = ["add_parsers", "cmd_gatys", "cmd_grid"]

log = logging.getLogger(__name__)


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("grid", help="before/after grid of images x models")
    s.add_argument("images", nargs="+")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output file")
    s.add_argument("--model", "-m", action="append", default=None, help="repeat for one row per model")
    s.add_argument("--style", action="append", default=None,
                   help="style image, for models that take one; repeat for one row per style image")
    s.add_argument("--all-styles", action="store_true",
                   help="one row per style of a multi-style model's bank (msgnet.*, onnx.multistyle26)")
    s.add_argument("--style-images", metavar="DIR",
                   help="with --all-styles: folder with the bank's paintings (<style name>.jpg), shown in a first "
                        "column (style-image rows show theirs anyway)")
    s.add_argument("--backend", "-b", default="eager")
    s.add_argument("--device", default="cpu")
    s.add_argument("--max-side", type=int, default=640, help="resize inputs to this longer side before stylising")
    s.add_argument("--cell-width", type=int, default=320)
    s.set_defaults(func=cmd_grid)

    s = sub.add_parser("gatys", help="slow offline optimisation-based stylisation (Gatys et al. 2016), a quality reference")
    s.add_argument("content")
    s.add_argument("style")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output file")
    s.add_argument("--steps", type=int, default=300, help="L-BFGS iterations (one VGG16 forward/backward each)")
    s.add_argument("--size", type=int, default=512, help="longer side of the output")
    s.add_argument("--style-weight", type=float, default=None, help="relative Gram error weight (default 1)")
    s.add_argument("--content-weight", type=float, default=None, help="relative content error weight (default 1)")
    s.add_argument("--tv-weight", type=float, default=None, help="total-variation weight (default 1)")
    s.add_argument("--init", choices=["content", "noise"], default="content")
    s.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--vgg", default=None, help="VGG16 weights (default: $RTSTYLE_WEIGHTS, the user cache, torchvision's cache)")
    s.set_defaults(func=cmd_gatys)


def _bank_style_file(folder: str | Path, name: str) -> Path | None:
    """The painting of a bank style in ``folder``: a file whose stem is the style's name."""
    from ..image import find_image

    found = find_image(folder, name)
    if found is None:
        log.warning("no image named %s.* in %s: its row has no style column", name, folder)
    return found


def cmd_grid(args: argparse.Namespace) -> int:
    """Before/after grid: one column per input image, one row per model."""
    from ..grid import save_grid
    from ..image import read_image
    from ..jobs import refuse_output
    from ..models._abilities import ParsesStyleVector
    from ..stylizer import Stylizer

    refuse_output(args.output, args.images + (args.style or []), args.overwrite)
    inputs = []
    for p in args.images:
        if not Path(p).is_file():
            raise CLIError(f"image not found: {p}")
        img = read_image(p, max_side=args.max_side)
        inputs.append(img[: img.shape[0] // 4 * 4, : img.shape[1] // 4 * 4])
    rows = []
    thumbs: list[Any] = []  # the style image (or None) of each row, when there is one
    for p in args.style or []:
        if not Path(p).is_file():
            raise CLIError(f"style image not found: {p}")
    if args.style_images and not Path(args.style_images).is_dir():
        raise CLIError(f"--style-images: not a folder: {args.style_images}")
    for m in args.model or [default_model()]:
        st = Stylizer(m, backend=args.backend, device=args.device, style_image=args.style[0] if args.style else None)
        label = Path(m).stem if Path(m).is_file() else (st.spec.name if ":" in m else m)
        frame = inputs[0]
        st.set_frame_size(frame.shape[1], frame.shape[0])
        if args.style and len(args.style) > 1:  # one row per style image
            for p in args.style:
                st.set_style(style_image=p, wait=True)
                rows.append((f"{label} + {Path(p).stem}", [st.stylize(i) for i in inputs]))
                thumbs.append(read_image(p, max_side=1024))
        elif args.all_styles and len(st.spec.styles) > 1 and isinstance(st.state.model, ParsesStyleVector):
            for name in st.spec.styles:  # one row per style of the model's bank
                st.set_style(style_vector=name, wait=True)
                rows.append((f"{label}: {name}", [st.stylize(i) for i in inputs]))
                found = _bank_style_file(args.style_images, name) if args.style_images else None
                thumbs.append(read_image(found, max_side=1024) if found else None)
        else:
            rows.append((label, [st.stylize(i) for i in inputs]))
            thumbs.append(read_image(args.style[0], max_side=1024) if args.style and st.state.style_source else None)
        st.close()
    path = save_grid(args.output, inputs, rows, cell_width=args.cell_width, styles=thumbs)
    if not args.quiet:
        print(f"wrote {path}")
    return 0


def cmd_gatys(args: argparse.Namespace) -> int:
    """``rtstyle gatys``: the slow optimisation-based reference (Gatys et al. 2016) on one image."""
    from ..gatys import gatys
    from ..io.images import write_image
    from ..jobs import refuse_output
    from ..nn.vgg import STYLE_LAYERS, load_vgg16

    for p, what in ((args.content, "content image"), (args.style, "style image")):
        if not Path(p).is_file():
            raise CLIError(f"{what} not found: {p}")
    refuse_output(args.output, [args.content, args.style], args.overwrite)
    vgg = load_vgg16(args.vgg, taps=STYLE_LAYERS)
    weights = {k: v for k, v in dict(style_weight=args.style_weight, content_weight=args.content_weight,
                                     tv_weight=args.tv_weight).items() if v is not None}
    out = gatys(args.content, args.style, vgg=vgg, steps=args.steps, size=args.size, init=args.init,
                optimizer=args.optimizer, seed=args.seed, progress=not args.quiet, **weights)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_image(args.output, out)  # temp file + rename: a failed write leaves no partial image
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0

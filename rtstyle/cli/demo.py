"""``rtstyle demo``: the bundled sample clip stylized, and a before/after grid of the shipped lite styles."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import default_model, size_arg, video_done_line

__all__ = ["add_parser", "cmd_demo"]


def add_parser(sub: Any) -> None:
    s = sub.add_parser("demo", help="stylise the bundled sample clip with the embedded default model")
    s.add_argument("-o", "--output", default="rtstyle-demo", help="output folder (default ./rtstyle-demo)")
    s.add_argument("--model", "-m", default=None)
    s.add_argument("--size", type=size_arg, default=None)
    s.add_argument("--backend", "-b", default="auto")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Stylise the bundled sample clip with the embedded default(s) and write a before/after grid."""
    from importlib import resources

    from ..grid import save_grid
    from ..io import open_source
    from ..jobs import StylizerSettings, stylize_path
    from ..models import list_models
    from ..stylizer import Stylizer

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model = args.model or default_model()
    settings = StylizerSettings(model=model, size=args.size, backend=args.backend, device=args.device,
                                precision="fp32")
    with resources.as_file(resources.files("rtstyle.assets").joinpath("sample.mp4")) as sample:
        res = stylize_path(sample, out / "demo.mp4", settings, report=out / "demo_report.json",
                           overwrite=True, progress=not args.quiet)  # the demo's own folder: a rerun redoes it
        assert res.report is not None
        if not args.quiet:
            print(video_done_line(res.output, res.report))
        # before/after grid: sample frames x shipped styles
        with open_source(str(sample)) as src:
            frames = [f.image for i, f in zip(range(60), src) if i in (0, 30, 59)]
        rows = []
        for m in list_models("johnson.*_lite") or [model]:
            st = Stylizer(m, backend=args.backend, device=args.device)
            rows.append((m, [st.stylize(f) for f in frames]))
            st.close()
        save_grid(out / "demo_grid.jpg", frames, rows)
    if not args.quiet:
        print(f"wrote {out / 'demo.mp4'} and {out / 'demo_grid.jpg'}")
    return 0

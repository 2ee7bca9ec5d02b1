"""``rtstyle models`` (the registry) and ``rtstyle weights`` (third-party weight files)."""
from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import CLIError

__all__ = ["add_models_parser", "add_weights_parser", "cmd_models", "cmd_weights"]


def add_models_parser(sub: Any) -> None:
    s = sub.add_parser("models", help="list the registered models")
    s.add_argument("pattern", nargs="?", default="*")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models)


def add_weights_parser(sub: Any) -> None:
    s = sub.add_parser("weights", help="third-party weights: where they are found, import into the cache")
    s.add_argument("action", choices=["list", "import"])
    s.add_argument("path", nargs="?")
    s.set_defaults(func=cmd_weights)


def cmd_models(args: argparse.Namespace) -> int:
    from ..models import get_spec, list_models

    names = list_models(args.pattern)
    if args.json:
        print(json.dumps([json.loads(get_spec(n).to_json()) for n in names], indent=2))
        return 0
    if not names:
        print(f"no models match {args.pattern!r}")
        return 1
    rows = [(n, get_spec(n)) for n in names]
    w = max(len(n) for n, _ in rows)
    for n, s in rows:
        style = ("any image" if s.needs_style_image else
                 f"{len(s.styles)} styles" if len(s.styles) > 3 else ", ".join(s.styles) or "-")
        print(f"{n:<{w}}  {s.family:<9} style: {style:<24} live size: {s.default_size or 'native'}  licence: {s.licence}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from ..weights import cache_dir, import_weights, list_weights

    if args.action == "list":
        for w in list_weights():
            where = f"{w.path}  [{w.origin}]" if w.path else "not found"
            print(f"{w.key:<24} {where}")
        print(f"(search order: explicit path, $RTSTYLE_WEIGHTS, {cache_dir()}, torchvision cache for vgg16)")
        from ..models.lst import shipped_decoder

        for level in (21, 11):
            try:
                print(f"relu{level // 10}_1 decoder (shipped) {shipped_decoder(level)}  [used by *.multi; lst/dec_r{level} "
                      "is another layout and is not used]")
            except FileNotFoundError as e:
                print(f"relu{level // 10}_1 decoder: {e}")
        return 0
    if not args.path:
        raise CLIError("`rtstyle weights import` needs a PATH (a weights folder or one file)")
    for p in import_weights(args.path):
        print(f"imported {p}")
    return 0

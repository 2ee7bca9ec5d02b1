"""The ``rtstyle`` command: thin subcommands over the public API, one module per command group.

Every user-facing failure (missing file, unknown model, no camera, unwritable output, missing
optional dependency) ends as one ``rtstyle: error: ...`` line and a non-zero exit, never a
traceback (``--debug`` shows it). The command modules import their heavy dependencies inside the
command functions, so ``rtstyle --help`` stays fast.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from typing import Any

from . import catalog, demo, evaluate, export, grid, live, stylize, train
from ._common import CLIError

__all__ = ["main", "build_parser", "CLIError", "DEFAULT_MODEL"]


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_MODEL":  # from the library, imported on use: `rtstyle --help` needs none of it
        from ..jobs import DEFAULT_MODEL

        return DEFAULT_MODEL
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (each command module adds its own)."""
    from .. import __version__

    p = argparse.ArgumentParser(prog="rtstyle", description="Real-time neural style transfer for webcams, video files and streams.")
    p.add_argument("--version", action="version", version=f"rtstyle {__version__}")
    p.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stylize.add_parser(sub)
    live.add_parser(sub)
    catalog.add_models_parser(sub)
    demo.add_parser(sub)
    grid.add_parsers(sub)  # grid, gatys
    evaluate.add_parser(sub)
    train.add_parser(sub)
    catalog.add_weights_parser(sub)
    export.add_parsers(sub)  # bench, export
    return p


def _user_errors() -> tuple[type[BaseException], ...]:
    from ..backends.base import BackendUnavailableError
    from ..distributed.errors import BatchError, RayUnavailableError
    from ..io.base import IOErrorBase
    from ..models._registry import UnknownModelError
    from ..weights import WeightNotFoundError

    return (CLIError, FileNotFoundError, NotADirectoryError, PermissionError, UnknownModelError, IOErrorBase,
            BackendUnavailableError, WeightNotFoundError, ValueError, BatchError, RayUnavailableError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rtstyle`` command. Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rtstyle: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        if args.debug:
            raise
        msg = str(e) or type(e).__name__
        print(f"rtstyle: error: {msg.splitlines()[0]}", file=sys.stderr)
        return 1
    except RuntimeError as e:  # e.g. errors raised from libraries inside stages
        if args.debug:
            raise
        print(f"rtstyle: error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
        return 1

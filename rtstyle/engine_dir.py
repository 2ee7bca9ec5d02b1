"""Where built engines are cached: the one answer shared by the engine cache
(:mod:`rtstyle.backends.cache`) and the torch-free start-up path (:mod:`rtstyle.fastpath`).

Imports nothing heavy: the start-up path must find the cache without importing torch.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """``$RTSTYLE_ENGINES`` if set; else ``./engines`` when run from a checkout of the project (it
    has ``engines/README.md``); else the user cache ``~/.cache/rtstyle/engines``."""
    env = os.environ.get("RTSTYLE_ENGINES")
    if env:
        return Path(env)
    if (Path("engines") / "README.md").is_file():
        return Path("engines")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rtstyle" / "engines"

"""Models shipped in ``rtstyle.weights_data``: the manifest's entries of a family, their files, registering them."""
from __future__ import annotations

import json
from contextlib import AbstractContextManager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

from ._registry import register_model
from ._spec import ModelSpec

__all__ = ["PKG", "register_entries", "shipped_entries", "shipped_file"]

PKG = "rtstyle.weights_data"


def shipped_entries(family: str) -> list[dict[str, Any]]:
    """The manifest entries (``{"spec": {...}, ...}``) of ``family``; none when nothing ships."""
    try:
        text = resources.files(PKG).joinpath("manifest.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return []
    return [e for e in json.loads(text)["models"] if e["spec"].get("family") == family]


def shipped_file(spec: ModelSpec) -> AbstractContextManager[Path]:
    """The shipped weights file of ``spec`` as a real path (a context manager: :func:`importlib.resources.as_file`)."""
    return resources.as_file(resources.files(PKG).joinpath(str(spec.weights)))


def register_entries(entries: Iterable[dict[str, Any]], factory: Callable[..., Any]) -> None:
    """Register ``factory`` under the spec of every manifest entry."""
    for entry in entries:
        register_model(ModelSpec.from_json(json.dumps(entry["spec"])))(factory)

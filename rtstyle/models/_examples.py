"""One registered model per family to exercise it (tests, ``tools/gpu_acceptance.py``), derived from the registry."""
from __future__ import annotations

import math

from ._registry import get_spec, list_models
from ._shipped import shipped_entries

__all__ = ["family_examples"]


def family_examples() -> dict[str, str]:
    """``{family: model name}`` for every registered family: the model a check of the whole family runs.

    Chosen from the registry, so a new family or model is covered at once: a model whose weights ship
    with the package first (it runs everywhere, without ``$RTSTYLE_WEIGHTS``), then the one with the
    smallest recommended internal size (``spec.default_size``: the cheapest to run), then by name.
    """
    by_family: dict[str, list[str]] = {}
    for name in list_models():
        by_family.setdefault(get_spec(name).family, []).append(name)
    out: dict[str, str] = {}
    for family, names in sorted(by_family.items()):
        shipped = {e["spec"]["name"] for e in shipped_entries(family)}

        def cost(name: str) -> tuple[bool, float, str]:
            size = get_spec(name).default_size
            return name not in shipped, math.inf if size is None else float(size), name

        out[family] = min(names, key=cost)
    return out

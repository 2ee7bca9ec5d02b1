"""Style vectors: a choice or blend of a model's built-in styles as normalised weights.

Shared by every family whose style is a weight vector over built-in styles (a foreign ONNX
multi-style net, MSG-Net's style bank).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["parse_style_vector"]


def parse_style_vector(value: Any, size: int, *, styles: Sequence[str] = (), what: str = "style vector") -> list[float]:
    """Turn a style choice into ``size`` non-negative weights summing to 1.

    Args:
        value: a style index (``3``), a string index or blend (``"3"``, ``"3:0.5,7:0.5"``, names
            from ``styles`` in place of indices), ``size`` comma-separated weights, or a sequence /
            array / tensor of ``size`` weights.
        size: the vector length.
        styles: style names accepted in blend strings.
        what: how errors refer to the value.

    Raises:
        ValueError: wrong length, a negative or non-finite weight, all zeros, an index out of range,
            or an unparsable string.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a style index, a blend like '3:0.5,7:0.5' or {size} weights, got a bool")
    if isinstance(value, (int, np.integer)):
        return _one_hot(int(value), size, what)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+", text):
            return _one_hot(int(text), size, what)
        if ":" in text:
            w = [0.0] * size
            for part in filter(None, (p.strip() for p in text.split(","))):
                key, sep, num = part.partition(":")
                key = key.strip()
                if key.isdigit():
                    idx = int(key)
                elif key in styles:
                    idx = list(styles).index(key)
                else:
                    raise ValueError(f"{what}: {key!r} in {value!r} is neither a style index nor a style name")
                if not 0 <= idx < size:
                    raise ValueError(f"{what}: style index {idx} out of range 0..{size - 1}")
                try:
                    weight = float(num)
                except ValueError:
                    raise ValueError(f"{what}: weight {num!r} of style {key} in {value!r} is not a number") from None
                if w[idx]:
                    raise ValueError(f"{what}: style {key} appears twice in {value!r}")
                w[idx] = weight
            return _normalise(w, size, what)
        if text in styles:
            return _one_hot(list(styles).index(text), size, what)
        try:
            seq: Any = [float(p) for p in text.split(",")]
        except ValueError:
            names = f"a style name ({', '.join(styles)}), " if styles else ""
            raise ValueError(f"{what}: cannot parse {value!r}; use {names}an index (3), a blend (3:0.5,7:0.5) "
                             f"or {size} comma-separated weights") from None
        return _normalise(seq, size, what)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a style index, a blend string or {size} weights, "
                         f"got {type(value).__name__}") from None
    if arr.size == 1 and np.ndim(value) == 0:
        raise ValueError(f"{what}: a single number must be an integer style index, got {value!r}")
    return _normalise(list(arr), size, what)


def _one_hot(idx: int, size: int, what: str) -> list[float]:
    if not 0 <= idx < size:
        raise ValueError(f"{what}: style index {idx} out of range 0..{size - 1}")
    w = [0.0] * size
    w[idx] = 1.0
    return w


def _normalise(w: Sequence[float], size: int, what: str) -> list[float]:
    if len(w) != size:
        raise ValueError(f"{what}: expected {size} weights, got {len(w)}")
    arr = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: weights must be finite numbers")
    if np.any(arr < 0):
        raise ValueError(f"{what}: weights must be non-negative, got {float(arr.min()):g} at index {int(arr.argmin())}")
    total = float(arr.sum())
    if total <= 0:
        raise ValueError(f"{what}: weights sum to 0; give at least one positive weight")
    return [float(v) for v in arr / total]

"""Reading and writing the families' own safetensors files (one format tag in the metadata each)."""
from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["read_safetensors", "write_safetensors"]


def write_safetensors(path: str | Path, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write ``state`` with ``metadata`` to ``path`` (parents created; temp file + rename).

    The tensors are written as given: detach, cast and move them to the CPU first.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def read_safetensors(path: str | Path, fmt: str, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The float32 tensors and the metadata of a file whose ``format`` metadata is ``fmt``.

    Args:
        path: the file.
        fmt: the expected ``format`` tag (e.g. ``"rtstyle.linear_transform/1"``).
        what: what the file holds, for the errors ("linear transform").

    Raises:
        ValueError: another format, or not a readable safetensors file (truncated, another kind):
            a user error, like a bad weight file.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            if meta.get("format") != fmt:
                raise ValueError(f"{path}: not an rtstyle {what} (format {meta.get('format')!r})")
            return {k: f.get_tensor(k).float() for k in f.keys()}, meta
    except SafetensorError as e:
        raise ValueError(f"{path}: cannot read the {what} ({e})") from None

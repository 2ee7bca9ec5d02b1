"""Before/after grids for READMEs, notes and `rtstyle demo`."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .image import resize

__all__ = ["make_grid", "save_grid"]


def _label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = img.copy()
    scale = max(0.4, img.shape[1] / 640)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(out, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _fit(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``img`` shrunk to fit ``width`` x ``height``, centred on white (the aspect ratio kept)."""
    h, w = img.shape[:2]
    s = min(width / w, height / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    out = np.full((height, width, 3), 255, np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y:y + nh, x:x + nw] = resize(img, (nw, nh))
    return out


def make_grid(inputs: Sequence[np.ndarray], rows: Sequence[tuple[str, Sequence[np.ndarray]]], cell_width: int = 320,
              styles: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
    """A grid: first row the inputs ("input"), then one labelled row per style.

    Args:
        inputs: RGB uint8 images (one column each).
        rows: ``(label, outputs)`` with one output per input.
        cell_width: width of each cell; heights follow each image's aspect ratio of the first input.
        styles: optional style image per row (``None`` where a row has none): shown whole in a first
            column, so a reader can judge whether each row carries its painting's look.
    """
    import cv2

    h0, w0 = inputs[0].shape[:2]
    ch = round(cell_width * h0 / w0)

    def cell(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (cell_width, ch), interpolation=cv2.INTER_AREA)

    if styles is not None and len(styles) != len(rows):
        raise ValueError(f"{len(styles)} style images for {len(rows)} rows")
    lead = styles is not None and any(s is not None for s in styles)
    blank = np.full((ch, cell_width, 3), 255, np.uint8)
    lines = [([_label(blank, "style")] if lead else []) + [_label(cell(i), "input") for i in inputs]]
    for r, (name, outs) in enumerate(rows):
        if len(outs) != len(inputs):
            raise ValueError(f"row {name!r} has {len(outs)} images for {len(inputs)} inputs")
        first = []
        if lead:
            s_img = styles[r]  # type: ignore[index]
            first = [blank if s_img is None else _fit(s_img, cell_width, ch)]
        lines.append(first + [_label(cell(o), name) for o in outs])
    pad = 4
    rows_img = [np.concatenate([np.pad(c, ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for c in line], 1) for line in lines]
    return np.concatenate(rows_img, 0)


def save_grid(path: str | Path, inputs: Sequence[np.ndarray], rows: Sequence[tuple[str, Sequence[np.ndarray]]], cell_width: int = 320,
              styles: Sequence[np.ndarray | None] | None = None) -> Path:
    from .io.images import write_image

    grid = make_grid(inputs, rows, cell_width, styles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, grid)  # temp file + rename: never half a grid
    return path

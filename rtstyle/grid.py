"""Before/after grids for READMEs, notes and `rtstyle demo`."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["make_grid", "save_grid"]


def _label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = img.copy()
    scale = max(0.4, img.shape[1] / 640)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(out, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def make_grid(inputs: Sequence[np.ndarray], rows: Sequence[tuple[str, Sequence[np.ndarray]]], cell_width: int = 320) -> np.ndarray:
    """A grid: first row the inputs ("input"), then one labelled row per style.

    Args:
        inputs: RGB uint8 images (one column each).
        rows: ``(label, outputs)`` with one output per input.
        cell_width: width of each cell; heights follow each image's aspect ratio of the first input.
    """
    import cv2

    h0, w0 = inputs[0].shape[:2]
    ch = round(cell_width * h0 / w0)

    def cell(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (cell_width, ch), interpolation=cv2.INTER_AREA)

    lines = [[_label(cell(i), "input") for i in inputs]]
    for name, outs in rows:
        if len(outs) != len(inputs):
            raise ValueError(f"row {name!r} has {len(outs)} images for {len(inputs)} inputs")
        lines.append([_label(cell(o), name) for o in outs])
    pad = 4
    rows_img = [np.concatenate([np.pad(c, ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for c in line], 1) for line in lines]
    return np.concatenate(rows_img, 0)


def save_grid(path: str | Path, inputs: Sequence[np.ndarray], rows: Sequence[tuple[str, Sequence[np.ndarray]]], cell_width: int = 320) -> Path:
    import cv2

    grid = make_grid(inputs, rows, cell_width)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise OSError(f"cannot write {path}")
    return path

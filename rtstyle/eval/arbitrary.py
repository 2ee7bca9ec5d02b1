"""Held-out matrix evaluation of arbitrary-style models: does the output carry *its* painting?

A model stylises every content photo with every held-out painting (paintings no model of the
project trained on: :data:`HELD_OUT_STYLES`, kept out of every trainer's style list by name).
Each output is compared with **every** painting of the matrix by the VGG16 Gram distance of
:class:`rtstyle.quality.QualityMeter` (``style_gram``: summed over relu1_2, relu2_2, relu3_3,
relu4_3, the MSE between size-normalised Gram matrices). Two numbers per model:

* **accuracy** - the share of outputs whose Gram distance is smallest to their own painting
  (a model that paints every photo the same way scores ``1 / n_styles`` or so);
* **matched ratio** - the mean over outputs of ``d(output, own painting) / d(content, own painting)``:
  1 means no style at all, lower means closer to the painting.

:func:`matrix_scores` computes both from the distances (pure, no network); :func:`evaluate_model`
runs one model through the :class:`~rtstyle.stylizer.Stylizer` and scores it;
``tools/eval_arbitrary.py`` writes the JSON report, the markdown table and the grid.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..quality import ImageStats, QualityMeter

__all__ = [
    "DEFAULT_CONTENTS",
    "HELD_OUT_STYLES",
    "MatrixResult",
    "evaluate_model",
    "gram_distances",
    "held_out_paths",
    "markdown_table",
    "matrix_scores",
    "size_for_matrix",
]

log = logging.getLogger(__name__)

#: Stems of the held-out paintings (``../shared/media/styles/public_domain``). None of the
#: project's trained style models saw them: ``adain.vgg16`` and ``metanet.lite`` list them in their
#: manifest's ``held_out_styles``, ``linear.r31`` excludes them by default. Caveat: ``msgnet.lite``'s
#: 16-style bank holds the Hiroshige (as ``hiroshige_mackerel``), so for MSG-Net only the other two
#: are new images; ``onnx.arbitrary`` is third-party (Magenta), trained on a painting corpus we
#: cannot inspect.
HELD_OUT_STYLES: tuple[str, ...] = (
    "Utagawa_Hiroshige_Horse_mackerel_and_Prawn_1840",
    "Mary_Cassatt_Summertime_1894",
    "Katsushika_Hokusai_Ejiri_in_Suruga_Province_1830_1833",
)
#: Content photos of the matrix (``../shared/media/photos/content``): a city at night, two dogs, citrus slices.
DEFAULT_CONTENTS: tuple[str, ...] = (
    "palapeli_cincinnati-bridge.jpg",
    "lomiri_friends_by_Aitzol_Berasategi.jpg",
    "palapeli_citrus-fruits.jpg",
)


@dataclass
class MatrixResult:
    """One model's held-out matrix.

    Attributes:
        model: the model's name.
        contents / styles: names of the content photos and paintings.
        out_to_style: ``(n_contents, n_styles, n_styles)`` Gram distance of output ``[c, s]`` to painting ``[t]``.
        content_to_style: ``(n_contents, n_styles)`` Gram distance of the content photo to each painting.
        accuracy / matched_ratio: see :func:`matrix_scores`.
        seconds: mean seconds per output (warm, this host).
        outputs: ``[c][s]`` RGB uint8 outputs (not serialised).
    """

    model: str
    contents: list[str]
    styles: list[str]
    out_to_style: np.ndarray
    content_to_style: np.ndarray
    accuracy: float
    matched_ratio: float
    seconds: float | None = None
    outputs: list[list[np.ndarray]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and per-cell rows."""
        rows = []
        for i, c in enumerate(self.contents):
            for j, s in enumerate(self.styles):
                d = self.out_to_style[i, j]
                rows.append({"content": c, "style": s, "gram_to_own": float(d[j]),
                             "gram_content_to_own": float(self.content_to_style[i, j]),
                             "ratio": float(d[j] / self.content_to_style[i, j]),
                             "nearest": self.styles[int(np.argmin(d))], "gram_to_each": [float(v) for v in d]})
        return {"model": self.model, "accuracy": self.accuracy, "matched_ratio": self.matched_ratio,
                "seconds_per_image": self.seconds, "cells": rows}


def matrix_scores(out_to_style: np.ndarray, content_to_style: np.ndarray) -> tuple[float, float]:
    """Accuracy and matched ratio of a matrix of distances.

    Args:
        out_to_style: ``(n_contents, n_styles, n_styles)``: distance of the output for content ``c``
            and painting ``s`` to painting ``t``.
        content_to_style: ``(n_contents, n_styles)``: distance of content ``c`` to painting ``t``.

    Returns:
        ``(accuracy, matched_ratio)``: the share of outputs nearest to their own painting (ties count
        as misses), and the mean of ``out_to_style[c, s, s] / content_to_style[c, s]``.

    Raises:
        ValueError: shapes that do not fit, or a content at distance 0 from a painting.
    """
    d = np.asarray(out_to_style, dtype=np.float64)
    c = np.asarray(content_to_style, dtype=np.float64)
    if d.ndim != 3 or d.shape[1] != d.shape[2] or c.shape != d.shape[:2]:
        raise ValueError(f"need out_to_style (C, S, S) and content_to_style (C, S), got {d.shape} and {c.shape}")
    if d.shape[1] < 2:
        raise ValueError("a matrix needs at least two paintings (accuracy compares them)")
    if np.any(c <= 0):
        raise ValueError("a content photo at Gram distance 0 from a painting: the ratio is undefined")
    n_c, n_s = c.shape
    own = d[:, np.arange(n_s), np.arange(n_s)]  # (C, S)
    others = d.copy()
    others[:, np.arange(n_s), np.arange(n_s)] = np.inf
    hits = own < others.min(axis=2)
    return float(hits.mean()), float((own / c).mean())


def gram_distances(meter: QualityMeter, outputs: Sequence[ImageStats], references: Sequence[ImageStats]) -> np.ndarray:
    """``(len(outputs), len(references))`` ``style_gram`` distances from precomputed statistics."""
    out = np.zeros((len(outputs), len(references)))
    for i, o in enumerate(outputs):
        for j, r in enumerate(references):
            # compare()'s content metric needs two images of one size: the output against itself
            out[i, j] = meter.compare(o, o, r)["style_gram"]
    return out


def size_for_matrix(img: np.ndarray, long_side: int, multiple: int = 8) -> np.ndarray:
    """``img`` resized so its longer side is about ``long_side``, each side a multiple of ``multiple``."""
    from ..image import resize, scaled_size

    h, w = img.shape[:2]
    return resize(img, scaled_size(w, h, long_side=long_side, multiple=multiple, min_side=2 * multiple))


def evaluate_model(model: Any, contents: Sequence[np.ndarray], styles: Sequence[np.ndarray], meter: QualityMeter, *,
                   name: str | None = None, content_names: Sequence[str] | None = None,
                   style_names: Sequence[str] | None = None, backend: str = "eager", device: str = "cpu",
                   content_stats: Sequence[ImageStats] | None = None,
                   style_stats: Sequence[ImageStats] | None = None) -> MatrixResult:
    """Stylise every content with every painting and score the matrix.

    Args:
        model: a registry name or a module the :class:`~rtstyle.stylizer.Stylizer` takes with ``style_image=``.
        contents: RGB uint8 photos (each stylised at its own size: see :func:`size_for_matrix`).
        styles: RGB uint8 paintings (given to the model as style images, and the references).
        meter: the VGG16 metric.
        content_stats / style_stats: their :meth:`QualityMeter.stats`, when already computed.

    Returns:
        A :class:`MatrixResult` with the outputs.
    """
    from ..stylizer import Stylizer

    label = name or (model if isinstance(model, str) else type(model).__name__)
    if len(styles) < 2 or not contents:
        raise ValueError("need at least one content photo and two paintings")
    cs = list(content_stats) if content_stats is not None else [meter.stats(c, "content") for c in contents]
    ss = list(style_stats) if style_stats is not None else [meter.stats(s, "style") for s in styles]
    outs: list[list[np.ndarray]] = [[] for _ in contents]
    secs: list[float] = []
    st = None
    try:
        for j, s_img in enumerate(styles):
            for i, c_img in enumerate(contents):
                h, w = c_img.shape[:2]
                if st is None:
                    st = Stylizer(model, style_image=s_img, backend=backend, device=device, frame_size=(w, h))
                elif i == 0:
                    st.activate(st.prepare(model, style_image=s_img), crossfade=0)
                st.set_frame_size(w, h)
                st.stylize(c_img)  # warm-up at this size
                t0 = time.perf_counter()
                y = st.stylize(c_img)
                secs.append(time.perf_counter() - t0)
                if y.shape != c_img.shape:
                    raise ValueError(f"{label}: output {y.shape} for a content of {c_img.shape}")
                outs[i].append(y)
    finally:
        if st is not None:
            st.close()
    d = np.stack([gram_distances(meter, [meter.stats(o, "output") for o in row], ss) for row in outs])
    c2s = gram_distances(meter, cs, ss)
    acc, ratio = matrix_scores(d, c2s)
    log.info("%s: accuracy %.2f, matched ratio %.2f", label, acc, ratio)
    return MatrixResult(label, list(content_names or [f"content{i}" for i in range(len(contents))]),
                        list(style_names or [f"style{j}" for j in range(len(styles))]), d, c2s, acc, ratio,
                        float(np.median(secs)) if secs else None, outs)


def markdown_table(results: Sequence[MatrixResult], goal: tuple[float, float] = (0.77, 0.6)) -> str:
    """``| model | accuracy | matched ratio | goal |`` rows (goal: accuracy >= a and ratio <= r)."""
    lines = ["| model | accuracy | matched ratio | meets goal (>= %.2f / <= %.2f) | s / image |" % goal,
             "|---|---|---|---|---|"]
    for r in results:
        ok = r.accuracy >= goal[0] and r.matched_ratio <= goal[1]
        sec = "" if r.seconds is None else f"{r.seconds:.3f}"
        lines.append(f"| `{r.model}` | {r.accuracy:.2f} | {r.matched_ratio:.2f} | {'yes' if ok else 'no'} | {sec} |")
    return "\n".join(lines) + "\n"


def held_out_paths(styles_root: str | Path, names: Sequence[str] = HELD_OUT_STYLES) -> list[Path]:
    """The files of the held-out paintings under ``styles_root`` (searched recursively, by stem).

    Raises:
        FileNotFoundError: a name with no file.
    """
    from ..image import is_image_file

    root = Path(styles_root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder of paintings: {root}")
    by_stem = {p.stem: p for p in sorted(root.rglob("*")) if is_image_file(p)}
    missing = [n for n in names if n not in by_stem]
    if missing:
        raise FileNotFoundError(f"held-out paintings not found under {styles_root}: {missing}")
    return [by_stem[n] for n in names]

"""The style controls of a running pipeline: swap, cycle the style list or a model's style bank,
scale the brush. Called from any thread (hotkeys of the preview window, the control page, tests);
each control asks the :class:`~rtstyle.stylizer.Stylizer` for a style change, which lands on a frame
boundary once prepared.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .models._abilities import ParsesStyleVector

if TYPE_CHECKING:
    from .stylizer import ModelLike, StyleState, Stylizer

__all__ = ["StyleControls", "bank_index"]

log = logging.getLogger(__name__)


def bank_index(names: Sequence[str], source: tuple[str, Any] | None) -> int | None:
    """The bank index a style source picks alone (a name or a one-hot weight vector), else ``None``."""
    if source is None or source[0] != "vector":
        return None
    v = source[1]
    if isinstance(v, str):
        return names.index(v) if v in names else None
    try:
        hot = [i for i, w in enumerate(v) if float(w) != 0.0]
    except (TypeError, ValueError):
        return None
    return hot[0] if len(hot) == 1 and len(v) == len(names) else None


class StyleControls:
    """Mixed into :class:`~rtstyle.pipeline.Pipeline`: the controls that change the style.

    Uses the host's ``stylizer``, ``styles`` (the cycle of model names) and ``_style_idx``.
    """

    stylizer: "Stylizer"
    styles: list[str]
    _style_idx: int

    def swap(self, model: ModelLike | None = None, *, style_image: Any = None, style_vector: Any = None,
             options: dict[str, Any] | None = None, crossfade: int | None = None) -> "Future[StyleState]":
        """Switch style while running; takes effect on a frame boundary once prepared.

        ``model=None`` keeps the model (a new style image, bank style or control such as
        ``options={"brush": 384}``)."""
        return self.stylizer.set_style(model, style_image=style_image, style_vector=style_vector, options=options,
                                       crossfade=crossfade)

    def next_style(self) -> None:
        self._cycle(+1)

    def previous_style(self) -> None:
        self._cycle(-1)

    def _cycle(self, step: int) -> None:
        # step from the style showing when it is one of the cycle: a swap from elsewhere (the control
        # page, a schedule) may have moved it
        if len(self.styles) > 1:
            cur = self.stylizer.style_name
            idx = self.styles.index(cur) if cur in self.styles else self._style_idx
            self._style_idx = (idx + step) % len(self.styles)
            self.swap(self.styles[self._style_idx])
            return
        # one model with a style bank (MSG-Net, multi-style nets): cycle through its styles
        model = self.stylizer.state.model
        names = self.stylizer.spec.styles
        if model is not None and len(names) > 1 and isinstance(model, ParsesStyleVector):
            hit = bank_index(names, self.stylizer.state.style_source)
            self._bank_idx = ((getattr(self, "_bank_idx", 0) if hit is None else hit) + step) % len(names)
            self.swap(style_vector=names[self._bank_idx])
            return
        log.info("no style list to cycle through (pass several --model values)")

    def scale_brush(self, factor: float) -> None:
        """Brush-stroke size x ``factor`` on models with a brush control (MSG-Net), keeping the style."""
        model = self.stylizer.state.model
        brush = getattr(model, "brush", None)
        if brush is None:
            log.info("%s has no brush-size control", self.stylizer.spec.name)
            return
        self.swap(options={"brush": float(min(2048.0, max(16.0, brush * factor)))})

    def brush_smaller(self) -> None:
        self.scale_brush(1 / 1.25)

    def brush_larger(self) -> None:
        self.scale_brush(1.25)

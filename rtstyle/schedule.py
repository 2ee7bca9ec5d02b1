"""Style swaps scheduled at given times or frames of a run: :class:`ScheduledSwap` and the
``--swap`` text that :func:`parse_schedule` reads (``"5s=johnson.wave_lite,#300=msgnet.lite?style=wave"``).

The :class:`~rtstyle.pipeline.Pipeline` applies them on the exact frame in file mode; the Ray
batch job (:mod:`rtstyle.distributed`) splits them over chunks.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .frame import Frame

__all__ = ["ScheduledSwap", "parse_schedule"]


@dataclass(frozen=True)
class ScheduledSwap:
    """Switch to ``model`` at presentation time ``at_s`` (seconds) or frame ``at_frame``.

    ``style_image`` / ``style_vector`` pick the style for models that take one; ``options`` are
    model controls (``{"brush": 384}``) applied when the model is built.
    """

    model: Any
    at_s: float | None = None
    at_frame: int | None = None
    style_image: str | None = None
    style_vector: Any = None
    options: dict[str, Any] | None = None

    def due(self, frame: Frame, fps: float) -> bool:
        if self.at_frame is not None:
            return frame.index >= self.at_frame
        t = frame.pts if frame.pts is not None else (frame.index / fps if fps else None)
        return t is not None and self.at_s is not None and t >= self.at_s - 1e-6


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def parse_schedule(text: str) -> list[ScheduledSwap]:
    """Parse ``"5s=johnson.wave_lite,12.5s=johnson.starry_night_lite,#300=other"``.

    ``Ns`` is a time in seconds; ``#N`` (or a bare integer) is a frame index. A model may carry a
    query: ``style=`` (a style image file, or a style of the model's bank by name/index/blend
    ``2:0.5+5:0.5``) and model controls, e.g. ``8s=msgnet.lite?style=wave&brush=384&alpha=0.8``
    or ``4s=adain.vgg16?style=wave.jpg``.
    """
    from urllib.parse import parse_qsl

    out: list[ScheduledSwap] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        when, sep, target = part.partition("=")
        if not sep or not target:
            raise ValueError(f"bad swap entry {part!r}: expected TIME=MODEL, e.g. 5s=johnson.wave_lite")
        model, _, query = target.strip().partition("?")
        if not model:
            raise ValueError(f"bad swap entry {part!r}: no model before '?'")
        opts: dict[str, Any] = {k: _number(v) for k, v in parse_qsl(query, keep_blank_values=False, strict_parsing=bool(query))}
        style = opts.pop("style", None)
        image = vector = None
        if style is not None:
            style = str(style)
            if Path(style).is_file():
                image = style
            else:
                vector = ",".join(style.replace("+", " ").split())  # parse_qsl reads "+" as a space
        when = when.strip()
        kw: dict[str, Any] = dict(style_image=image, style_vector=vector, options=opts or None)
        try:
            if when.endswith("s"):
                out.append(ScheduledSwap(model, at_s=float(when[:-1]), **kw))
            else:
                out.append(ScheduledSwap(model, at_frame=int(when.lstrip("#f")), **kw))
        except ValueError:
            raise ValueError(f"bad swap time {when!r}: use seconds like 5s or a frame like #120") from None
    return sorted(out, key=lambda s: (s.at_s if s.at_s is not None else float("inf"), s.at_frame or 0))

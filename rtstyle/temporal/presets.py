"""Mode presets: a model, its settings, a backend and a temporal filter chosen together.

``stable`` is the file-mode answer to "any painting, and stable": the arbitrary-style family with
the lowest per-frame warping error in the comparison of ``docs/temporal.md`` - ``adain.r31``
(AdaIN at relu3_1 of the normalised VGG19 with its pretrained decoder), which beat style-swap
(``styleswap.r31``) there on both warping error and style loss - followed by the gated ``file``
stabiliser.

A preset is plain data; the CLI (``--stable``) and library users turn it into a Stylizer with
:meth:`ModePreset.stylizer_kwargs`::

    from rtstyle.temporal.presets import get_mode_preset
    p = get_mode_preset("stable")
    st = Stylizer(p.model, style_image="painting.jpg", **p.stylizer_kwargs())
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .stabilize import PRESETS, FlowStabilizer, make_temporal

__all__ = ["MODE_PRESETS", "ModePreset", "get_mode_preset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModePreset:
    """A model with its settings and temporal filter.

    Attributes:
        name: preset name (``"stable"``).
        model: registry name of the model.
        description: one line for ``--help``.
        model_options: keyword options of the model's factory (``create_model(model, **options)``).
        backend: Stylizer backend (``"openvino"``, ``"eager"``, ...).
        temporal_preset: a :data:`~rtstyle.temporal.stabilize.PRESETS` name, or ``None`` for none.
        temporal_strength: strength of that stabiliser.
    """

    name: str
    model: str
    description: str
    model_options: dict[str, Any] = field(default_factory=dict)
    backend: str = "eager"
    temporal_preset: str | None = "file"
    temporal_strength: float = 0.8

    def temporal(self) -> FlowStabilizer | None:
        """A fresh stabiliser for one stream (``None`` if the preset has none)."""
        if self.temporal_preset is None:
            return None
        return make_temporal(self.temporal_strength, self.temporal_preset)

    def stylizer_kwargs(self, backend: str | None = None) -> dict[str, Any]:
        """Keyword arguments of :class:`~rtstyle.stylizer.Stylizer` (besides the model and style).

        Args:
            backend: override the preset's backend (e.g. ``"eager"`` where OpenVINO is missing).
        """
        return {"backend": backend or self.backend, "temporal": self.temporal()}


#: Mode presets by name.
MODE_PRESETS: dict[str, ModePreset] = {
    "stable": ModePreset(
        name="stable",
        model="adain.r31",
        description="any painting, stable: AdaIN relu3_1 (the most stable arbitrary-style family measured) "
                    "+ the gated file stabiliser",
        backend="eager",
        temporal_preset="file",
        temporal_strength=0.8,
    ),
}

for _p in MODE_PRESETS.values():  # a typo in a preset table must fail at import, not at a user's run
    if _p.temporal_preset is not None and _p.temporal_preset not in PRESETS:
        raise ValueError(f"mode preset {_p.name!r} names an unknown temporal preset {_p.temporal_preset!r}")


def get_mode_preset(name: str) -> ModePreset:
    """The :class:`ModePreset` called ``name``; a clear error listing the known ones otherwise."""
    try:
        return MODE_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown mode preset {name!r}; known: {', '.join(MODE_PRESETS)}") from None

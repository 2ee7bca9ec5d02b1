"""Model specs: the input/output contract each model carries with it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """What a model is and how frames must be prepared for it.

    Pre- and post-processing read these fields; nothing else in the package hard-codes a
    value range, channel order or normalisation.

    Attributes:
        name: registry name, ``family.variant`` (e.g. ``johnson.starry_night_lite``).
        family: model family (``johnson``, ``engstrom``, ...).
        description: one line for ``rtstyle models``.
        color_order: channel order of the model's input and output tensors (``"RGB"``).
        input_range: value range the model expects, e.g. ``(0.0, 255.0)``.
        output_range: value range the model produces; outputs are clamped to it.
        mean / std: per-channel normalisation applied after scaling to ``input_range``
            (``None`` for none).
        size_multiple: height and width are rounded to a multiple of this before inference.
        needs_style_image: whether the model takes a style image at run time.
        styles: the styles built into the model (one for single-style nets).
        default_size: recommended internal resolution for live use (short side, pixels).
        licence: licence of the weights.
        weights: file name of the weights (package data for shipped models).
        sha256: checksum of that file.
        extra: free-form provenance (training command, iterations, architecture settings).
    """

    name: str
    family: str
    description: str = ""
    color_order: str = "RGB"
    input_range: tuple[float, float] = (0.0, 255.0)
    output_range: tuple[float, float] = (0.0, 255.0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    size_multiple: int = 4
    needs_style_image: bool = False
    styles: tuple[str, ...] = ()
    default_size: int | None = None
    licence: str = "unknown"
    weights: str | None = None
    sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        data = json.loads(text)
        for key in ("input_range", "output_range", "mean", "std", "styles"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

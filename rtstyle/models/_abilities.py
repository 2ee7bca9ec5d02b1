"""What a model may provide beyond ``forward``: the optional hooks, declared as protocols.

A family implements the ones it needs; the Stylizer and the staged GPU path test for them with
``isinstance`` (all are ``runtime_checkable``), so a new family knows from this file what it may
offer and every device path honours the same ones. ``forward(image, *style_inputs)`` stays the
only thing a backend runs.

=========================  ===============================================================
protocol                   used for
=========================  ===============================================================
:class:`HasSpec`           every model: its :class:`~rtstyle.models.ModelSpec` (the contract)
:class:`EncodesStyleImage`  a style image -> explicit style inputs (AdaIN, MSG-Net, WCT, ...)
:class:`Specialises`       a style image -> a plain net run with no style inputs (MetaNet)
:class:`StyleImageSide`    how large a style image must be at most (decode it smaller)
:class:`StyleSideFollowsContent` the style image's best size for a given content size
:class:`HasEncoderPrecision`  a style encoder whose precision the caller picks (MetaNet, AdaIN, linear, WCT)
:class:`TakesStyleVector`  built-in styles chosen or blended by a weight vector
:class:`ParsesStyleVector`  that vector given as text (``"wave"``, ``"2:0.5,5:0.5"``)
:class:`HasControls`       a copy with other controls (brush, alpha, colour, mask)
:class:`PerFrameInputs`    style inputs that change per frame (an animated region mask)
:class:`BackendBound`      runs only on some backends (a foreign ONNX file)
:class:`AutoBackendHint`   what ``--backend auto`` should mean for this net
:class:`AutoPrecisions`    the precisions ``--precision auto`` may choose for it (style-swap: fp32)
:class:`Prechecked`        layout and weights checked by its builder (no check run needed)
=========================  ===============================================================
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ._spec import ModelSpec

__all__ = [
    "AutoBackendHint",
    "AutoPrecisions",
    "BackendBound",
    "EncodesStyleImage",
    "HasControls",
    "HasEncoderPrecision",
    "HasSpec",
    "ParsesStyleVector",
    "PerFrameInputs",
    "Prechecked",
    "Specialises",
    "StyleImageSide",
    "StyleSideFollowsContent",
    "TakesStyleVector",
    "auto_backend_of",
    "auto_precisions_of",
    "is_prechecked",
]


@runtime_checkable
class HasSpec(Protocol):
    """A model that carries its contract."""

    spec: ModelSpec


@runtime_checkable
class EncodesStyleImage(Protocol):
    """Turns a style image into the style inputs passed after the frame to ``forward``."""

    def encode_style(self, style: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Style image ``(1, 3, H, W)`` in the spec's input contract -> style input tensors."""
        ...


@runtime_checkable
class Specialises(Protocol):
    """Turns a style image into a plain net (no style inputs) that is run until the next change."""

    def specialise(self, style: torch.Tensor) -> nn.Module:
        """Style image ``(1, 3, H, W)`` in the spec's input contract -> a net with its own ``spec``."""
        ...


@runtime_checkable
class StyleImageSide(Protocol):
    """A model that uses style images no larger than ``style_image_side`` (longer side, pixels)."""

    @property
    def style_image_side(self) -> int: ...


@runtime_checkable
class StyleSideFollowsContent(Protocol):
    """A model whose style image is encoded at about the content's scale: ``style_side_for(n)`` is the
    longer side to give the style image when the frames' internal shorter side (the ``--size`` a user
    gives) is ``n`` (within the model's bounds). The Stylizer decodes the style image at that size."""

    def style_side_for(self, content_side: int) -> int: ...


@runtime_checkable
class HasEncoderPrecision(Protocol):
    """A model whose style encoder runs at a precision the caller may set (``"auto"`` / ``"fp32"`` /
    ``"bf16"`` / ``"int8"``, see :mod:`rtstyle.models._style_encoder`)."""

    encoder_precision: str


@runtime_checkable
class TakesStyleVector(Protocol):
    """Built-in styles selected or blended by weights: the style inputs come from a vector."""

    def default_style_vector(self) -> list[float]:
        """The weights used when the caller gives none."""
        ...

    def encode_style_vector(self, vector: Any) -> tuple[torch.Tensor, ...]:
        """Weights -> style input tensors."""
        ...


@runtime_checkable
class ParsesStyleVector(Protocol):
    """A style vector model that also reads the vector from text."""

    def parse_style_vector(self, value: Any) -> list[float]:
        """``"3"``, ``"wave"``, ``"2:0.5,5:0.5"`` or weights -> normalised weights."""
        ...


@runtime_checkable
class HasControls(Protocol):
    """Controls (brush size, alpha, colour, mask) changed by building a cheap copy."""

    def with_controls(self, **changes: Any) -> nn.Module:
        """A model sharing this one's weights with the given controls changed."""
        ...


@runtime_checkable
class PerFrameInputs(Protocol):
    """Style inputs that depend on the frame index (same shapes every frame: same engine)."""

    def frame_style_inputs(self, frame_index: int, style_inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The style inputs for frame ``frame_index``, given the style's prepared ones."""
        ...


@runtime_checkable
class BackendBound(Protocol):
    """A model only some backends can run (they load its file, not its modules)."""

    supported_backends: tuple[str, ...]
    preferred_backend: str


@runtime_checkable
class AutoBackendHint(Protocol):
    """What ``--backend auto`` should pick for this net (``None``: the usual choice for the device)."""

    auto_backend: str | None


@runtime_checkable
class AutoPrecisions(Protocol):
    """The precisions ``--precision auto`` may consider for this net, and why it is limited.

    ``auto`` measures its candidates on one style (the first one it is given) and caches the
    decision for the architecture. A net whose reduced-precision error depends on the style image
    declares the precisions that are safe for every style; an explicit ``--precision`` still runs
    what it asks for.
    """

    auto_precisions: tuple[str, ...]
    auto_precisions_reason: str


@runtime_checkable
class Prechecked(Protocol):
    """``prechecked`` is True when the builder checked layout and weights: a backend need not run it
    once before it goes live."""

    prechecked: bool


def auto_precisions_of(model: object) -> tuple[tuple[str, ...], str] | None:
    """``(precisions, reason)`` the model limits ``--precision auto`` to, or ``None`` (no limit)."""
    if isinstance(model, AutoPrecisions):
        return tuple(model.auto_precisions), str(model.auto_precisions_reason)
    return None


def auto_backend_of(model: object) -> str | None:
    """The model's ``--backend auto`` hint, or ``None``."""
    return model.auto_backend if isinstance(model, AutoBackendHint) else None


def is_prechecked(model: object) -> bool:
    """Whether the model's builder checked it (see :class:`Prechecked`)."""
    return isinstance(model, Prechecked) and bool(model.prechecked)

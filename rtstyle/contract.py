"""The frame contract: a uint8 RGB frame in, a uint8 RGB frame out, for any model on any device.

Everything between a frame and a model is written here once, in torch ops: the resize to the
internal size, the model's colour order, input range, mean/std, padding to its size multiple and
the crop back, its style inputs (per-frame ones too), the crossfade of a style swap, the temporal
hook, the output range and normalisation, and the resize back. The :class:`~rtstyle.Stylizer`
runs :func:`stylize` on CPU tensors that share memory with the frame's array; the staged CUDA
path (:mod:`rtstyle.gpu`) runs the same function on device tensors inside its compute stream. So
the CPU test suite covers the GPU path's frame logic, and a model's contract (its
:class:`~rtstyle.models.ModelSpec`) is read in this one place.

What a frame is stylised with is fixed on the host when the frame enters (a :class:`FramePlan`),
so a style swap lands on a frame boundary however long the device takes to reach that frame.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .image import resize_frame as resize_image
from .image import to_tensor, to_uint8
from .models import ModelSpec

__all__ = ["FramePlan", "Styled", "TemporalHook", "crossfade", "from_model_output", "pad_to_multiple",
           "resize_image", "run_style", "stylize", "to_model_input"]

FrameInputs = Callable[[int, tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]]


class Styled(Protocol):
    """A prepared style as the contract needs it (:class:`rtstyle.stylizer.StyleState` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def runner(self) -> Callable[..., torch.Tensor]: ...

    @property
    def style_inputs(self) -> tuple[torch.Tensor, ...]: ...

    @property
    def frame_inputs(self) -> FrameInputs | None: ...


class TemporalHook(Protocol):
    """Flicker reduction after stylisation, on host arrays (see :class:`rtstyle.stylizer.TemporalFilter`)."""

    def process(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FramePlan:
    """What one frame is stylised with, decided on the host when it enters the frame path.

    Attributes:
        style: the active style for this frame.
        index: the frame's index (per-frame style inputs depend on it).
        size: internal ``(width, height)`` the frame is resized to before inference.
        fade_from: during a crossfade, the previous style (blended in), else ``None``.
        fade_weight: weight of ``style`` in the blend (``1 - fade_weight`` for ``fade_from``).
        temporal: flicker filter applied at the internal size, or ``None``.
    """

    style: Styled
    index: int
    size: tuple[int, int]
    fade_from: Styled | None = None
    fade_weight: float = 1.0
    temporal: TemporalHook | None = None


@lru_cache(maxsize=64)
def _channel_constant(values: tuple[float, float, float], device: str) -> torch.Tensor:
    # built once per (values, device): a fresh tensor per frame would be an upload per frame on CUDA
    with torch.inference_mode(False):
        return torch.tensor(values, dtype=torch.float32, device=device).view(1, 3, 1, 1)


def to_model_input(img: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """A uint8 RGB image -> the model's input, on the image's device.

    Shape:
        ``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 in the spec's colour order, input range
        and mean/std.
    """
    x = to_tensor(img, max_value=255.0)
    if spec.color_order == "BGR":
        x = x.flip(1)
    lo, hi = spec.input_range
    if (lo, hi) != (0.0, 255.0):
        x = x * ((hi - lo) / 255.0) + lo
    if spec.mean is not None:
        dev = str(x.device)
        x = (x - _channel_constant(tuple(spec.mean), dev)) / _channel_constant(tuple(spec.std or (1.0, 1.0, 1.0)), dev)
    return x.contiguous()


def from_model_output(y: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """The model's output -> a uint8 RGB image, on the output's device.

    Shape:
        ``(1, 3, H, W)`` float in the spec's output range (normalised with mean/std when
        ``spec.extra["output_normalised"]``) and colour order -> ``(H, W, 3)`` uint8 RGB.
    """
    lo, hi = spec.output_range
    if spec.mean is not None and spec.extra.get("output_normalised", False):
        dev = str(y.device)
        y = y * _channel_constant(tuple(spec.std or (1.0, 1.0, 1.0)), dev) + _channel_constant(tuple(spec.mean), dev)
    if (lo, hi) != (0.0, 255.0):
        y = (y - lo) * (255.0 / (hi - lo))
    if spec.color_order == "BGR":
        y = y.flip(1)
    return to_uint8(y, max_value=255.0)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``(N, C, H, W)`` at the bottom/right so H and W are multiples of ``multiple``.

    Reflection keeps the border statistics of instance-norm nets; it needs the padding to be
    smaller than the image, so tiny images are padded by replication instead.
    """
    h, w = x.shape[-2:]
    m = max(1, int(multiple))
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    return x


def run_style(style: Styled, img: torch.Tensor, index: int = 0) -> torch.Tensor:
    """One style on one uint8 ``(H, W, 3)`` image at its size: input contract, padding, the runner
    with the style's inputs for frame ``index``, crop, output contract. Returns uint8 ``(H, W, 3)``."""
    spec = style.spec
    inputs = style.style_inputs
    per_frame = style.frame_inputs
    if per_frame is not None and inputs:  # e.g. an animated region mask
        inputs = per_frame(index, inputs)
    h, w = int(img.shape[0]), int(img.shape[1])
    x = pad_to_multiple(to_model_input(img, spec), spec.size_multiple)
    y = style.runner(x, *inputs)[..., :h, :w]
    return from_model_output(y, spec)


def crossfade(new: torch.Tensor, old: torch.Tensor, weight: float) -> torch.Tensor:
    """Blend two uint8 images: ``weight * new + (1 - weight) * old``, rounded."""
    return (new.float() * weight + old.float() * (1 - weight) + 0.5).to(torch.uint8)


def _temporal(hook: TemporalHook, source: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # the filters work on host arrays (OpenCV flow); on the CPU these are views, not copies
    res = hook.process(source.cpu().numpy(), out.cpu().numpy())
    return torch.from_numpy(np.ascontiguousarray(res)).to(out.device)


def stylize(plan: FramePlan, img: torch.Tensor, clock: list[float] | None = None) -> torch.Tensor:
    """A uint8 ``(H, W, 3)`` RGB frame -> its stylisation, same shape, on the frame's device.

    Args:
        plan: what to stylise it with (see :class:`FramePlan`).
        img: the frame (a CPU tensor may share memory with a numpy array).
        clock: if given, ``time.perf_counter()`` is appended after the resize to the internal size,
            after inference (with crossfade and temporal hook) and after the resize back. Only
            meaningful where the device runs synchronously (the CPU).

    Returns:
        uint8 ``(H, W, 3)`` (new memory: the model always runs).
    """
    h, w = int(img.shape[0]), int(img.shape[1])
    small = resize_image(img, plan.size)
    if clock is not None:
        clock.append(time.perf_counter())
    out = run_style(plan.style, small, plan.index)
    if plan.fade_from is not None:
        out = crossfade(out, run_style(plan.fade_from, small, plan.index), plan.fade_weight)
    if plan.temporal is not None:
        out = _temporal(plan.temporal, small, out)
    if clock is not None:
        clock.append(time.perf_counter())
    out = resize_image(out, (w, h))
    if clock is not None:
        clock.append(time.perf_counter())
    return out

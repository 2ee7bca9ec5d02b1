"""The backend interface: a model goes in, a callable on tensors comes out.

Every backend turns an ``nn.Module`` (eval mode, with a ``spec``) into a :class:`Runner`:
``runner(*inputs) -> output`` on float tensors in the model's own contract (see
:class:`rtstyle.models.ModelSpec`). Inputs arrive on ``runner.device`` as ``float32`` NCHW; the
output is returned as a ``float32`` NCHW tensor on ``runner.device``. Pre/post-processing (value
ranges, resizing, uint8) is the stylizer's job, never the backend's.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

# declared below the models (which raise it for a missing onnx/openvino too); the same class here
from ..models._graph_runtime import BackendUnavailableError

if TYPE_CHECKING:
    from .precision import PrecisionDecision

__all__ = ["Backend", "BackendUnavailableError", "Runner", "BackendOptions"]


@dataclass(frozen=True)
class BackendOptions:
    """Settings shared by all backends.

    Attributes:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        precision: ``"fp32"``, ``"bf16"`` (CPU), ``"fp16"`` (CUDA), ``"int8"`` (OpenVINO), or ``"auto"``:
            decided per model by measurement (:mod:`rtstyle.backends.precision`).
        cache_dir: where built engines are cached (default ``engines/`` or ``$RTSTYLE_ENGINES``).
        min_shape / max_shape: ``(H, W)`` range for dynamic-shape engines.
        extra: backend-specific settings, documented by each backend.
    """

    device: str = "cpu"
    precision: str = "fp32"
    cache_dir: str | None = None
    min_shape: tuple[int, int] | None = None
    max_shape: tuple[int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Runner(abc.ABC):
    """A prepared model. Thread-compatible: one caller at a time."""

    device: torch.device
    # how ``precision="auto"`` was resolved for this runner (None: the precision was given)
    precision_decision: "PrecisionDecision | None" = None

    @abc.abstractmethod
    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor: ...

    def refit(self, model: nn.Module) -> bool:
        """Load new weights of the same architecture without rebuilding.

        Returns:
            True if done in place; False if the backend cannot (the caller then prepares anew).
        """
        return False


class Backend(abc.ABC):
    """Factory of runners. ``name`` is what ``--backend`` takes."""

    name: str = ""

    def __init__(self, options: BackendOptions | None = None) -> None:
        self.options = options or BackendOptions()

    @abc.abstractmethod
    def prepare(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Runner:
        """Build (or load from cache) a runner for ``model``.

        Args:
            model: eval-mode module with a ``spec`` attribute.
            example_inputs: tensors with the shapes and dtypes of one call (used for tracing,
                export and warm-up). The first one is the image ``(1, 3, H, W)``.
        """

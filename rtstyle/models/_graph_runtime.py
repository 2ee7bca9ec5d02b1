"""How a model runs a graph file (ONNX, OpenVINO IR) without importing a backend.

Three things on the model side need a graph run outside PyTorch: a foreign ONNX model itself (run by
the ``onnx`` / ``openvino`` backends from its file), the style-prediction net of such a model
(``encode_style``), and the frozen style encoders of AdaIN and MetaNet (converted once to OpenVINO
IR). This module declares what they need; :mod:`rtstyle.backends.graph_file` provides it:

* :class:`RunsOnnxFile`: the ability a model declares when it *is* an ONNX file. Backends test for it
  with ``isinstance`` and run the file as it is (no export), never asking for a model class.
* :class:`GraphRuntime`: "run this file" / "compile this module" for the model side, reached through
  :func:`graph_runtime`. Importing :mod:`rtstyle.backends` registers the package's one
  (:func:`register_graph_runtime`). The first call of :func:`graph_runtime` loads that default through
  :mod:`rtstyle.plugins` when nothing registered one yet, so a script that uses models alone
  (``create_model`` then ``encode_style``) runs the same way as the Stylizer; only without any
  provider does a style encoder on ``auto`` run eager and a foreign model's style-image net fail
  (the error says what to import).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
from torch import nn

from ._spec import ModelSpec

__all__ = [
    "BackendUnavailableError",
    "GraphCall",
    "GraphRuntime",
    "RunsOnnxFile",
    "graph_runtime",
    "has_graph_runtime",
    "register_graph_runtime",
]

log = logging.getLogger(__name__)

# ``feeds -> output``: named (or, for a converted module, positional) float32 arrays in, one array out
GraphCall = Callable[[dict[Any, np.ndarray]], np.ndarray]

class BackendUnavailableError(RuntimeError):
    """An optional runtime's dependency is missing; the message names the extra to install.

    Declared here, beside the runtime interface, so that models can raise it without importing the
    backends; :mod:`rtstyle.backends` re-exports this same class.
    """


@runtime_checkable
class RunsOnnxFile(Protocol):
    """A model that is an ONNX file, run as it is by the backends that load files (no export).

    ``forward`` cannot run in PyTorch; a backend opens ``onnx_path``, turns the runner's tensors
    into the graph's feeds with :meth:`graph_feeds`, runs ``output_name`` and maps the result back
    with :meth:`graph_output`.
    """

    spec: ModelSpec  # its name for messages; ``sha256`` of the file, when known, keys the sessions
    onnx_path: Path
    output_name: str
    input_names: tuple[str, ...]

    def graph_feeds(self, inputs: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
        """Runner inputs (NCHW image, style inputs) -> the graph's named float32 arrays."""
        ...

    def graph_output(self, y: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
        """The graph's output array -> float32 ``(1, 3, H, W)`` at the caller's ``hw``."""
        ...


class GraphRuntime(Protocol):
    """What the model side may ask of the graph runtime (CPU, off the hot path)."""

    def open_file(self, path: Path, output: str) -> GraphCall:
        """A call running ``output`` of the ONNX file ``path`` on the CPU (cached per file).

        Raises:
            BackendUnavailableError: no runtime for ONNX files is installed.
        """
        ...

    def can_compile_module(self) -> bool:
        """Whether :meth:`compile_module` can work here (its runtime is installed)."""
        ...

    def compile_module(self, module: nn.Module, example: torch.Tensor, *, name: str, version: int,
                       calibration: Callable[[], list[torch.Tensor]] | None,
                       precision: str = "fp32") -> tuple[GraphCall, str]:
        """A compiled graph of ``module`` (one ``(1, 3, H, W)`` image in, any H and W, one tensor out).

        Args:
            module: frozen eval-mode module on the CPU.
            example: an input to trace with.
            name / version: with the weights, what the converted graph is cached under.
            calibration: ``None`` for fp32; else int8, calibrated on what it returns (fp32 and a
                warning when the quantiser is missing).
            precision: ``"fp32"`` or ``"bf16"`` (the inference precision of a graph that is not
                quantised; the runtime may run f32 where the CPU has no bf16).

        Returns:
            ``(call, ran)``; ``call({0: image array})`` gives the output array; ``ran`` is what the
            compiled graph actually runs: ``"int8"``, ``"bf16"`` or ``"fp32"``.
        """
        ...


_RUNTIME: GraphRuntime | None = None
_LOCK = threading.Lock()


def register_graph_runtime(runtime: GraphRuntime) -> None:
    """Make ``runtime`` the one :func:`graph_runtime` returns (the last registration wins)."""
    global _RUNTIME
    with _LOCK:
        _RUNTIME = runtime


def has_graph_runtime() -> bool:
    """Whether a :class:`GraphRuntime` is registered, loading the package's default
    (:data:`rtstyle.plugins.GRAPH_RUNTIME_PROVIDER`) on first use."""
    if _RUNTIME is None:
        from .. import plugins  # names the provider; importing it registers the runtime

        plugins.load_graph_runtime()
    return _RUNTIME is not None


def graph_runtime() -> GraphRuntime:
    """The registered :class:`GraphRuntime` (the package's default is loaded on first use).

    Raises:
        BackendUnavailableError: none is registered and there is no default provider.
    """
    if not has_graph_runtime():
        raise BackendUnavailableError("no graph runtime is registered to run ONNX/IR files: import rtstyle.backends "
                                      "first (a Stylizer and the rtstyle command do)")
    assert _RUNTIME is not None
    return _RUNTIME

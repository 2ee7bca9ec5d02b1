"""Run a graph file (ONNX, or OpenVINO IR) as it is: the one path for graphs rtstyle did not export.

Every graph that is not one of rtstyle's own exports runs through here:

* a model that *is* an ONNX file (:class:`~rtstyle.models._graph_runtime.RunsOnnxFile`, e.g. a
  foreign ONNX model) on the ``onnx`` and ``openvino`` backends: the backend opens the file
  (:func:`ort_session` / its compiled IR), wraps the session in a :func:`ort_call` / :func:`ov_call`
  and hands it to a :class:`GraphFileRunner`;
* the small helper nets such a model runs on the CPU (a style-prediction net), through
  :meth:`FileRuntime.open_file`;
* the frozen style encoders of AdaIN and MetaNet, converted to IR once and compiled, through
  :meth:`FileRuntime.compile_module`.

:class:`FileRuntime` is the :class:`~rtstyle.models._graph_runtime.GraphRuntime` the model side
declares; importing this module registers it.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..models._graph_runtime import GraphCall, RunsOnnxFile, register_graph_runtime
from .base import BackendUnavailableError, Runner

__all__ = ["FileRuntime", "GraphFileRunner", "ort_call", "ort_session", "ov_call", "usable_cores"]

log = logging.getLogger(__name__)

_INSTALL = "pip install 'rtstyle[onnx]'"


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ort_session(path: Path, providers: list[Any], threads: int | None = None) -> Any:
    """An onnxruntime ``InferenceSession`` of ``path``: all graph optimisations, sequential execution,
    ``threads`` intra-op threads (default: the usable cores), errors-only logging."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = int(threads or usable_cores())
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only: no "unused initializer" chatter
    return ort.InferenceSession(str(path), so, providers=providers)


def ort_call(session: Any, output: str) -> GraphCall:
    """``feeds -> output array`` of an onnxruntime session (``run`` is thread-safe)."""

    def run(feeds: dict[Any, np.ndarray]) -> np.ndarray:
        return session.run([output], feeds)[0]

    return run


def ov_call(compiled: Any, output: str | int = 0) -> GraphCall:
    """``feeds -> output array`` of an OpenVINO compiled model, with an infer request of its own
    (one caller at a time). Inputs are shared (no copy in); the output is copied out, as the request
    reuses its buffers."""
    request = compiled.create_infer_request()
    port = compiled.output(output)

    def run(feeds: dict[Any, np.ndarray]) -> np.ndarray:
        return np.asarray(request.infer(feeds, share_inputs=True, share_outputs=False)[port])

    return run


class GraphFileRunner(Runner):
    """Runs a model that is an ONNX file through a backend's graph call.

    Args:
        model: the model (its input mapping, layout and fixed size: ``graph_feeds`` / ``graph_output``).
        run: ``run(feeds) -> output array`` of the backend's session or compiled model.
        device: where outputs are returned.
        path: the file actually run (the ONNX file, or an OpenVINO IR made from it).
        backend: backend name, for messages.
    """

    def __init__(self, model: RunsOnnxFile, run: GraphCall, device: torch.device, path: Path, backend: str) -> None:
        self.model = model
        self.run = run
        self.device = device
        self.path = path
        self.backend = backend
        self.input_names = model.input_names

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        h, w = int(inputs[0].shape[-2]), int(inputs[0].shape[-1])
        y = self.run(self.model.graph_feeds(inputs))
        return self.model.graph_output(y, (h, w)).to(self.device)


class FileRuntime:
    """The model side's graph runtime: CPU graph calls off the hot path (style changes).

    Sessions are cached here per file, never on the (deep-copied) modules.
    """

    def __init__(self) -> None:
        self._files: dict[tuple[str, float, str], GraphCall] = {}
        self._lock = threading.Lock()

    def open_file(self, path: Path, output: str) -> GraphCall:
        """onnxruntime on the CPU if installed, else OpenVINO; cached per file, its mtime and output."""
        key = (str(path.resolve()), path.stat().st_mtime, output)
        with self._lock:
            hit = self._files.get(key)
            if hit is not None:
                return hit
            import importlib.util

            if importlib.util.find_spec("onnxruntime") is not None:
                run = ort_call(ort_session(path, ["CPUExecutionProvider"]), output)
            else:
                try:
                    import openvino as ov
                except ImportError:
                    raise BackendUnavailableError(
                        f"running {path.name} needs onnxruntime or openvino: {_INSTALL}") from None
                run = ov_call(ov.Core().compile_model(str(path), "CPU"), output)
            self._files[key] = run
            return run

    def can_compile_module(self) -> bool:
        import importlib.util

        return importlib.util.find_spec("openvino") is not None

    def compile_module(self, module: nn.Module, example: torch.Tensor, *, name: str, version: int,
                       calibration: Callable[[], list[torch.Tensor]] | None,
                       precision: str = "fp32") -> tuple[GraphCall, str]:
        from .openvino import compile_ir, compiled_precision, module_ir

        ir, quantised = module_ir(module, example, name=name, version=version, calibration=calibration)
        compiled = compile_ir(ir, precision="fp32" if quantised else precision)
        return ov_call(compiled), "int8" if quantised else compiled_precision(compiled)


register_graph_runtime(FileRuntime())

"""Interchangeable inference backends behind one small interface (see :mod:`.base`).

Backends import their optional dependencies lazily: ``create_backend("openvino")`` on a machine
without OpenVINO raises :class:`BackendUnavailableError` naming the extra to install.
"""
from __future__ import annotations

import importlib

from . import graph_file as _graph_file  # noqa: F401 - registers the graph runtime the models use
from .base import Backend, BackendOptions, BackendUnavailableError, Runner

__all__ = ["BACKENDS", "Backend", "BackendOptions", "BackendUnavailableError", "Runner", "create_backend",
           "available_backends", "resolve_backend"]

# name -> (module, class, extra to install)
BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "eager": (".eager", "EagerBackend", None),
    "compiled": (".compiled", "CompiledBackend", None),
    "onnx": (".onnxrt", "OnnxRuntimeBackend", "onnx"),
    "openvino": (".openvino", "OpenVINOBackend", "openvino"),
    "tensorrt": (".tensorrt", "TensorRTBackend", "tensorrt"),
}


def resolve_backend(name: str, device: str = "cpu") -> str:
    """Turn ``"auto"`` into the fastest backend installed for ``device``; other names pass through.

    CPU: OpenVINO (the fastest in the backend benchmarks, docs/benchmarks.md), then ONNX Runtime,
    then eager. CUDA: TensorRT when torch-tensorrt is installed, else eager.
    """
    if name != "auto":
        return name
    order = ["tensorrt", "eager"] if str(device).startswith("cuda") else ["openvino", "onnx", "eager"]
    for cand in order:
        try:
            b = create_backend(cand, BackendOptions(device=str(device)))
            check = getattr(b, "check_available", None)
            if check is not None:
                check()
            return cand
        except BackendUnavailableError:
            continue
    return "eager"


def create_backend(name: str, options: BackendOptions | None = None) -> Backend:
    """Instantiate a backend by name.

    ``options.precision == "auto"`` gives an :class:`~.precision.AutoPrecisionBackend` that picks the
    precision per model by measurement.

    Raises:
        ValueError: unknown name.
        BackendUnavailableError: its dependency is not installed.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    if options is not None and options.precision == "auto":
        from .precision import AutoPrecisionBackend

        return AutoPrecisionBackend(name, options)
    mod, cls, _ = BACKENDS[name]
    try:
        module = importlib.import_module(mod, __name__)
    except ModuleNotFoundError as e:  # the backend module itself is not written yet
        raise BackendUnavailableError(f"backend {name!r} is not available: {e}") from None
    return getattr(module, cls)(options)


def available_backends() -> dict[str, str]:
    """Each backend's status: ``"ok"`` or the reason it cannot be used here."""
    out = {}
    for name in BACKENDS:
        try:
            b = create_backend(name)
            check = getattr(b, "check_available", None)
            if check is not None:
                check()
            out[name] = "ok"
        except BackendUnavailableError as e:
            out[name] = str(e)
    return out

"""``torch.compile`` backend: TorchInductor kernels, fp32 or autocast bf16/fp16 like :mod:`.eager`.

CPU: Inductor's C++/OpenMP code generation (needs a C++ compiler), default mode.
CUDA: ``mode="reduce-overhead"`` (Triton kernels replayed as CUDA graphs; shapes are fixed per
graph, so a new frame size records a new one).

Shapes are specialised (``dynamic=False``): each new input size compiles once (tens of seconds on a
small CPU) and is then as fast as a fixed-size model. Dynamo keeps at most
``torch._dynamo.config.recompile_limit`` (8) sizes per model; beyond that it runs that size eagerly.
A compilation failure is reported as :class:`BackendUnavailableError` with its reason; there is no
silent fallback to eager.
"""
from __future__ import annotations

import copy
import logging
import os
import shutil
from typing import Callable

import torch
from torch import nn

from .base import Backend, BackendUnavailableError, Runner
from .export import check_example_inputs

__all__ = ["CompiledBackend", "CompiledRunner"]

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _cxx_compiler() -> str | None:
    for cand in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if cand and shutil.which(cand):
            return cand
    return None


class CompiledRunner(Runner):
    """A compiled forward; ``refit`` loads new weights in place (no recompilation)."""

    def __init__(self, model: nn.Module, fn: Callable[..., torch.Tensor], device: torch.device, precision: str,
                 cudagraphs: bool, channels_last: bool) -> None:
        self.model = model
        self.fn = fn
        self.device = device
        self.precision = precision
        self.cudagraphs = cudagraphs
        self.channels_last = channels_last

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        x0 = inputs[0]
        if self.channels_last and x0.dim() == 4:
            inputs = (x0.contiguous(memory_format=torch.channels_last),) + inputs[1:]
        with torch.inference_mode():
            if self.cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()
            y = self.fn(*inputs)
            y = y.float()
            if self.cudagraphs:
                y = y.clone()  # a CUDA graph's output buffer is overwritten by the next replay
        return y.contiguous()

    def refit(self, model: nn.Module) -> bool:
        # Inductor reads parameters as graph inputs (no freezing), so an in-place copy into the
        # same tensors is picked up by the compiled code and by recorded CUDA graphs alike.
        try:
            with torch.no_grad():
                self.model.load_state_dict(model.state_dict())
        except (RuntimeError, KeyError):
            return False
        return True


def _autocast_forward(model: nn.Module, device_type: str, dtype: torch.dtype) -> Callable[..., torch.Tensor]:
    def forward(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, dtype=dtype):
            return model(*inputs)

    return forward


class CompiledBackend(Backend):
    """``--backend compiled``.

    Options: ``precision`` fp32 | bf16 (autocast) | fp16 (autocast, CUDA).
    ``extra``: ``mode`` (torch.compile mode; default ``None`` on CPU, ``"reduce-overhead"`` on CUDA;
    ``"max-autotune-no-cudagraphs"`` tunes longer for a little more speed); ``dynamic`` (default
    False: one specialised graph per input size); ``channels_last`` (default True, as eager).
    """

    name = "compiled"

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailableError` if Inductor cannot generate code for the device."""
        device = torch.device(self.options.device)
        if device.type == "cpu":
            if _cxx_compiler() is None:
                raise BackendUnavailableError(
                    "compiled backend on CPU needs a C++ compiler for TorchInductor (none of $CXX, g++, c++, "
                    "clang++ found): install one (apt-get install g++) or use --backend eager")
        elif device.type == "cuda":
            try:
                from torch.utils._triton import has_triton
            except ImportError:  # pragma: no cover - very old torch
                has_triton = None  # type: ignore[assignment]
            if has_triton is not None and not has_triton():
                raise BackendUnavailableError("compiled backend on CUDA needs Triton: pip install triton")

    def prepare(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Runner:
        ex = check_example_inputs(example_inputs)
        device = torch.device(self.options.device)
        prec = self.options.precision
        if prec not in _DTYPES:
            raise ValueError(f"compiled backend precision must be one of {list(_DTYPES)}, got {prec!r}")
        if prec == "fp16" and device.type != "cuda":
            raise ValueError("fp16 needs a CUDA device; use bf16 on CPU")
        self.check_available()
        extra = self.options.extra
        cudagraphs = device.type == "cuda"
        mode = extra.get("mode", "reduce-overhead" if cudagraphs else None)
        cudagraphs = cudagraphs and mode == "reduce-overhead"
        channels_last = bool(extra.get("channels_last", True))
        dynamic = bool(extra.get("dynamic", False))
        m = copy.deepcopy(model).eval().to(device)
        if channels_last:
            m = m.to(memory_format=torch.channels_last)
        fwd: Callable[..., torch.Tensor] = m if prec == "fp32" else _autocast_forward(m, device.type, _DTYPES[prec])
        fn = torch.compile(fwd, mode=mode, dynamic=dynamic, fullgraph=bool(extra.get("fullgraph", False)))
        runner = CompiledRunner(m, fn, device, prec, cudagraphs, channels_last)
        inputs = tuple(t.to(device) for t in ex)
        try:
            runner(*inputs)  # compiles now, not on the first live frame
            if cudagraphs:
                runner(*inputs)  # reduce-overhead records the graph on the second call
        except (ValueError, TypeError):
            raise
        except Exception as e:  # noqa: BLE001 - any Dynamo/Inductor/compiler failure
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise BackendUnavailableError(
                f"torch.compile failed for {type(model).__name__} on {device} ({type(e).__name__}: {first[:300]}); "
                "use --backend eager") from e
        log.info("compiled %s on %s (mode=%s, precision=%s)", type(model).__name__, device, mode, prec)
        return runner

"""PyTorch eager backend: fp32, bf16 (CPU autocast) or fp16 (CUDA), channels-last, inference mode."""
from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from ..models._abilities import HasSpec, is_prechecked
from .base import Backend, Runner

__all__ = ["EagerBackend", "EagerRunner"]

log = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class EagerRunner(Runner):
    def __init__(self, model: nn.Module, device: torch.device, precision: str, channels_last: bool) -> None:
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.model = model

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        x0 = inputs[0]
        if self.channels_last and x0.dim() == 4:
            inputs = (x0.contiguous(memory_format=torch.channels_last),) + inputs[1:]
        with torch.inference_mode():
            if self.precision == "fp32":
                y = self.model(*inputs)
            else:
                with torch.autocast(self.device.type, dtype=_DTYPES[self.precision]):
                    y = self.model(*inputs)
        return y.float().contiguous()

    shared = False  # ``model`` is the caller's module (copy before writing to it)

    def refit(self, model: nn.Module) -> bool:
        try:
            if self.shared:
                self.model, self.shared = copy.deepcopy(self.model), False
            self.model.load_state_dict(model.state_dict())
        except (RuntimeError, KeyError):
            return False
        return True


class EagerBackend(Backend):
    """``--backend eager``.

    Options: ``precision`` fp32 | bf16 (autocast, CPU or CUDA) | fp16 (autocast, CUDA);
    ``extra["channels_last"]`` (default: on for CUDA, off for CPU where it measured slower).

    ``prepare`` runs the model once on a small input (CPU: a check that it runs) or at full size
    (CUDA: a warm-up); on the CPU a model marked ``prechecked = True`` by its builder (MetaNet's
    generated nets: layout and finite weights checked when generated) is not run.
    """

    name = "eager"

    def prepare(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Runner:
        device = torch.device(self.options.device)
        prec = self.options.precision
        if prec not in _DTYPES:
            raise ValueError(f"eager backend precision must be one of {list(_DTYPES)}, got {prec!r}")
        if prec == "fp16" and device.type != "cuda":
            raise ValueError("fp16 needs a CUDA device; use bf16 on CPU")
        # channels-last feeds tensor cores on CUDA; on an AVX-512 CPU without AMX it measured slower
        # for these nets, so the default follows the device.
        channels_last = bool(self.options.extra.get("channels_last", device.type == "cuda"))
        if _on(model, device) and not channels_last and not model.training:
            # nothing to change: share the module (a MetaNet style change hands over a new net per
            # style; copying it would lengthen every switch). refit() copies before writing.
            m, shared = model, True
        else:
            m, shared = copy.deepcopy(model).eval().to(device), False
            if channels_last:
                m = m.to(memory_format=torch.channels_last)
        runner = EagerRunner(m, device, prec, channels_last)
        runner.shared = shared
        if device.type == "cpu" and is_prechecked(model):
            # a net whose builder checked its layout and weights (MetaNet's generated nets, one per style
            # change): on the CPU the run below would check nothing more and delay the switch
            return runner
        ex = tuple(t.to(device) for t in example_inputs)
        if device.type == "cpu":
            # A check that the model runs, not a warm-up: on the CPU eager has nothing to build per
            # model, so a full-size run only delays a hot swap by one frame time; a small image
            # checks the same code path.
            ex = (_shrink(ex[0], model.spec.size_multiple if isinstance(model, HasSpec) else 1),) + ex[1:]
        runner(*ex)  # CUDA: warm-up (allocator, cuDNN); CPU: the model runs with these inputs
        return runner


def _on(model: nn.Module, device: torch.device) -> bool:
    """Whether every parameter and buffer of ``model`` is on ``device``."""
    want = torch.device(device)
    for t in list(model.parameters()) + list(model.buffers()):
        d = t.device
        if d.type != want.type or (want.index is not None and d.index != want.index):
            return False
    return True


def _shrink(x: torch.Tensor, multiple: int, short: int = 64) -> torch.Tensor:
    """``(N, C, H, W)`` image -> the same scaled so its short side is about ``short`` (multiples kept)."""
    h, w = x.shape[-2:]
    if min(h, w) <= short:
        return x
    m = max(1, int(multiple))
    s = short / min(h, w)
    nh, nw = max(m, round(h * s / m) * m), max(m, round(w * s / m) * m)
    return x[..., :nh, :nw].contiguous()

"""TensorRT backend through Torch-TensorRT's dynamo path (``torch_tensorrt.compile(ir="dynamo")``).

Build: ``torch_tensorrt.compile`` with one ``torch_tensorrt.Input`` per model input (the image with a
min/opt/max height-width profile, style tensors with their fixed shapes), saved with
``torch_tensorrt.save`` into the engine cache and loaded back with ``torch.export.load(...).module()``.
Engines are built refittable, so a model with the same architecture and new weights (a newly
trained style) is made by refitting a cached engine (``torch_tensorrt.dynamo.refit_module_weights``)
instead of rebuilding it, and :meth:`TensorRTRunner.refit` swaps weights of a live runner.

Requires torch-tensorrt and a CUDA GPU (``pip install 'rtstyle[tensorrt]'``). Torch-TensorRT's
settings were renamed across releases (``make_refittable`` -> ``immutable_weights``;
``enabled_precisions`` -> explicit typing with ``enable_autocast``), so :func:`compile_settings`
picks the names the installed release has from ``CompilationSettings``' fields.

NOTE: written against the documented API and unit-tested without TensorRT (settings, shape
profiles, cache keys, argument checks); the build/run path itself needs a GPU machine to verify
(``pytest -m cuda tests/backends/test_tensorrt.py``).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Sequence

import torch
from torch import nn

from .base import Backend, BackendOptions, BackendUnavailableError, Runner
from .cache import EngineCache, EngineKey, engine_key
from .export import check_example_inputs

__all__ = [
    "ShapeProfile",
    "TensorRTBackend",
    "TensorRTRunner",
    "UNAVAILABLE",
    "compile_settings",
    "shape_profile",
    "tensorrt_key",
]

log = logging.getLogger(__name__)

UNAVAILABLE = "TensorRT backend needs torch-tensorrt and a CUDA GPU: pip install 'rtstyle[tensorrt]'"
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ENGINE_FILE = "model.ep"


def _import_trt() -> Any:
    try:
        import torch_tensorrt
    except ImportError:
        raise BackendUnavailableError(UNAVAILABLE) from None
    if not torch.cuda.is_available():
        raise BackendUnavailableError(UNAVAILABLE)
    return torch_tensorrt


# --------------------------------------------------------------------------- shape profile

@dataclass(frozen=True)
class ShapeProfile:
    """TensorRT optimisation profile of the image's ``(H, W)``: any size within min..max runs,
    ``opt`` is the size the kernels are tuned for."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    def contains(self, h: int, w: int) -> bool:
        return self.min[0] <= h <= self.max[0] and self.min[1] <= w <= self.max[1]

    def image_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """``(1, 3, H, W)`` for min, opt and max."""
        return tuple((1, 3, *hw) for hw in (self.min, self.opt, self.max))  # type: ignore[return-value]

    def __str__(self) -> str:
        f = lambda hw: f"{hw[0]}x{hw[1]}"  # noqa: E731
        return f"HxW {f(self.min)}..{f(self.max)} (opt {f(self.opt)})"


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def shape_profile(
    example_hw: tuple[int, int],
    min_shape: tuple[int, int] | None = None,
    max_shape: tuple[int, int] | None = None,
    multiple: int = 1,
) -> ShapeProfile:
    """The optimisation profile for an example frame size.

    ``opt`` is the example size. Without explicit bounds the range is half to twice the example
    (a live source that changes resolution a little keeps its engine); bounds are rounded inwards to
    ``multiple`` (the model's size multiple).

    Raises:
        ValueError: non-positive sizes, or min > opt > max.
    """
    m = max(1, int(multiple))
    opt = (int(example_hw[0]), int(example_hw[1]))
    for name, hw in (("example", opt), ("min_shape", min_shape), ("max_shape", max_shape)):
        if hw is not None and (len(hw) != 2 or min(hw) < 1):
            raise ValueError(f"{name} must be a positive (H, W), got {hw}")
    lo = tuple(int(v) for v in min_shape) if min_shape else tuple(max(m, v // 2) for v in opt)
    hi = tuple(int(v) for v in max_shape) if max_shape else tuple(2 * v for v in opt)
    lo = tuple(_round_up(v, m) for v in lo)
    hi = tuple(max(m, v // m * m) for v in hi)
    if not (lo[0] <= opt[0] <= hi[0] and lo[1] <= opt[1] <= hi[1]):
        raise ValueError(f"shape range must satisfy min <= example <= max per axis; got min {lo}, example {opt}, "
                         f"max {hi} (H, W)")
    return ShapeProfile(lo, opt, hi)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- settings

def compile_settings(available: Collection[str], precision: str, refittable: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``torch_tensorrt.compile`` under the installed release's names.

    Args:
        available: field names of ``torch_tensorrt.dynamo.CompilationSettings``.
        precision: fp32 | fp16 | bf16.
        refittable: build engines whose weights can be replaced.
    """
    if precision not in _DTYPES:
        raise ValueError(f"tensorrt precision must be one of {list(_DTYPES)}, got {precision!r}")
    names = set(available)
    kw: dict[str, Any] = {"min_block_size": 1}
    if refittable:
        if "immutable_weights" in names:  # current name
            kw["immutable_weights"] = False
        elif "make_refittable" in names:  # earlier releases
            kw["make_refittable"] = True
        elif "refit" in names:  # earliest dynamo releases
            kw["refit"] = True
    low = _DTYPES[precision]
    if "enable_autocast" in names:
        # newer releases type strictly and deprecate enabled_precisions: autocast lowers precision
        if precision != "fp32":
            kw.update(use_explicit_typing=True, enable_autocast=True, autocast_low_precision_type=low)
    else:
        kw["enabled_precisions"] = {torch.float32} if precision == "fp32" else {torch.float32, low}
    return kw


def tensorrt_key(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    profile: ShapeProfile,
    precision: str,
    versions: str,
    device: str | torch.device,
    refittable: bool = True,
) -> EngineKey:
    """Cache key of a TensorRT engine (image H/W as the profile's range, styles fixed)."""
    shapes: list[list[Any]] = [[1, 3, (profile.min[0], profile.max[0]), (profile.min[1], profile.max[1])]]
    shapes += [[int(d) for d in t.shape] for t in example_inputs[1:]]
    return engine_key(model, shapes=shapes, precision=precision, backend="tensorrt", backend_version=versions,
                      device=device, settings={"opt": f"{profile.opt[0]}x{profile.opt[1]}", "refittable": refittable})


# --------------------------------------------------------------------------- runner

class TensorRTRunner(Runner):
    """A loaded Torch-TensorRT program; inputs must lie within its shape profile."""

    def __init__(self, module: Any, device: torch.device, profile: ShapeProfile, trt_inputs: list[Any],
                 examples: list[torch.Tensor], backend: "TensorRTBackend") -> None:
        self.module = module
        self.device = device
        self.profile = profile
        self.trt_inputs = trt_inputs
        self.examples = examples  # opt-shaped inputs, for refitting
        self._backend = backend

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        h, w = (int(v) for v in inputs[0].shape[-2:])
        if not self.profile.contains(h, w):
            raise ValueError(f"frame {h}x{w} is outside this TensorRT engine's range {self.profile}; prepare it "
                             "with BackendOptions(min_shape=..., max_shape=...) covering the size")
        with torch.inference_mode():
            y = self.module(*(t.to(self.device, torch.float32).contiguous() for t in inputs))
        if isinstance(y, (tuple, list)):
            y = y[0]
        return y.float().contiguous()

    def refit(self, model: nn.Module) -> bool:
        try:
            self.module = self._backend._refit(self.module, model, self.trt_inputs, self.examples)
        except Exception as e:  # noqa: BLE001 - a failed refit means "prepare anew", as the contract says
            log.warning("TensorRT refit failed (%s: %s); the engine must be rebuilt", type(e).__name__, e)
            return False
        return True


# --------------------------------------------------------------------------- backend

class TensorRTBackend(Backend):
    """``--backend tensorrt``: Torch-TensorRT engines on a CUDA GPU.

    Options: ``device`` cuda[:N]; ``precision`` fp32 | fp16 | bf16; ``min_shape`` / ``max_shape``
    the image H/W range of the engine (default half to twice the example size).
    ``extra``: ``refittable`` (default True), ``workspace_size``, ``optimization_level`` (passed
    through to Torch-TensorRT when set).
    """

    name = "tensorrt"

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)  # importing torch_tensorrt waits until it is needed

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailableError` unless torch-tensorrt and a CUDA GPU are present."""
        _import_trt()

    def validate(self, model: nn.Module, example_inputs: Sequence[torch.Tensor]) -> ShapeProfile:
        """Check the options and inputs (no TensorRT needed) and return the shape profile."""
        ex = check_example_inputs(example_inputs)
        o = self.options
        if o.precision not in _DTYPES:
            raise ValueError(f"tensorrt precision must be one of {list(_DTYPES)}, got {o.precision!r}")
        dev = torch.device(o.device)
        if dev.type != "cuda":
            raise ValueError(f"tensorrt backend runs on a CUDA device, got device {o.device!r} (use device='cuda')")
        multiple = getattr(getattr(model, "spec", None), "size_multiple", 1) or 1
        return shape_profile((ex[0].shape[-2], ex[0].shape[-1]), o.min_shape, o.max_shape, multiple)

    def _trt_inputs(self, trt: Any, profile: ShapeProfile, ex: Sequence[torch.Tensor]) -> list[Any]:
        mn, opt, mx = profile.image_shapes()
        inputs = [trt.Input(min_shape=mn, opt_shape=opt, max_shape=mx, dtype=torch.float32)]
        inputs += [trt.Input(shape=tuple(t.shape), dtype=torch.float32) for t in ex[1:]]
        return inputs

    def _settings(self, trt: Any) -> dict[str, Any]:
        fields = {f.name for f in dataclasses.fields(trt.dynamo.CompilationSettings)}
        kw = compile_settings(fields, self.options.precision, bool(self.options.extra.get("refittable", True)))
        for name in ("workspace_size", "optimization_level"):
            if name in self.options.extra and name in fields:
                kw[name] = self.options.extra[name]
        return kw

    def _save(self, trt: Any, gm: Any, path: Path, trt_inputs: list[Any], examples: list[torch.Tensor]) -> None:
        try:  # newer releases infer dynamic_shapes from Input objects; older ones want tensors
            trt.save(gm, str(path), inputs=trt_inputs)
        except (TypeError, ValueError, AttributeError, AssertionError):
            trt.save(gm, str(path), inputs=examples)

    def _refit(self, module: Any, model: nn.Module, trt_inputs: list[Any], examples: Sequence[torch.Tensor]) -> Any:
        trt = _import_trt()
        from torch_tensorrt.dynamo import refit_module_weights

        m = copy.deepcopy(model).eval().to(torch.device(self.options.device))
        exported = trt.dynamo.trace(m, trt_inputs)
        # third positional argument: ``inputs`` in older releases, ``arg_inputs`` in newer ones
        return refit_module_weights(module, exported, tuple(examples))

    def prepare(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Runner:
        trt = _import_trt()
        profile = self.validate(model, example_inputs)
        ex = check_example_inputs(example_inputs)
        device = torch.device(self.options.device)
        import tensorrt as _trt_lib

        versions = f"torch_tensorrt-{trt.__version__}+tensorrt-{_trt_lib.__version__}+torch-{torch.__version__}"
        refittable = bool(self.options.extra.get("refittable", True))
        key = tensorrt_key(model, ex, profile, self.options.precision, versions, device, refittable)
        cache = EngineCache(self.options.cache_dir)
        trt_inputs = self._trt_inputs(trt, profile, ex)
        examples = [t.to(device, torch.float32) for t in ex]
        m = copy.deepcopy(model).eval().to(device)

        def build(folder: Path) -> None:
            donor = cache.find_similar(key, ignore=("weights",)) if refittable else None
            if donor is not None:  # same architecture and settings, other weights: refit, don't rebuild
                try:
                    gm = self._refit(torch.export.load(str(donor / ENGINE_FILE)).module(), m, trt_inputs, examples)
                    self._save(trt, gm, folder / ENGINE_FILE, trt_inputs, examples)
                    log.info("TensorRT engine refitted from %s", donor)
                    return
                except Exception as e:  # noqa: BLE001 - fall back to a full build
                    log.warning("refit from %s failed (%s); building from scratch", donor, e)
            log.info("building TensorRT engine for %s, %s, %s", key.model, profile, self.options.precision)
            gm = trt.compile(m, ir="dynamo", inputs=trt_inputs, **self._settings(trt))
            self._save(trt, gm, folder / ENGINE_FILE, trt_inputs, examples)

        path = cache.put(key, build) / ENGINE_FILE
        module = torch.export.load(str(path)).module()
        runner = TensorRTRunner(module, device, profile, trt_inputs, examples, self)
        runner(*examples)  # warm-up: context creation, first-run allocations
        return runner

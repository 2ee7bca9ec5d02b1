"""ONNX export shared by the ``onnx`` and ``openvino`` backends (and ``rtstyle export``).

Exporter choice (torch 2.13): the ``torch.export``-based exporter (``dynamo=True``, via onnxscript).
Both exporters give the same instance norm (``InstanceNormalization``), reflection padding
(``Pad mode=reflect``) and nearest upsampling (``Resize``) for :class:`TransformerNet`, and both
keep H/W dynamic there. They differ on models whose ops depend on the input size: the TorchScript
exporter (``dynamo=False``) runs the model once and bakes Python arithmetic on ``x.shape`` into
constants, so :class:`EngstromNet` (TF 'SAME' padding, ``[..., :2h, :2w]`` crop after its transposed
convs) exports a graph that returns the example's size for every input. ``torch.export`` traces
sizes symbolically and exports ``Shape``/``Slice`` arithmetic that is right for every size; it is
also the exporter torch maintains (the TorchScript one is deprecated since 2.9).

Inputs are named ``image``, ``style0``, ``style1`` ...; the output ``output``. With ``dynamic_hw``
the image's height and width are dynamic (``height``/``width``); style inputs keep the example's
shape (a style of another shape needs its own export, which the cache key reflects).
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .base import BackendUnavailableError
from .cache import EngineCache, EngineKey, engine_key

__all__ = [
    "DEFAULT_OPSET",
    "OUTPUT_NAME",
    "cached_onnx",
    "check_example_inputs",
    "example_like",
    "export_onnx",
    "export_key",
    "input_names",
    "input_shapes",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _quiet_logger(name: str, level: int = logging.ERROR):
    """Raise one library logger's level for the duration (the exporter warns once per missing
    torchvision op, which this project never uses)."""
    lg = logging.getLogger(name)
    old = lg.level
    lg.setLevel(level)
    try:
        yield
    finally:
        lg.setLevel(old)

# 18 is the oldest opset the torch.export exporter writes natively (older ones go through a
# version converter); onnxruntime >= 1.14, OpenVINO >= 2023.0 and TensorRT >= 8.6 read it.
DEFAULT_OPSET = 18
OUTPUT_NAME = "output"
ONNX_FILE = "model.onnx"


def input_names(n: int) -> list[str]:
    """``["image", "style0", "style1", ...]`` for ``n`` inputs."""
    return ["image"] + [f"style{i}" for i in range(n - 1)]


def check_example_inputs(example_inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Validate the ``prepare`` contract: a non-empty tuple of float tensors, the first ``(1, 3, H, W)``."""
    if isinstance(example_inputs, torch.Tensor):
        raise TypeError("example_inputs must be a tuple of tensors, e.g. (image,), not a bare tensor")
    ex = tuple(example_inputs)
    if not ex or not all(isinstance(t, torch.Tensor) for t in ex):
        raise TypeError(f"example_inputs must be a non-empty tuple of tensors, got {[type(t).__name__ for t in ex]}")
    img = ex[0]
    if img.dim() != 4 or img.shape[0] != 1 or img.shape[1] != 3:
        raise ValueError(f"the first example input must be an image of shape (1, 3, H, W), got {tuple(img.shape)}")
    bad = [i for i, t in enumerate(ex) if not t.is_floating_point()]
    if bad:
        raise TypeError(f"example inputs must be floating point; inputs {bad} are {[str(ex[i].dtype) for i in bad]}")
    return ex


def example_like(shapes: Sequence[Sequence[int]], styles: Sequence[torch.Tensor] = ()) -> tuple[torch.Tensor, ...]:
    """Example inputs of the given shapes for a re-export: a mid-grey image, then the given style
    tensors where their shapes match (ones where they do not; exports depend on shapes, not values)."""
    img = torch.full(tuple(shapes[0]), 127.5)
    rest = []
    for i, shape in enumerate(shapes[1:]):
        s = styles[i] if i < len(styles) else None
        rest.append(s if s is not None and tuple(s.shape) == tuple(shape) else torch.ones(tuple(shape)))
    return (img, *rest)


def input_shapes(
    example_inputs: Sequence[torch.Tensor],
    dynamic_hw: bool,
    min_shape: tuple[int, int] | None = None,
    max_shape: tuple[int, int] | None = None,
) -> list[list[int | tuple[int | None, int | None] | None]]:
    """Shapes for the cache key: the image's H/W as a range (or ``None``) when dynamic."""
    shapes: list[list[int | tuple[int | None, int | None] | None]] = [[int(d) for d in t.shape] for t in example_inputs]
    if dynamic_hw:
        for axis in (2, 3):
            lo = min_shape[axis - 2] if min_shape else None
            hi = max_shape[axis - 2] if max_shape else None
            shapes[0][axis] = (lo, hi) if (lo or hi) else None
    return shapes


def _dims(min_shape: tuple[int, int] | None, max_shape: tuple[int, int] | None) -> dict[int, object]:
    from torch.export import Dim

    out = {}
    for axis, name in ((2, "height"), (3, "width")):
        kw = {}
        if min_shape:
            kw["min"] = int(min_shape[axis - 2])
        if max_shape:
            kw["max"] = int(max_shape[axis - 2])
        out[axis] = Dim(name, **kw)
    return out


def export_onnx(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    path: str | os.PathLike[str],
    dynamic_hw: bool = True,
    *,
    opset: int = DEFAULT_OPSET,
    min_shape: tuple[int, int] | None = None,
    max_shape: tuple[int, int] | None = None,
) -> Path:
    """Export ``model`` to one self-contained ONNX file (fp32, weights inside).

    Args:
        model: the module (not modified: a float32 CPU copy is exported).
        example_inputs: ``(image, *style_tensors)``; the image is ``(1, 3, H, W)``.
        path: output file; written to a temporary name and renamed, so it is complete or absent.
        dynamic_hw: make the image's height and width dynamic axes.
        opset: ONNX opset (>= 17).
        min_shape / max_shape: optional ``(H, W)`` bounds of the dynamic axes.

    Returns:
        ``path``.

    Raises:
        BackendUnavailableError: ``onnx`` / ``onnxscript`` are not installed.
    """
    ex = check_example_inputs(example_inputs)
    if opset < 17:
        raise ValueError(f"opset must be >= 17 (InstanceNormalization/Pad/Resize as used here), got {opset}")
    try:
        import onnx  # noqa: F401  (the exporter needs both)
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise BackendUnavailableError(f"ONNX export needs onnx and onnxscript ({e}): pip install 'rtstyle[onnx]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m = copy.deepcopy(model).float().cpu().eval()
    args = tuple(t.detach().float().cpu() for t in ex)
    names = input_names(len(args))
    dynamic_shapes = None
    if dynamic_hw:
        dynamic_shapes = (_dims(min_shape, max_shape),) + (None,) * (len(args) - 1)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # the exporter prints its progress to stdout, and torch 2.13 warns about its own pytree use
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), warnings.catch_warnings(), \
                _quiet_logger("torch.onnx._internal.exporter._registration"):
            warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec", category=FutureWarning)
            torch.onnx.export(
                m,
                args,
                tmp,
                dynamo=True,
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_shapes=dynamic_shapes,
                opset_version=int(opset),
                external_data=False,
                optimize=True,
                verbose=False,
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def installed_version(dist: str) -> str | None:
    """A distribution's version without importing it (``None``: not installed). Importing onnx,
    onnxscript and nncf only to name them in a cache key cost most of a cached run's start-up."""
    import importlib.util
    import sys
    from importlib.metadata import PackageNotFoundError, version

    if dist in sys.modules:  # already imported (or blocked with None, or a stand-in without a spec)
        mod = sys.modules[dist]
        return None if mod is None else str(getattr(mod, "__version__", None) or version(dist))
    if importlib.util.find_spec(dist) is None:
        return None
    try:
        return version(dist)
    except PackageNotFoundError:  # importable but not installed as a distribution (a source tree)
        return str(getattr(importlib.import_module(dist), "__version__", "unknown"))


def require(*modules: str, what: str, extra: str) -> None:
    """Raise :class:`BackendUnavailableError` naming the missing ``modules`` (found without importing them)."""
    import importlib.util
    import sys

    missing = [m for m in modules if (sys.modules[m] is None if m in sys.modules else importlib.util.find_spec(m) is None)]
    if missing:
        raise BackendUnavailableError(f"{what} needs {' and '.join(modules)} (missing: {', '.join(missing)}): "
                                      f"pip install 'rtstyle[{extra}]'")


def export_key(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    dynamic_hw: bool = True,
    *,
    opset: int = DEFAULT_OPSET,
    min_shape: tuple[int, int] | None = None,
    max_shape: tuple[int, int] | None = None,
) -> EngineKey:
    """Cache key of an ONNX export. The file is device-independent, so its device is ``any``."""
    require("onnx", "onnxscript", what="ONNX export", extra="onnx")
    ex = check_example_inputs(example_inputs)
    return engine_key(
        model,
        shapes=input_shapes(ex, dynamic_hw, min_shape, max_shape),
        precision="fp32",
        backend="onnx-export",
        backend_version=f"torch-{torch.__version__}+onnxscript-{installed_version('onnxscript')}",
        device="any",
        settings={"opset": opset, "dynamic_hw": dynamic_hw},
    )


def cached_onnx(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    cache: EngineCache,
    dynamic_hw: bool = True,
    *,
    opset: int = DEFAULT_OPSET,
    min_shape: tuple[int, int] | None = None,
    max_shape: tuple[int, int] | None = None,
) -> Path:
    """The ONNX file for ``model`` from ``cache``, exporting it on a miss (onnx and onnxscript are
    imported only then)."""
    key = export_key(model, example_inputs, dynamic_hw, opset=opset, min_shape=min_shape, max_shape=max_shape)

    def build(folder: Path) -> None:
        log.info("exporting %s to ONNX (dynamic H/W: %s)", key.model, dynamic_hw)
        export_onnx(model, example_inputs, folder / ONNX_FILE, dynamic_hw,
                    opset=opset, min_shape=min_shape, max_shape=max_shape)

    return cache.put(key, build) / ONNX_FILE

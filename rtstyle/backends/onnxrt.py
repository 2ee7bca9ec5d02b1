"""ONNX Runtime backend: the model exported once to ONNX (cached), run by an ``InferenceSession``.

CPU: the CPU execution provider, all graph optimisations, one intra-op thread per usable core.
CUDA: the TensorRT and CUDA execution providers when the installed onnxruntime has them, with
tensors bound in place on the GPU (I/O binding) so frames never go through host memory.
A model that is an ONNX file (:class:`~rtstyle.models._graph_runtime.RunsOnnxFile`) is not
exported: its own file runs, through :mod:`.graph_file`.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..models._graph_runtime import RunsOnnxFile
from .base import Backend, BackendOptions, BackendUnavailableError, Runner
from .cache import EngineCache, ShapeLRU, engine_key
from .export import DEFAULT_OPSET, cached_onnx, check_example_inputs, example_like, export_key
from .graph_file import GraphFileRunner, ort_call, ort_session

__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeRunner", "convert_fp16"]

log = logging.getLogger(__name__)

_PRECISIONS = ("fp32", "fp16")
_INSTALL = "pip install 'rtstyle[onnx]'"
# kept in fp32 by the fp16 conversion: statistics over a whole image of [0, 255]-scaled
# activations overflow fp16 (65504) in the squared deviations of instance norm
_FP32_OPS = ["InstanceNormalization", "ReduceMean", "Pow", "Sqrt", "Div"]


def _import_ort() -> Any:
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise BackendUnavailableError(
            f"ONNX Runtime backend needs onnx, onnxscript and onnxruntime ({e}): {_INSTALL}") from None
    return onnxruntime


def convert_fp16(src: Path, dst: Path) -> Path:
    """Convert an fp32 ONNX file to fp16 weights and compute, keeping fp32 inputs/outputs and norms."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, op_block_list=_FP32_OPS)
    # the converter adds one Cast per (value, blocked consumer) under the same name: identical copies
    # of a node that make the graph invalid ("two nodes with same node name"); keep one of each
    seen: set[bytes] = set()
    nodes = []
    for node in m.graph.node:
        blob = node.SerializeToString()
        if blob not in seen:
            seen.add(blob)
            nodes.append(node)
    del m.graph.node[:]
    m.graph.node.extend(_toposort(nodes, {i.name for i in m.graph.input} | {i.name for i in m.graph.initializer}))
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))
    return dst


def _toposort(nodes: list[Any], available: set[str]) -> list[Any]:
    """Order nodes so each comes after its inputs' producers (the converter appends its Casts last)."""
    done = set(available) | {""}  # "" = an omitted optional input
    pending, out = list(nodes), []
    while pending:
        ready = [n for n in pending if all(i in done for i in n.input)]
        if not ready:
            raise ValueError(f"fp16 conversion left a cycle or a dangling input near node {pending[0].name!r}")
        ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ids]
        for n in ready:
            out.append(n)
            done.update(n.output)
    return out


class OnnxRuntimeRunner(Runner):
    """One ``InferenceSession``; inputs by name ``image``, ``style0`` ..."""

    def __init__(self, session: Any, device: torch.device, path: Path) -> None:
        self.session = session
        self.device = device
        self.path = path
        self.input_names = [i.name for i in session.get_inputs()]
        self.style_shapes = [tuple(i.shape) for i in session.get_inputs()[1:]]
        self.output_name = session.get_outputs()[0].name

    def _check(self, inputs: Sequence[torch.Tensor]) -> None:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(inputs)}")
        for name, want, t in zip(self.input_names[1:], self.style_shapes, inputs[1:]):
            if all(isinstance(d, int) for d in want) and tuple(t.shape) != want:
                raise ValueError(f"input {name} has shape {tuple(t.shape)} but the engine was built for {want}; "
                                 "prepare the model again with this style")

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        self._check(inputs)
        if self.device.type == "cuda":
            return self._run_cuda(inputs)
        feeds = {n: t.detach().to(torch.float32).contiguous().numpy() for n, t in zip(self.input_names, inputs)}
        out = self.session.run([self.output_name], feeds)[0]
        return torch.from_numpy(out)

    def _run_cuda(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        idx = self.device.index or 0
        binding = self.session.io_binding()
        keep = []
        for name, t in zip(self.input_names, inputs):
            t = t.detach().to(self.device, torch.float32).contiguous()
            keep.append(t)
            binding.bind_input(name, "cuda", idx, np.float32, list(t.shape), t.data_ptr())
        binding.bind_output(self.output_name, "cuda", idx)
        # ORT runs on its own stream: the inputs must be written before it reads them
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        out = binding.get_outputs()[0]
        if hasattr(out, "__dlpack__"):
            return torch.from_dlpack(out)  # zero-copy; the capsule keeps ORT's buffer alive
        return torch.from_numpy(out.numpy()).to(self.device)


class _PerShapeRunner(Runner):
    """Static-shape mode: one exported model and session per input shape (a few kept)."""

    def __init__(self, build: Any, device: torch.device, keep: int) -> None:
        self.device = device
        self.sessions = ShapeLRU(build, keep)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        shapes = tuple(tuple(int(d) for d in t.shape) for t in inputs)
        return self.sessions.get(shapes)(*inputs)


class OnnxRuntimeBackend(Backend):
    """``--backend onnx``: export to ONNX (cached in the engine cache) and run with onnxruntime.

    Options: ``precision`` fp32 | fp16 (CUDA only: an fp16 copy of the model with fp32 norms);
    ``min_shape`` / ``max_shape`` bound the dynamic H/W (and set TensorRT EP profiles).
    ``extra``: ``dynamic`` (default True: one model for every H/W; False: one static-shape model
    per input shape, rebuilt when the shape changes, ``keep`` of them held, default 4);
    ``threads`` (intra-op threads, default: usable cores); ``opset`` (default 18);
    ``providers`` (explicit onnxruntime providers list, overriding the automatic choice).
    """

    name = "onnx"

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self.check_available()
        self._sessions: dict[tuple[str, str | None, str], Any] = {}  # see _shared_session

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailableError` if onnx/onnxscript/onnxruntime are missing."""
        _import_ort()

    # ------------------------------------------------------------------ helpers
    def providers(self, device: torch.device, precision: str, cache: EngineCache) -> list[Any]:
        """Execution providers for ``device``, best first (``extra["providers"]`` wins)."""
        ort = _import_ort()
        explicit = self.options.extra.get("providers")
        if explicit:
            return list(explicit)
        if device.type == "cpu":
            return ["CPUExecutionProvider"]
        if device.type != "cuda":
            raise ValueError(f"onnx backend runs on cpu or cuda, not {device.type}")
        avail = ort.get_available_providers()
        if "CUDAExecutionProvider" not in avail:
            raise BackendUnavailableError(
                "onnxruntime here has no CUDA execution provider: pip install onnxruntime-gpu "
                f"(available: {', '.join(avail)})")
        idx = device.index or 0
        out: list[Any] = []
        if "TensorrtExecutionProvider" in avail and self.options.extra.get("ort_tensorrt", True):
            trt_dir = cache.root / "onnx-trt-ep"
            trt_dir.mkdir(parents=True, exist_ok=True)
            trt_opts: dict[str, Any] = {
                "device_id": idx,
                "trt_fp16_enable": precision == "fp16",
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(trt_dir),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(trt_dir),
            }
            o = self.options
            if o.min_shape and o.max_shape:
                mn, mx = o.min_shape, o.max_shape
                opt = self.options.extra.get("opt_shape") or mx
                trt_opts["trt_profile_min_shapes"] = f"image:1x3x{mn[0]}x{mn[1]}"
                trt_opts["trt_profile_opt_shapes"] = f"image:1x3x{opt[0]}x{opt[1]}"
                trt_opts["trt_profile_max_shapes"] = f"image:1x3x{mx[0]}x{mx[1]}"
            out.append(("TensorrtExecutionProvider", trt_opts))
        out.append(("CUDAExecutionProvider", {"device_id": idx}))
        out.append("CPUExecutionProvider")
        return out

    def _session(self, path: Path, providers: list[Any]) -> Any:
        _import_ort()
        return ort_session(path, providers, self.options.extra.get("threads"))

    def _shared_session(self, path: Path, providers: list[Any], sha256: str | None = None) -> Any:
        """One session per model file (and ``sha256`` of its contents, when known) and providers:
        a style change that keeps the network (its style is an input) costs a warm-up run, not a
        session build. ``run`` is thread-safe."""
        key = (str(path), sha256, repr(providers))
        sess = self._sessions.get(key)
        if sess is None:
            sess = self._sessions[key] = self._session(path, providers)
        return sess

    def _model_file(self, model: nn.Module, ex: tuple[torch.Tensor, ...], cache: EngineCache, dynamic: bool,
                    precision: str, device: torch.device) -> Path:
        o = self.options
        opset = int(o.extra.get("opset", DEFAULT_OPSET))
        path = cached_onnx(model, ex, cache, dynamic, opset=opset, min_shape=o.min_shape, max_shape=o.max_shape)
        if precision == "fp16":
            import onnxruntime as ort

            base = export_key(model, ex, dynamic, opset=opset, min_shape=o.min_shape, max_shape=o.max_shape)
            key = engine_key(model, shapes=[], precision="fp16", backend="onnx-fp16",
                             backend_version=f"{base.backend_version}+onnxruntime-{ort.__version__}", device=device,
                             settings={"export": base.digest})
            path = cache.put(key, lambda folder: convert_fp16(path, folder / "model.onnx")) / "model.onnx"
        return path

    # ------------------------------------------------------------------ Backend
    def prepare(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Runner:
        ex = check_example_inputs(example_inputs)
        device = torch.device(self.options.device)
        prec = self.options.precision
        if prec not in _PRECISIONS:
            raise ValueError(f"onnx backend precision must be one of {list(_PRECISIONS)}, got {prec!r} "
                             "(bf16 on CPU: use the openvino or eager backend)")
        if prec == "fp16" and device.type != "cuda":
            raise ValueError("onnx fp16 needs a CUDA device; use fp32 on CPU")
        cache = EngineCache(self.options.cache_dir)
        providers = self.providers(device, prec, cache)
        if isinstance(model, RunsOnnxFile):
            return self._prepare_file(model, ex, device, prec, providers)
        dynamic = bool(self.options.extra.get("dynamic", True))
        if dynamic:
            path = self._model_file(model, ex, cache, True, prec, device)
            runner: Runner = OnnxRuntimeRunner(self._shared_session(path, providers), device, path)
        else:
            frozen = copy.deepcopy(model).cpu()  # later rebuilds must see today's weights
            styles = tuple(t.detach().cpu() for t in ex[1:])

            def build(shapes: tuple[tuple[int, ...], ...]) -> OnnxRuntimeRunner:
                p = self._model_file(frozen, example_like(shapes, styles), cache, False, prec, device)
                return OnnxRuntimeRunner(self._shared_session(p, providers), device, p)

            runner = _PerShapeRunner(build, device, int(self.options.extra.get("keep", 4)))
        runner(*(t.to(device) for t in ex))  # warm-up: allocations, kernel selection
        log.info("onnx runner ready (providers: %s)", [p if isinstance(p, str) else p[0] for p in providers])
        return runner

    def _prepare_file(self, model: RunsOnnxFile, ex: tuple[torch.Tensor, ...], device: torch.device, prec: str,
                      providers: list[Any]) -> Runner:
        """A model that is an ONNX file runs from that file: no export, no cache entry."""
        if prec != "fp32":
            raise ValueError(f"{model.spec.name} is run from its ONNX file as it is: precision must be fp32, "
                             f"got {prec!r} (give an fp16 ONNX file with its own sidecar instead)")
        session = self._shared_session(model.onnx_path, providers, model.spec.sha256)  # shared by its styles
        runner = GraphFileRunner(model, ort_call(session, model.output_name), device, model.onnx_path, self.name)
        runner(*(t.to(device) for t in ex))  # warm-up
        log.info("onnx runner ready for foreign %s (providers: %s)", model.onnx_path.name,
                 [p if isinstance(p, str) else p[0] for p in providers])
        return runner

"""OpenVINO backend: ONNX export -> OpenVINO IR (cached) -> a model compiled for the CPU.

The IR (``model.xml`` / ``model.bin``, fp32 weights) is kept in the engine cache and shared by all
precisions: bf16 / f16 are compile-time hints (``INFERENCE_PRECISION_HINT``), so one IR serves both.
Height and width stay dynamic in the IR; by default one compiled model serves every size (on this
kind of net OpenVINO's CPU plugin runs dynamic shapes as fast as static ones, measured at 640x480).
``extra["dynamic"]=False`` exports and compiles one static-shape model per input size instead (a few
kept): for models whose dynamic-shape export is slow or impossible. A model that is an ONNX file
(:class:`~rtstyle.models._graph_runtime.RunsOnnxFile`) is converted from its own file, and the style
encoders' modules straight from PyTorch (:func:`module_ir`); both run through :mod:`.graph_file`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..models._graph_runtime import RunsOnnxFile
from .base import Backend, BackendOptions, BackendUnavailableError, Runner
from .cache import MANIFEST, EngineCache, EngineKey, ShapeLRU, device_name, engine_key
from .export import (DEFAULT_OPSET, cached_onnx, check_example_inputs, example_like, export_key, input_shapes,
                     installed_version, require)
from .graph_file import GraphFileRunner, ov_call

__all__ = ["LazyCalibration", "OpenVINOBackend", "OpenVINORunner", "compile_ir", "compiled_precision", "frame_ir", "module_ir", "ov_config",
           "quantize_ir"]

log = logging.getLogger(__name__)


@contextmanager
def quiet_nncf() -> Iterator[None]:
    """NNCF logs every quantizer it leaves out at INFO (dozens of lines per network) on its own
    handler; a user's job should show only warnings from it."""
    nncf_log = logging.getLogger("nncf")
    old = nncf_log.level
    nncf_log.setLevel(max(old, logging.WARNING))
    try:
        yield
    finally:
        nncf_log.setLevel(old)

_INSTALL = "pip install 'rtstyle[openvino]'"
# rtstyle precision -> OpenVINO INFERENCE_PRECISION_HINT
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
IR_FILE = "model.xml"


def _import_ov() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise BackendUnavailableError(f"OpenVINO backend needs openvino ({e}): {_INSTALL}") from None
    return openvino


def ov_config(precision: str, threads: int | None = None) -> dict[str, str]:
    """``compile_model`` settings: latency hint and the inference precision (``int8`` runs in f32)."""
    cfg = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": _HINTS.get(precision, "f32")}
    if threads:
        cfg["INFERENCE_NUM_THREADS"] = str(int(threads))
    return cfg


def _feeds(inputs: Sequence[torch.Tensor]) -> dict[int, np.ndarray]:
    return {i: t.detach().to("cpu", torch.float32).contiguous().numpy() for i, t in enumerate(inputs)}


class OpenVINORunner(Runner):
    """One compiled model and its infer request (one caller at a time, as :class:`Runner` says)."""

    device = torch.device("cpu")

    def __init__(self, compiled: Any, ir: Path | None = None) -> None:
        self.compiled = compiled
        self.ir = ir  # the IR it was compiled from (the start-up path bakes the frame contract into it)
        self.request = compiled.create_infer_request()
        self.n_inputs = len(compiled.inputs)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != self.n_inputs:
            raise ValueError(f"expected {self.n_inputs} inputs, got {len(inputs)}")
        # share_inputs: no copy in; outputs are copied out (the request reuses its buffers)
        res = self.request.infer(_feeds(inputs), share_inputs=True, share_outputs=False)
        return torch.from_numpy(np.asarray(res[0], dtype=np.float32))


class _PerShapeRunner(Runner):
    device = torch.device("cpu")

    def __init__(self, build: Any, keep: int) -> None:
        self.models = ShapeLRU(build, keep)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        shapes = tuple(tuple(int(d) for d in t.shape) for t in inputs)
        return self.models.get(shapes)(*inputs)


@dataclass(frozen=True)
class LazyCalibration:
    """int8 calibration images made only when an IR has to be quantised.

    Attributes:
        key: names the images exactly (source file hash, frames, size, input contract): it stands for
            them in the engine key, so a cached int8 IR is found without decoding a frame.
        load: returns the images, ``(1, 3, H, W)`` each, in the model's input contract.
    """

    key: str
    load: Callable[[], list[torch.Tensor]]


def _calibration_digest(items: Sequence[tuple[torch.Tensor, ...]]) -> str:
    h = hashlib.sha256()
    for item in items:
        for t in item:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class OpenVINOBackend(Backend):
    """``--backend openvino``: OpenVINO on the CPU (or another OpenVINO device).

    Options: ``precision`` fp32 | bf16 (needs a CPU with AVX-512 BF16 or AMX) | fp16 |
    int8 (post-training quantisation with NNCF; needs ``pip install nncf``);
    ``min_shape`` / ``max_shape`` bound the dynamic H/W of the export.
    ``extra``: ``dynamic`` (default True; False: compile per input shape, ``keep`` held, default 4);
    ``threads`` (``INFERENCE_NUM_THREADS``, default: OpenVINO's choice, all cores);
    ``ov_device`` (default ``"CPU"``); ``opset`` (default 18);
    ``calibration`` (int8: iterable of input tuples or image tensors, or a :class:`LazyCalibration`;
    default the example inputs).
    """

    name = "openvino"

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self.check_available()
        self._compiled: dict[tuple[str, str, str], Any] = {}  # see _compile
        self._warm: set[tuple[int, tuple[tuple[int, ...], ...]]] = set()  # (compiled model, input shapes) run once

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailableError` if openvino (or the ONNX exporter) is missing.

        The exporter is looked up, not imported: a cached engine never needs it."""
        _import_ov()
        require("onnx", "onnxscript", what="OpenVINO backend exports through ONNX and", extra="onnx,openvino")

    # ------------------------------------------------------------------ IR
    def _ir(self, model: nn.Module, ex: tuple[torch.Tensor, ...], cache: EngineCache, dynamic: bool,
            ov_device: str) -> Path:
        ov = _import_ov()
        o = self.options
        opset = int(o.extra.get("opset", DEFAULT_OPSET))
        onnx_path = cached_onnx(model, ex, cache, dynamic, opset=opset, min_shape=o.min_shape, max_shape=o.max_shape)
        base = export_key(model, ex, dynamic, opset=opset, min_shape=o.min_shape, max_shape=o.max_shape)
        int8 = o.precision == "int8"
        settings: dict[str, Any] = {"export": base.digest}
        source = o.extra.get("calibration")
        if int8 and source is None and getattr(model, "spec", None) is not None:
            # no calibration given (--precision int8): the same 10 sample-clip frames "auto" uses. The one
            # example frame this fell back to before left linear.r31 at 15.5 dB from fp32 (33.1 dB with these)
            from .precision import int8_calibration

            source = int8_calibration(model.spec, getattr(model.spec, "size_multiple", 1))
        if int8:
            self._need_nncf()  # imported only to quantise: a cached int8 IR needs its version only
            if isinstance(source, LazyCalibration):
                h = hashlib.sha256(source.key.encode())
                h.update(_calibration_digest([ex[1:]]).encode())  # the style inputs go with every image
                digest = h.hexdigest()[:16]
            else:
                digest = _calibration_digest(self._calibration(ex, source))
            settings.update(calibration=digest, nncf=installed_version("nncf"), fp32_ops=",".join(_FP32_TYPES))
        key = engine_key(model, shapes=input_shapes(ex, dynamic, o.min_shape, o.max_shape),
                         precision="int8" if int8 else "fp32", backend="openvino",
                         backend_version=f"openvino-{ov.get_version()}", device=self._device_name(ov_device),
                         settings=settings)

        def build(folder: Path) -> None:
            m = ov.convert_model(str(onnx_path))
            if int8:
                m = self._quantize(m, self._calibration(ex, source))
            # compress_to_fp16 defaults to True: it would round the fp32 weights of the shared IR
            ov.save_model(m, str(folder / IR_FILE), compress_to_fp16=False)

        return cache.put(key, build) / IR_FILE

    def _device_name(self, ov_device: str) -> str:
        if ov_device == "CPU":
            return device_name("cpu")
        ov = _import_ov()
        try:
            return str(ov.Core().get_property(ov_device, "FULL_DEVICE_NAME"))
        except RuntimeError:
            return ov_device

    # ------------------------------------------------------------------ int8
    @staticmethod
    def _need_nncf() -> None:
        if installed_version("nncf") is None:
            raise BackendUnavailableError("OpenVINO int8 needs NNCF for post-training quantisation: pip install nncf")

    def _calibration(self, ex: tuple[torch.Tensor, ...], source: Any = None) -> list[tuple[torch.Tensor, ...]]:
        data: Iterable[Any] = source or [ex]
        if isinstance(data, LazyCalibration):
            data = data.load()
        items = []
        for item in data:
            item = (item,) + ex[1:] if isinstance(item, torch.Tensor) else tuple(item)
            items.append(tuple(t.detach().float().cpu() for t in item))
        if len(items) < 8:
            log.warning("int8 calibration with %d sample(s): pass extra['calibration'] with a few hundred "
                        "representative frames for good quality", len(items))
        return items

    def _quantize(self, m: Any, calib: list[tuple[torch.Tensor, ...]]) -> Any:
        """Post-training int8 of the convolutions only.

        Quantising everything cost the Engstrom net several dB of PSNR against fp32 (README, "Benchmarks"):
        instance-norm statistics and the tanh*150 output stage amplify int8 error. The norm and
        elementwise ops, the matrix products (the feature statistics, whitening and colouring of the
        arbitrary-style models: int8 there left ``linear.r31`` at 33.1 dB from fp32, 41.1 dB without)
        and the first and last convolution stay in fp32, with the MIXED preset (asymmetric activations).
        """
        return quantize_ir(m, calib, transform=lambda item: {i: t.numpy() for i, t in enumerate(item)},
                           keep_types=_FP32_TYPES, keep_last_conv=True)

    # ------------------------------------------------------------------ Backend
    def prepare(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Runner:
        ov = _import_ov()
        ex = check_example_inputs(example_inputs)
        o = self.options
        if torch.device(o.device).type != "cpu":
            raise ValueError(f"openvino backend takes host tensors: device must be 'cpu', got {o.device!r} "
                             "(run on an Intel GPU/NPU with extra={'ov_device': 'GPU'})")
        if o.precision not in (*_HINTS, "int8"):
            raise ValueError(f"openvino backend precision must be one of {[*_HINTS, 'int8']}, got {o.precision!r}")
        if o.precision == "int8":
            self._need_nncf()  # fail before the (slow) export
        ov_device = str(o.extra.get("ov_device", "CPU"))
        core = ov.Core()
        if o.precision == "bf16" and ov_device == "CPU":
            caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if "BF16" not in caps:
                log.warning("this CPU has no native bf16 (capabilities %s): OpenVINO will run f32", caps)
        cache = EngineCache(o.cache_dir)
        dynamic = bool(o.extra.get("dynamic", True))
        cfg = ov_config(o.precision, o.extra.get("threads"))
        if isinstance(model, RunsOnnxFile):
            return self._prepare_file(model, ex, core, cache, ov_device, cfg)
        if dynamic:
            ir = self._ir(model, ex, cache, True, ov_device)
            compiled = self._compile(core, ir, ov_device, cfg)
            runner: Runner = OpenVINORunner(compiled, ir)
            warm = (id(compiled), tuple(tuple(int(d) for d in t.shape) for t in ex))
            if warm not in self._warm:
                runner(*ex)  # warm-up: primitive creation for these shapes
                self._warm.add(warm)
            # else a style change on a compiled model that already ran these shapes: a new infer request
            # runs its first frame as fast as later ones (measured: 206 vs 205 ms, linear.r31 at 256x344),
            # so a warm-up would only delay the new style by one frame
            return runner
        else:
            frozen = copy.deepcopy(model).cpu().eval()  # later rebuilds must see today's weights
            styles = tuple(t.detach().cpu() for t in ex[1:])

            def build(shapes: tuple[tuple[int, ...], ...]) -> OpenVINORunner:
                ir = self._ir(frozen, example_like(shapes, styles), cache, False, ov_device)
                return OpenVINORunner(self._compile(core, ir, ov_device, cfg))

            runner = _PerShapeRunner(build, int(o.extra.get("keep", 4)))
        runner(*ex)  # warm-up: primitive creation
        return runner

    def _compile(self, core: Any, ir: Path, ov_device: str, cfg: dict[str, str]) -> Any:
        """The compiled model of an IR, compiled once per backend and settings. A style change that
        keeps the network (MSG-Net's bank, brush and strength, AdaIN's statistics, a foreign
        multi-style model's style vector: all inputs)
        then costs a new infer request instead of a compile (and no warm-up run once the compiled model
        has run those input shapes). Each runner has its own infer request.

        Across processes, OpenVINO's own model cache (``CACHE_DIR``, in ``<engines>/openvino-compiled``;
        ``extra["compiled_cache"]=False`` turns it off) keeps the compiled blobs: a later run imports
        one instead of compiling the IR again, most of a cached photo's engine set-up."""
        key = (str(ir), ov_device, repr(sorted(cfg.items())))
        compiled = self._compiled.get(key)
        if compiled is None:
            cfg = dict(cfg)
            if self.options.extra.get("compiled_cache", True):
                blobs = EngineCache(self.options.cache_dir).root / "openvino-compiled"
                blobs.mkdir(parents=True, exist_ok=True)
                cfg["CACHE_DIR"] = str(blobs)  # blobs are keyed by OpenVINO on model, settings and device
            compiled = self._compiled[key] = core.compile_model(str(ir), ov_device, cfg)
        return compiled

    # ------------------------------------------------------------------ models that are ONNX files
    def _prepare_file(self, model: RunsOnnxFile, ex: tuple[torch.Tensor, ...], core: Any, cache: EngineCache,
                      ov_device: str, cfg: dict[str, str]) -> Runner:
        """A model that is an ONNX file: the file converted to IR as it is (cached by its sha256), no export."""
        if self.options.precision == "int8":
            raise ValueError(f"{model.spec.name}: openvino int8 quantises rtstyle's own exports only; a foreign ONNX "
                             "model runs as its file is (use fp32, bf16 or fp16, or give an int8 QDQ ONNX file)")
        ir = self._file_ir(model, cache)
        # the compiled model is shared by every style of the model; each runner has its own infer request
        run = ov_call(self._compile(core, ir, ov_device, cfg), model.output_name)
        runner = GraphFileRunner(model, run, torch.device("cpu"), ir, self.name)
        runner(*ex)  # warm-up: primitive creation
        return runner

    def _file_ir(self, model: RunsOnnxFile, cache: EngineCache) -> Path:
        ov = _import_ov()
        src = model.onnx_path
        sha = model.spec.sha256 or hashlib.sha256(src.read_bytes()).hexdigest()
        key = engine_key(model, shapes=[], precision="fp32", backend="openvino",  # type: ignore[arg-type]
                         backend_version=f"openvino-{ov.get_version()}", device="any",
                         settings={"source": "foreign-onnx", "file": src.name, "onnx_sha256": sha})

        def build(folder: Path) -> None:
            log.info("converting foreign ONNX %s to OpenVINO IR", src)
            ov.save_model(ov.convert_model(str(src)), str(folder / IR_FILE), compress_to_fp16=False)

        return cache.put(key, build) / IR_FILE


# --------------------------------------------------------------------------- quantisation and modules

# kept in fp32 when a whole rtstyle export is quantised (see OpenVINOBackend._quantize)
_FP32_TYPES = ("MVN", "Tanh", "Sigmoid", "Multiply", "Add", "Subtract", "Divide", "Sqrt", "Power", "ReduceMean",
               "MatMul")


def _import_nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise BackendUnavailableError("OpenVINO int8 needs NNCF for post-training quantisation: pip install nncf") from None
    return nncf


def quantize_ir(m: Any, calib: Sequence[Any], *, transform: Callable[[Any], Any] | None = None,
                keep_types: Sequence[str] = (), keep_last_conv: bool = False) -> Any:
    """Post-training int8 of an OpenVINO model with NNCF, MIXED preset (asymmetric activations).

    The first convolution (it sees the raw image) stays in fp32, and with ``keep_last_conv`` the
    last one too (when there are two or more); so do the ops of ``keep_types``.

    Args:
        m: the OpenVINO model.
        calib: calibration items, all of them used.
        transform: item -> the model's inputs (default: the item as it is).
        keep_types: OpenVINO op types left in fp32.
        keep_last_conv: also leave the last convolution in fp32.
    """
    nncf = _import_nncf()
    convs = [op.get_friendly_name() for op in m.get_ordered_ops() if op.get_type_name() == "Convolution"]
    if keep_last_conv:
        names = [convs[0], convs[-1]] if len(convs) > 1 else []
    else:
        names = convs[:1]
    keep = nncf.IgnoredScope(types=list(keep_types), names=names, validate=False)
    with quiet_nncf():
        return nncf.quantize(m, nncf.Dataset(list(calib), transform), subset_size=len(calib),
                             preset=nncf.QuantizationPreset.MIXED, ignored_scope=keep)


def module_ir(module: nn.Module, example: torch.Tensor, *, name: str, version: int,
              calibration: Callable[[], list[torch.Tensor]] | None = None,
              cache: EngineCache | None = None) -> tuple[Path, bool]:
    """A module taking one ``(1, 3, H, W)`` image converted to IR with dynamic H and W (OpenVINO's
    PyTorch frontend, no ONNX), int8 when ``calibration`` is given and NNCF is installed; cached in
    the engine cache under ``openvino-style-encoder`` by the weights, ``name``, ``version`` and the
    calibration images.

    Returns:
        ``(model.xml path, quantised)``.
    """
    ov = _import_ov()
    nncf: Any = None
    if calibration is not None:
        try:
            import nncf
        except ImportError:
            log.warning("%s: int8 needs NNCF (pip install nncf); running it fp32", name)
    settings: dict[str, Any] = {"encoder": name, "version": version}
    calib: list[np.ndarray] = []
    if nncf is not None:
        assert calibration is not None
        calib = [t.detach().float().cpu().numpy() for t in calibration()]
        digest = hashlib.sha256(b"".join(c.tobytes() for c in calib)).hexdigest()[:16]
        settings.update(calibration=digest, nncf=nncf.__version__)
    key = engine_key(module, shapes=[(1, 3, None, None)], precision="int8" if nncf else "fp32",
                     backend="openvino-style-encoder", backend_version=f"openvino-{ov.get_version()}",
                     device="any", settings=settings)

    def build(folder: Path) -> None:
        with torch.no_grad():
            m = ov.convert_model(module, example_input=example, input=[ov.PartialShape([1, 3, -1, -1])])
        if nncf is not None:
            m = quantize_ir(m, calib)
        ov.save_model(m, str(folder / IR_FILE), compress_to_fp16=False)

    return (cache or EngineCache()).put(key, build) / IR_FILE, nncf is not None


def compile_ir(ir: Path, ov_device: str = "CPU", precision: str = "fp32") -> Any:
    """An IR compiled for latency in ``precision`` (``fp32`` or ``bf16``), always given explicitly: on
    CPUs with AVX-512 BF16 OpenVINO would default to bf16, which rounds statistics: the style encoders'
    ``auto`` asks for it where the host has bf16 in hardware and checks it against f32 once."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"compile_ir takes fp32 or bf16, got {precision!r}")
    core = _import_ov().Core()
    return core.compile_model(core.read_model(str(ir)), ov_device, ov_config(precision))


def compiled_precision(compiled: Any) -> str:
    """What a compiled model runs in, as OpenVINO reports it: ``"bf16"``, ``"fp16"`` or ``"fp32"``
    (a bf16 hint on a CPU without bf16 compiles to f32)."""
    try:
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    except Exception:  # noqa: BLE001 - a device without the property runs what the IR says: f32 here
        return "fp32"
    name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    return {"bf16": "bf16", "f16": "fp16"}.get(name, "fp32")


# --------------------------------------------------------------------------- the frame contract baked in

FRAME_FORMAT = "rtstyle.frame-ir/2"  # bump when the baked steps change: old entries are then not found


def frame_ir(ir: Path, spec: Any, cache: EngineCache | None = None) -> tuple[Path, Path]:
    """``ir`` as two IRs that take and return uint8 RGB frames, the model's input and output contract
    (:class:`~rtstyle.models.ModelSpec`: colour order, input/output range, mean/std) added by OpenVINO's
    ``PrePostProcessor`` as :func:`rtstyle.contract.to_model_input` and
    :func:`~rtstyle.contract.from_model_output` apply them (clamp to 0..255, round half up).

    ``model.xml``: ``(1, H, W, 3)`` uint8 -> the net's float output ``(1, 3, H, W)``, compiled at the
    run's precision; ``post.xml``: that output -> ``(1, H, W, 3)`` uint8, compiled in f32. Two models,
    because OpenVINO keeps a bf16 net's last layer in f32 only when it is the graph's output: with the
    rounding appended it stores that layer in bf16 (a step of 1.0 at 128..255), and one pixel in six came
    out one level off. H and W are as dynamic as ``ir``'s. Padding to the size multiple and resizing are
    not in it: its caller (:mod:`rtstyle.fastpath`) takes frames that need neither. Cached under
    ``openvino-frames/`` by the source entry's digest and the contract.

    Returns:
        The ``model.xml`` and ``post.xml`` paths.
    """
    ov = _import_ov()
    cache = cache or EngineCache()
    source = json.loads((ir.parent / MANIFEST).read_text())
    contract = {"color_order": spec.color_order, "input_range": list(spec.input_range),
                "output_range": list(spec.output_range), "mean": spec.mean and list(spec.mean),
                "std": spec.std and list(spec.std), "output_normalised": bool(spec.extra.get("output_normalised", False))}
    key = EngineKey(model=str(spec.name), weights=str(source["digest"]), shapes="1x?x?x3 u8",
                    precision=str(source["key"]["precision"]), backend="openvino-frames",
                    backend_version=f"openvino-{ov.get_version()}", device="any",
                    settings=tuple(sorted({"format": FRAME_FORMAT, "source": str(ir.parent.name),
                                           "contract": json.dumps(contract, sort_keys=True)}.items())))

    def build(folder: Path) -> None:
        net = ov.Core().read_model(str(ir))
        ov.save_model(_with_input_contract(ov, net, spec), str(folder / IR_FILE), compress_to_fp16=False)
        ov.save_model(_output_contract(ov, net, spec), str(folder / POST_FILE), compress_to_fp16=False)

    folder = cache.put(key, build)
    return folder / IR_FILE, folder / POST_FILE


POST_FILE = "post.xml"


def _output(x: Any) -> Any:
    """A custom PrePostProcessor step returns an output, not a node."""
    return x.output(0) if hasattr(x, "get_output_size") else x


def _channels(values: Sequence[float]) -> Any:
    from openvino import opset13 as ops

    return ops.constant(np.asarray(values, np.float32).reshape(1, 3, 1, 1))


def _with_input_contract(ov: Any, m: Any, spec: Any) -> Any:
    from openvino import opset13 as ops
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(m)
    inp = ppp.input(0)
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    inp.model().set_layout(ov.Layout("NCHW"))

    def pre(node: Any) -> Any:  # to_model_input: colour order, input range, mean/std
        x = node
        if spec.color_order == "BGR":
            x = ops.gather(x, ops.constant(np.array([2, 1, 0], np.int64)), ops.constant(np.int64(1)))
        lo, hi = spec.input_range
        if (lo, hi) != (0.0, 255.0):
            x = ops.add(ops.multiply(x, ops.constant(np.float32((hi - lo) / 255.0))), ops.constant(np.float32(lo)))
        if spec.mean is not None:
            x = ops.divide(ops.subtract(x, _channels(spec.mean)), _channels(spec.std or (1.0, 1.0, 1.0)))
        return _output(x)

    inp.preprocess().convert_element_type(ov.Type.f32).convert_layout(ov.Layout("NCHW")).custom(pre)
    return ppp.build()


def _output_contract(ov: Any, net: Any, spec: Any) -> Any:
    """The model of the output contract alone: the net's float output in, uint8 RGB NHWC out."""
    from openvino import opset13 as ops
    from openvino.preprocess import PrePostProcessor

    shape = net.output(0).get_partial_shape()
    x = ops.parameter(shape, ov.Type.f32, name="stylized")
    ppp = PrePostProcessor(ov.Model([ops.result(x)], [x], "output_contract"))
    out = ppp.output(0)
    out.model().set_layout(ov.Layout("NCHW"))
    out.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))

    def post(node: Any) -> Any:  # from_model_output and to_uint8: clamp, round half up
        y = node
        lo, hi = spec.output_range
        if spec.mean is not None and spec.extra.get("output_normalised", False):
            y = ops.add(ops.multiply(y, _channels(spec.std or (1.0, 1.0, 1.0))), _channels(spec.mean))
        if (lo, hi) != (0.0, 255.0):
            y = ops.multiply(ops.subtract(y, ops.constant(np.float32(lo))), ops.constant(np.float32(255.0 / (hi - lo))))
        if spec.color_order == "BGR":
            y = ops.gather(y, ops.constant(np.array([2, 1, 0], np.int64)), ops.constant(np.int64(1)))
        return _output(ops.floor(ops.add(ops.clamp(y, 0.0, 255.0), ops.constant(np.float32(0.5)))))

    out.postprocess().custom(post).convert_layout(ov.Layout("NHWC")).convert_element_type(ov.Type.u8)
    return ppp.build()

"""``precision="auto"``: the fastest precision a backend offers on this host that keeps the output
within :data:`FLOOR_DB` of eager fp32 (:data:`LIVE_FLOOR_DB` for a live run, ``BackendOptions.extra[FLOOR_OPTION]``),
measured once and cached.

The candidates are the backend's precisions for the device, pruned by what the host runs natively
(:mod:`rtstyle.host`): bf16 only with AMX or AVX512_BF16 (emulated bf16 measured slower than fp32 on
AVX-512 without it), int8 only with VNNI or AMX-INT8 and NNCF installed. The survivors are built and
timed round-robin on frames of the bundled sample clip at the example's size, and each output is
compared with eager fp32 (worst frame PSNR). A candidate below the floor is rejected; of the rest the
fastest wins, but a lower precision must beat fp32 by :data:`MARGIN` (shared machines are noisy, and
a tie is not worth the lost quality).

The decision is stored in the engine cache (``<engines>/precision-<backend>/``, a ``decision.json``
beside the manifest), keyed by the model's name and architecture (not its weights: a MetaNet style
change makes a new net of the same architecture, and must not measure again), the backend and
library versions, the CPU and its relevant ISA flags. Deleting the entry makes the next run measure
again.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import logging
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..host import HostISA, detect_host
from .base import Backend, BackendOptions, Runner
from .cache import EngineCache, EngineKey, device_name

__all__ = ["FLOOR_DB", "FLOOR_OPTION", "LIVE_FLOOR_DB", "MARGIN", "AutoPrecisionBackend", "Candidate",
           "PrecisionDecision", "candidate_precisions",
           "decide_precision", "calibration_inputs", "int8_calibration"]

log = logging.getLogger(__name__)

FLOOR_DB = 40.0
#: the floor of a live run (``rtstyle live``): the frame rate matters more there, and 35 dB from fp32
#: does not show on a moving picture; set through ``BackendOptions.extra[FLOOR_OPTION]``
LIVE_FLOOR_DB = 35.0
FLOOR_OPTION = "auto_floor_db"
MARGIN = 0.05
DECISION_FILE = "decision.json"
_METHOD = "rtstyle.precision/2"  # bump when the way of measuring (or what a candidate is) changes: old decisions are then ignored
# /2: OpenVINO int8 keeps MatMul in fp32 and calibrates on the sample clip when given no calibration set

# what each backend accepts, per device type (fp32 first: the reference every candidate is compared with)
SUPPORTED: dict[str, dict[str, tuple[str, ...]]] = {
    "eager": {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "fp16", "bf16")},
    "compiled": {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "fp16", "bf16")},
    "onnx": {"cpu": ("fp32",), "cuda": ("fp32", "fp16")},
    "openvino": {"cpu": ("fp32", "bf16", "int8")},
    "tensorrt": {"cuda": ("fp32", "fp16", "bf16")},
}


@dataclass(frozen=True)
class Candidate:
    """One precision's outcome.

    Attributes:
        precision: ``fp32``, ``bf16``, ``fp16`` or ``int8``.
        status: ``chosen``, ``passed`` (met the floor, not the fastest), ``below floor``,
            ``not faster`` (met the floor, within :data:`MARGIN` of fp32), ``failed`` or ``skipped``.
        ms: median milliseconds per frame (measured candidates).
        psnr_db: worst-frame PSNR against eager fp32 (``inf``: identical).
        note: why it was skipped or failed.
    """

    precision: str
    status: str
    ms: float | None = None
    psnr_db: float | None = None
    note: str = ""


@dataclass(frozen=True)
class PrecisionDecision:
    """What ``precision="auto"`` became, and why.

    Attributes:
        precision: the chosen precision.
        reason: one line for reports, e.g. ``int8: 1.6x fp32, 41.2 dB on non-AMX AVX-512 host``.
        backend: the backend it applies to.
        host: :meth:`HostISA.describe` of the host it was decided on.
        host_kind: :attr:`HostISA.kind`.
        candidates: every precision considered, measured or skipped.
        size: ``(H, W)`` of the measurement frames (``None`` when nothing had to be measured).
        reference_ms: eager fp32 median milliseconds per frame on the same frames.
        floor_db: the PSNR floor applied.
        cached: whether this came from the engine cache instead of a measurement.
    """

    precision: str
    reason: str
    backend: str
    host: str
    host_kind: str
    candidates: tuple[Candidate, ...] = ()
    size: tuple[int, int] | None = None
    reference_ms: float | None = None
    floor_db: float = FLOOR_DB
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["candidates"] = [dataclasses.asdict(c) for c in self.candidates]
        for c in d["candidates"]:  # JSON has no inf
            if c["psnr_db"] is not None and not np.isfinite(c["psnr_db"]):
                c["psnr_db"] = "inf"
        d["size"] = list(self.size) if self.size else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], cached: bool = False) -> "PrecisionDecision":
        cands = tuple(Candidate(**{**c, "psnr_db": float(c["psnr_db"]) if c.get("psnr_db") is not None else None})
                      for c in d.get("candidates", ()))
        return cls(precision=d["precision"], reason=d["reason"], backend=d["backend"], host=d["host"],
                   host_kind=d["host_kind"], candidates=cands, size=tuple(d["size"]) if d.get("size") else None,
                   reference_ms=d.get("reference_ms"), floor_db=float(d.get("floor_db", FLOOR_DB)), cached=cached)


# --------------------------------------------------------------------------- candidates

def _int8_possible(model: nn.Module | None) -> str:
    """Why int8 cannot be built here ('' if it can)."""
    if importlib.util.find_spec("nncf") is None:
        return "int8 needs NNCF (pip install nncf)"
    from ..models._graph_runtime import RunsOnnxFile

    if isinstance(model, RunsOnnxFile):
        return "a foreign ONNX file runs as it is"
    return ""


def candidate_precisions(backend: str, device: str = "cpu", host: HostISA | None = None,
                         model: nn.Module | None = None) -> list[Candidate]:
    """The backend's precisions on ``device``: ``status="candidate"`` to measure, or ``"skipped"`` with a note.

    CPU pruning by ISA: bf16 needs AMX or AVX512_BF16, int8 needs VNNI or AMX-INT8 (and NNCF). A model
    that declares :class:`~rtstyle.models._abilities.AutoPrecisions` has the others skipped.
    """
    from ..models._abilities import auto_precisions_of

    dev = torch.device(device).type
    limited = auto_precisions_of(model) if model is not None else None
    supported = SUPPORTED.get(backend, {}).get(dev, ("fp32",))
    host = host or detect_host()
    out = []
    for p in supported:
        note = ""
        if dev == "cpu" and p == "bf16" and not host.native_bf16:
            note = "no AMX or AVX512_BF16: bf16 would be emulated"
        elif dev == "cpu" and p == "int8":
            note = "" if host.vnni else "no VNNI or AMX-INT8"
            note = note or _int8_possible(model)
        elif dev == "cuda" and p == "bf16" and not torch.cuda.is_bf16_supported():
            note = "this GPU has no bf16"
        if not note and limited is not None and p != "fp32" and p not in limited[0]:
            note = f"the model allows {', '.join(limited[0])} only: {limited[1]}"
        out.append(Candidate(p, "skipped" if note else "candidate", note=note))
    return out


# --------------------------------------------------------------------------- calibration frames

_SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"


def _sample_rgb(count: int, every: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(_SAMPLE))
    out: list[np.ndarray] = []
    try:
        i = 0
        while len(out) < count:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        cap.release()
    if not out:
        raise RuntimeError(f"no frames could be read from {_SAMPLE}")
    return out


def _to_input(rgb: np.ndarray, spec: Any) -> torch.Tensor:
    """uint8 RGB -> the model's input, through the one frame contract the Stylizer uses."""
    from ..contract import to_model_input

    return to_model_input(torch.from_numpy(np.ascontiguousarray(rgb)), spec)


def _to_uint8(y: torch.Tensor, spec: Any) -> np.ndarray:
    """A model output -> the uint8 image the user sees (PSNR is taken on these)."""
    from ..contract import from_model_output

    return from_model_output(y.detach().float().cpu(), spec).numpy()


def calibration_inputs(spec: Any, size: tuple[int, int], count: int = 4, every: int = 25) -> list[torch.Tensor]:
    """Frames of the bundled sample clip resized to ``size`` ``(H, W)``, in the model's input contract."""
    import cv2

    h, w = size
    return [_to_input(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA), spec) for f in _sample_rgb(count, every)]


@functools.lru_cache(maxsize=1)
def _sample_sha() -> str:
    return hashlib.sha256(_SAMPLE.read_bytes()).hexdigest()


def int8_calibration(spec: Any, multiple: int) -> Any:
    """The int8 engine's calibration set: 10 sample-clip frames at a fixed 320 px long side, so the engine
    (dynamic in H and W) is the same whatever frame size a run starts with. Lazy: decoding them cost a
    cached run more than the engine lookup itself."""
    from .openvino import LazyCalibration

    m = max(1, int(multiple))
    contract = (spec.color_order, tuple(spec.input_range), spec.mean, spec.std)

    def load() -> list[torch.Tensor]:
        h, w = _sample_rgb(1, 1)[0].shape[:2]
        s = 320 / max(h, w)
        size = (max(m, round(h * s / m) * m), max(m, round(w * s / m) * m))
        return calibration_inputs(spec, size, count=10, every=10)

    return LazyCalibration(f"sample.mp4:{_sample_sha()}|10 frames every 10|long side 320|multiple {m}|{contract}", load)


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


# --------------------------------------------------------------------------- decision

Measurement = dict[str, tuple[float, float]]  # precision -> (median ms per frame, worst-frame PSNR dB)


def _choose(cands: list[Candidate], measured: Measurement, floor_db: float, host: HostISA) -> tuple[str, str, list[Candidate]]:
    """Apply the floor and the margin to measured results; returns (precision, reason, candidates)."""
    where = f"on {host.describe().split(' (')[0]}"
    fp32_ms = measured.get("fp32", (float("nan"), float("inf")))[0]
    passing = {p: v for p, v in measured.items() if p == "fp32" or v[1] >= floor_db}
    best = min(passing, key=lambda p: passing[p][0])
    if best != "fp32" and "fp32" in measured and passing[best][0] > fp32_ms * (1 - MARGIN):
        best = "fp32"
    out = []
    for c in cands:
        if c.precision not in measured:
            out.append(c)
            continue
        ms, q = measured[c.precision]
        if c.precision == best:
            status = "chosen"
        elif c.precision not in passing:
            status = "below floor"
        elif ms > fp32_ms * (1 - MARGIN) and c.precision != "fp32":
            status = "not faster"
        else:
            status = "passed"
        out.append(dataclasses.replace(c, status=status, ms=ms, psnr_db=q))
    ms, q = measured[best]
    if best == "fp32":
        why = [f"{c.precision} {c.psnr_db:.1f} dB < {floor_db:g}" if c.status == "below floor" else
               f"{c.precision} {fp32_ms / c.ms:.2f}x fp32" if c.status == "not faster" else
               f"{c.precision} {c.note or c.status}" for c in out if c.precision != "fp32"]
        reason = f"fp32 {where}: " + ("; ".join(why) if why else "the only candidate")
    else:
        rejected = [f"{c.precision} {c.psnr_db:.1f} dB < {floor_db:g}" for c in out if c.status == "below floor"]
        reason = (f"{best}: {fp32_ms / ms:.2f}x fp32, {q:.1f} dB {where}"
                  + (f" ({'; '.join(rejected)})" if rejected else ""))
    return best, reason, out


def _arch_digest(model: nn.Module) -> str:
    """Names, shapes and dtypes of the state dict: the architecture, not the weights."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for k, v in model.state_dict().items():
        h.update(f"{k}|{tuple(v.shape)}|{v.dtype};".encode())
    return "arch:" + h.hexdigest()[:24]


@functools.lru_cache(maxsize=None)
def _versions(backend: str, precisions: tuple[str, ...]) -> str:
    parts = [f"torch-{torch.__version__}"]
    mods = {"openvino": "openvino", "onnx": "onnxruntime", "tensorrt": "torch_tensorrt"}
    if backend in mods and importlib.util.find_spec(mods[backend]) is not None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            parts.append(f"{mods[backend]}-{version(mods[backend])}")
        except PackageNotFoundError:
            pass
    if "int8" in precisions:
        from importlib.metadata import PackageNotFoundError, version

        try:
            parts.append(f"nncf-{version('nncf')}")
        except PackageNotFoundError:
            pass
    return "+".join(parts)


def decision_key(model: nn.Module, backend: str, device: str, host: HostISA, cands: Sequence[Candidate],
                 floor_db: float) -> EngineKey:
    """The cache key of a decision (see the module docstring for what it covers)."""
    spec = getattr(model, "spec", None)
    todo = [c.precision for c in cands if c.status == "candidate"]
    return EngineKey(
        model=str(getattr(spec, "name", None) or type(model).__name__),
        weights=_arch_digest(model),
        shapes="",
        precision="auto",
        backend=f"precision-{backend}",
        backend_version=_versions(backend, tuple(todo)),
        device=device_name(device),
        settings=tuple(sorted({"method": _METHOD, "floor_db": f"{floor_db:g}", "candidates": ",".join(todo),
                               "host_flags": ",".join(sorted(host.flags)),
                               "amx_permitted": str(host.amx_permitted)}.items())),
    )


def decide_precision(
    model: nn.Module,
    backend: str,
    example_inputs: tuple[torch.Tensor, ...],
    *,
    options: BackendOptions | None = None,
    host: HostISA | None = None,
    floor_db: float = FLOOR_DB,
    prepare: Callable[[str], Runner] | None = None,
    measure: Callable[[list[str]], Measurement] | None = None,
    frames: int = 4,
    runs: int = 2,
) -> PrecisionDecision:
    """Choose the precision for ``model`` on ``backend`` (cached in the engine cache).

    Args:
        model: eval-mode module with a ``spec``.
        backend: backend name (``openvino``, ``eager``, ...).
        example_inputs: one call's inputs; the measurement frames take the image's size, the style
            inputs are passed as they are.
        options: the backend options (device, cache folder); their precision is ignored.
        host: the host to decide for (default :func:`rtstyle.host.detect_host`).
        floor_db: the PSNR floor against eager fp32.
        prepare: ``prepare(precision) -> runner``, needed when something is measured
            (:class:`AutoPrecisionBackend` passes its own).
        measure: replaces the measurement (tests): ``measure(precisions) -> {precision: (ms, psnr_db)}``.
        frames / runs: measurement frames, and timed passes over them.
    """
    o = options or BackendOptions()
    host = host or detect_host()
    cands = candidate_precisions(backend, o.device, host, model)
    todo = [c.precision for c in cands if c.status == "candidate"]
    describe = host.describe()
    if todo == ["fp32"] or not todo:
        skipped = [f"{c.precision} skipped: {c.note}" for c in cands if c.status == "skipped"]
        reason = f"fp32 on {describe.split(' (')[0]}: " + ("; ".join(skipped) if skipped else "the backend's only precision")
        return PrecisionDecision("fp32", reason, backend, describe, host.kind,
                                 tuple(dataclasses.replace(c, status="chosen") if c.precision == "fp32" else c for c in cands),
                                 floor_db=floor_db)
    cache = EngineCache(o.cache_dir)
    key = decision_key(model, backend, o.device, host, cands, floor_db)
    hit = cache.get(key)
    if hit is not None:
        try:
            d = PrecisionDecision.from_dict(json.loads((hit / DECISION_FILE).read_text()), cached=True)
            log.info("precision auto for %s on %s: %s (cached)", key.model, backend, d.reason)
            return d
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable precision decision %s: %s", hit, e)
    x0 = example_inputs[0]
    size = (int(x0.shape[-2]), int(x0.shape[-1]))
    t0 = time.perf_counter()
    if measure is not None:
        measured, ref_ms = measure(todo), None
    else:
        measured, ref_ms, failed = _measure(model, example_inputs, todo, prepare, frames, runs, o.device)
        cands = [dataclasses.replace(c, status="failed", note=failed[c.precision]) if c.precision in failed else c
                 for c in cands]
    if "fp32" not in measured:
        raise RuntimeError(f"precision auto: {backend} fp32 could not be measured")
    best, reason, final = _choose(cands, measured, floor_db, host)
    d = PrecisionDecision(best, reason, backend, describe, host.kind, tuple(final), size, ref_ms, floor_db)
    log.info("precision auto for %s on %s: %s (measured in %.1f s)", key.model, backend, reason, time.perf_counter() - t0)

    def build(folder: Path) -> None:
        (folder / DECISION_FILE).write_text(json.dumps(d.to_dict(), indent=2) + "\n")

    cache.put(key, build)
    return d


def _measure(model: nn.Module, ex: tuple[torch.Tensor, ...], todo: list[str], prepare: Callable[[str], Runner] | None,
             frames: int, runs: int, device: str) -> tuple[Measurement, float | None, dict[str, str]]:
    """Time each precision round-robin on sample-clip frames and compare its outputs with eager fp32."""
    spec = model.spec  # type: ignore[attr-defined]
    size = (int(ex[0].shape[-2]), int(ex[0].shape[-1]))
    dev = torch.device(device)
    xs = [x.to(dev) for x in calibration_inputs(spec, size, count=frames)]
    style = tuple(t.to(dev) for t in ex[1:])
    if prepare is None:
        raise ValueError("decide_precision needs prepare() to build candidates")
    # the reference: the module itself in fp32 (a copy on the device when it lives elsewhere)
    ref: list[np.ndarray] = []
    ref_t: list[float] = []
    try:
        from .eager import EagerBackend

        ref_runner = EagerBackend(BackendOptions(device=device)).prepare(model, ex)
        for x in xs:
            t = time.perf_counter()
            y = ref_runner(x, *style)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            ref_t.append(time.perf_counter() - t)
            ref.append(_to_uint8(y, spec))
    except (NotImplementedError, RuntimeError, TypeError) as e:  # a module that runs on its backend only
        log.info("precision auto: %s does not run eagerly (%s); comparing with the backend's fp32", spec.name, e)
        ref, ref_t = [], []
    runners: dict[str, Runner] = {}
    failed: dict[str, str] = {}
    for p in todo:
        try:
            runners[p] = prepare(p)
        except Exception as e:  # noqa: BLE001 - a candidate that cannot be built is out, not fatal (fp32 is checked)
            if p == "fp32":
                raise
            failed[p] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            log.warning("precision auto: %s could not be built: %s", p, failed[p])
    times: dict[str, list[float]] = {p: [] for p in runners}
    quality: dict[str, float] = {}
    if not ref:
        ref = [_to_uint8(runners["fp32"](x, *style), spec) for x in xs]
    for p, r in runners.items():  # warm-up, and the quality check
        quality[p] = min(psnr_db(_to_uint8(r(x, *style), spec), y) for x, y in zip(xs, ref))
    for _ in range(max(1, runs)):
        for p, r in runners.items():  # round-robin: load changes on a shared machine hit every candidate alike
            for x in xs:
                t = time.perf_counter()
                r(x, *style)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                times[p].append(time.perf_counter() - t)
    measured = {p: (1000 * statistics.median(times[p]), quality[p]) for p in runners}
    return measured, (1000 * statistics.median(ref_t) if ref_t else None), failed


# --------------------------------------------------------------------------- the backend

class AutoPrecisionBackend(Backend):
    """A backend whose precision is decided per model by :func:`decide_precision`.

    ``create_backend(name, BackendOptions(precision="auto"))`` returns one. Each prepared runner
    carries its :class:`PrecisionDecision` in ``runner.precision_decision``. One backend instance
    per precision is kept, so engines compiled while measuring are reused.
    """

    def __init__(self, name: str, options: BackendOptions | None = None, host: HostISA | None = None) -> None:
        super().__init__(options)
        self.name = name
        self.host = host
        self._inner: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self._decisions: dict[EngineKey, PrecisionDecision] = {}
        self.inner("fp32")  # a missing dependency fails now, as for a plain backend

    def check_available(self) -> None:
        check = getattr(self.inner("fp32"), "check_available", None)
        if check is not None:
            check()

    def inner(self, precision: str, model: nn.Module | None = None) -> Backend:
        """The backend of ``name`` at ``precision`` (created once)."""
        from . import create_backend

        with self._lock:
            b = self._inner.get(precision)
            if b is None:
                extra = dict(self.options.extra)
                if precision == "int8" and "calibration" not in extra and model is not None:
                    extra["calibration"] = int8_calibration(model.spec, getattr(model.spec, "size_multiple", 1))  # type: ignore[attr-defined]
                opts = dataclasses.replace(self.options, precision=precision, extra=extra)
                b = self._inner[precision] = create_backend(self.name, opts)
            return b

    @property
    def floor_db(self) -> float:
        """The PSNR floor of this backend's decisions: ``extra[FLOOR_OPTION]``, else :data:`FLOOR_DB`."""
        floor = float(self.options.extra.get(FLOOR_OPTION, FLOOR_DB))
        if not 0 < floor < 100:
            raise ValueError(f"{FLOOR_OPTION} must be a PSNR in dB between 0 and 100, got {floor}")
        return floor

    def decide(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> PrecisionDecision:
        """The decision for ``model`` (remembered per cache key in this process)."""
        host = self.host or detect_host()
        floor = self.floor_db
        cands = candidate_precisions(self.name, self.options.device, host, model)
        if [c.precision for c in cands if c.status == "candidate"] in (["fp32"], []):
            # nothing to measure: no key to compute (a MetaNet style change prepares a new net each time)
            return decide_precision(model, self.name, example_inputs, options=self.options, host=host,
                                    floor_db=floor)
        key = decision_key(model, self.name, self.options.device, host, cands, floor)
        hit = self._decisions.get(key)
        if hit is not None:
            return hit
        d = decide_precision(model, self.name, example_inputs, options=self.options, host=host, floor_db=floor,
                             prepare=lambda p: self.inner(p, model).prepare(model, example_inputs))
        self._decisions[key] = d
        return d

    def prepare(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Runner:
        d = self.decide(model, example_inputs)
        runner = self.inner(d.precision, model).prepare(model, example_inputs)
        runner.precision_decision = d
        return runner

"""Stylizer: preprocess -> backend -> postprocess, holding the active style.

The active style is one immutable :class:`StyleState` (a prepared runner plus any style tensors)
behind a single reference. Preparing a state (loading weights, building an engine, encoding a
style image, warming up) happens off the hot path; activating it is one reference assignment,
so a swap always lands on a frame boundary and never tears a frame.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Union

import numpy as np
import torch
from torch import nn

from . import contract
from .backends import BackendOptions, create_backend
from .backends.base import Runner
from ._openmp import release_thread_pool
from .contract import FramePlan
from .frame import Frame
from .image import fit_image, read_image
from .models import ModelSpec, create_model
from .models._abilities import (BackendBound, EncodesStyleImage, HasControls, HasEncoderPrecision, HasSpec,
                                ParsesStyleVector, PerFrameInputs, Specialises, StyleImageSide,
                                StyleSideFollowsContent, TakesStyleVector, auto_backend_of)

__all__ = ["StyleState", "Stylizer", "ModelLike", "TemporalFilter", "resolve_device"]

log = logging.getLogger(__name__)

#: Smallest side frames are stylised at (enlarged to it, then shrunk back). Every registered family
#: runs at 12 px on the eager backend (VGG16 relu4_1 AdaIN and style-swap fail at 8); tests/test_data_safety.py.
MIN_SIDE = 16

ModelLike = Union[str, Path, nn.Module]


class TemporalFilter(Protocol):
    """Flicker reduction applied after stylisation (see :mod:`rtstyle.temporal`)."""

    def process(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """Given the input frame and its stylisation (RGB uint8, same size), return the output."""
        ...

    def reset(self) -> None:
        """Forget carried state (new style, scene cut, seek)."""
        ...


@dataclass(frozen=True)
class StyleState:
    """A prepared, ready-to-run style.

    Attributes:
        name: what the user asked for (registry name, path, or ``name+style image``).
        spec: the model's contract.
        runner: the backend's prepared callable.
        style_inputs: extra tensors passed after the image (empty for single-style nets).
        prepared_s: seconds spent preparing (load + build + warm-up).
        model: the module (a control change builds on it).
        style_source: the style image or style vector this state was prepared with, so a control
            change (brush size, alpha) keeps the style.
        frame_inputs: the model's per-frame style inputs hook (:class:`~rtstyle.models._abilities.PerFrameInputs`),
            or ``None`` when the style inputs are the same every frame.
    """

    name: str
    spec: ModelSpec
    runner: Runner
    style_inputs: tuple[torch.Tensor, ...] = ()
    prepared_s: float = 0.0
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    style_source: tuple[str, Any] | None = field(default=None, repr=False, compare=False)
    frame_inputs: Callable[[int, tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]] | None = field(
        default=None, repr=False, compare=False)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when a GPU is available, else the CPU; other names are checked.

    Raises:
        ValueError: CUDA asked for where there is none.
    """
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but no CUDA GPU is available (use --device cpu or auto)")
    return torch.device(name)


class _Fade:
    __slots__ = ("old", "total", "done")

    def __init__(self, old: StyleState, total: int) -> None:
        self.old, self.total, self.done = old, total, 0


def _image_key(img: np.ndarray | str | Path | None) -> str:
    if img is None:
        return ""
    if isinstance(img, (str, Path)):
        return str(Path(img).resolve())
    return hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest()[:16]


class _Preparer:
    """One background thread that prepares styles in order, returning futures.

    Not a ``ThreadPoolExecutor``: its workers are joined at interpreter exit, so a user who quits
    while a style is still being built (an OpenVINO compile, an int8 calibration) would wait for
    that build. This worker is a daemon thread; :meth:`shutdown` cancels what has not started.
    """

    def __init__(self) -> None:
        import queue

        self._jobs: "queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]" = queue.SimpleQueue()
        self._closed = False
        self._pending: list[Future[Any]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None  # started by the first job, as an executor's is
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, fn: Callable[[], Any]) -> "Future[Any]":
        fut: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the stylizer is closed")
            self._pending.append(fut)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rtstyle-prepare", daemon=True)
                self._thread.start()
        self._jobs.put((fut, fn))
        return fut

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fut, fn = item
            with self._lock:
                if fut in self._pending:
                    self._pending.remove(fut)
            if not fut.set_running_or_notify_cancel():
                continue
            self._idle.clear()
            try:
                fut.set_result(fn())
            except BaseException as e:  # handed to whoever waits on the future
                fut.set_exception(e)
            finally:
                self._idle.set()

    def shutdown(self, wait: bool = False, cancel_futures: bool = True) -> None:
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, []
            thread = self._thread
        if cancel_futures:
            for fut in pending:
                fut.cancel()
        self._jobs.put(None)
        if thread is not None:
            # an idle worker ends at once: join it, so a closed stylizer leaves no thread behind;
            # a build still running is not waited for unless asked
            thread.join(None if wait else (1.0 if self._idle.is_set() else 0.0))


class Stylizer:
    """Stylise RGB uint8 frames with a model on a backend.

    Args:
        model: registry name, checkpoint path or ``nn.Module`` with a ``spec``.
        backend: ``eager``, ``compiled``, ``onnx``, ``openvino``, ``tensorrt``, or ``auto`` (the
            fastest one installed for the device: on CUDA tensorrt > compiled > eager, see
            :func:`rtstyle.gpu.cuda_auto_backend`; on the CPU :func:`rtstyle.backends.resolve_backend`).
        device: ``cpu`` or ``cuda[:N]``; ``auto`` picks CUDA when present.
        precision: ``auto`` (default: the fastest precision the backend offers on this host that keeps
            >= 40 dB PSNR against eager fp32, measured once and cached; see
            :mod:`rtstyle.backends.precision`), or ``fp32``, ``bf16``, ``fp16``, ``int8`` (backend-dependent).
        size: internal resolution: the short side in pixels (``240`` runs a 640x480 stream at
            320x240 and upscales the result), or ``(width, height)``. ``None``: native size.
        scale: alternative to ``size``: a factor applied to the frame size.
        style_image: for models that take a style image (``spec.needs_style_image``).
        crossfade: default number of frames over which a style swap blends old into new.
        options: extra backend options (engine cache folder, shape range, ...).
        frame_size: expected (width, height) of the stream, so styles warm up at the right shape.
        temporal: a :class:`TemporalFilter` applied to each stylised frame at the internal
            resolution (flicker reduction); reset on every style swap.
        style_encoder: precision of the style encoder of models that encode style images with one
            (``encoder_precision``: MetaNet, AdaIN, linear, WCT): ``"auto"`` (bf16 on AMX / AVX512_BF16 hosts, else
            fp32), ``"fp32"``, ``"bf16"`` or ``"int8"`` (faster style changes, a slightly different
            result; needs OpenVINO + NNCF). ``None``: the model's own setting (``"auto"``).

    Thread safety: ``__call__`` is meant for one worker thread; ``set_style`` / ``prepare`` /
    ``activate`` may be called from any thread at any time.

    Prepared styles are cached (switching back is instant) up to ``max_cached_styles``, least
    recently used dropped first.
    """

    max_cached_styles: int = 32

    def __init__(
        self,
        model: ModelLike,
        *,
        backend: str = "eager",
        device: str = "cpu",
        precision: str = "auto",
        size: int | tuple[int, int] | None = None,
        scale: float | None = None,
        style_image: np.ndarray | str | Path | None = None,
        crossfade: int = 0,
        options: BackendOptions | None = None,
        frame_size: tuple[int, int] | None = None,
        temporal: "TemporalFilter | None" = None,
        style_encoder: str | None = None,
    ) -> None:
        if style_encoder not in (None, "auto", "fp32", "bf16", "int8"):
            raise ValueError(f"style_encoder must be auto, fp32, bf16 or int8, got {style_encoder!r}")
        if size is not None and scale is not None:
            raise ValueError("give either size or scale, not both")
        if scale is not None and not (0.05 <= scale <= 4.0):
            raise ValueError(f"scale must be within [0.05, 4], got {scale}")
        if isinstance(size, int) and size < 16:
            raise ValueError(f"size (short side) must be >= 16 pixels, got {size}")
        self.device_requested = str(device)
        self.device = resolve_device(device)
        device = str(self.device)
        from .backends import resolve_backend

        self.backend_requested = backend
        if backend == "auto" and self.device.type == "cuda":
            from .gpu import cuda_auto_backend

            backend = cuda_auto_backend(device)  # precision "auto" then measures fp16 against fp32
        backend = resolve_backend(backend, device)
        self.backend_name = backend
        self.precision = precision
        self.size = size
        self.scale = scale
        self.crossfade = int(crossfade)
        base = options or BackendOptions()
        self.options = BackendOptions(device=str(self.device), precision=precision, cache_dir=base.cache_dir,
                                      min_shape=base.min_shape, max_shape=base.max_shape, extra=dict(base.extra))
        self.backend = create_backend(backend, self.options)
        # models that run only on some backends (a foreign ONNX file) get their preferred one
        self._backends = {backend: self.backend}
        self._frame_size = frame_size
        self._swap: tuple[Future[StyleState], float] | None = None
        self.temporal = temporal
        self.style_encoder = style_encoder
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], StyleState] = OrderedDict()  # least recently used first
        self._runners: dict[tuple[Any, ...], tuple[nn.Module, Runner]] = {}
        self._executor = _Preparer()
        self._fade: _Fade | None = None
        self.swaps = 0
        self._state = self.prepare(model, style_image=style_image)

    # ------------------------------------------------------------------ style management
    @property
    def state(self) -> StyleState:
        return self._state

    @property
    def spec(self) -> ModelSpec:
        return self._state.spec

    @property
    def precision_decision(self) -> Any:
        """How ``precision="auto"`` was resolved for the active style (a
        :class:`~rtstyle.backends.precision.PrecisionDecision`); ``None`` when a precision was given."""
        return self._state.runner.precision_decision

    @property
    def style_name(self) -> str:
        return self._state.name

    def set_frame_size(self, width: int, height: int) -> None:
        """Tell the stylizer the stream's frame size so new styles warm up at the right shape."""
        self._frame_size = (int(width), int(height))

    def internal_size(self, width: int, height: int, multiple: int = 1) -> tuple[int, int]:
        """The (width, height) frames are resized to before inference (before padding)."""
        if isinstance(self.size, tuple):
            w, h = self.size
        elif isinstance(self.size, int):
            s = self.size / min(width, height)
            w, h = round(width * s), round(height * s)
        elif self.scale is not None:
            w, h = round(width * self.scale), round(height * self.scale)
        else:
            w, h = width, height
        w, h = max(multiple, int(w)), max(multiple, int(h))
        if min(w, h) < MIN_SIDE:
            # Tiny frames (a 1x1 or 3x5 image) are enlarged to a size every family can run (the
            # convolutions' reflection padding needs more pixels than that) and the result shrunk
            # back: the model sees the picture, not a border of replicated padding.
            s = MIN_SIDE / min(w, h)
            w, h = max(MIN_SIDE, round(w * s)), max(MIN_SIDE, round(h * s))
        return w, h

    def prepare(self, model: ModelLike, *, style_image: np.ndarray | str | Path | None = None,
                style_vector: Any = None, options: dict[str, Any] | None = None) -> StyleState:
        """Load, build and warm up a style without touching the active one (any thread).

        Args:
            model: registry name, checkpoint path or module.
            style_image: for models that take a style image (``spec.needs_style_image``, or
                models with a style bank that also accept a new image, such as MSG-Net). A model
                with ``specialise(style) -> nn.Module`` (MetaNet) turns it into a plain net, which
                the backend prepares and runs instead, with no style inputs.
            style_vector: for models whose style is a vector input (e.g. a blend of the styles of
                a conditional-instance-norm net, or a choice from MSG-Net's bank): weights, or text
                parsed by the model's ``parse_style_vector`` (``"3"``, ``"wave"``, ``"2:0.5,5:0.5"``).
            options: model controls passed to ``create_model`` when ``model`` is a name/path
                (e.g. ``{"brush": 384, "alpha": 0.7}``).

        Prepared states are cached by (model, options, style), so switching back is instant.
        """
        name = model if isinstance(model, (str, Path)) else model.spec.name if isinstance(model, HasSpec) else type(model).__name__
        opts = dict(options or {})
        if opts and not isinstance(model, (str, Path)):
            if not isinstance(model, HasControls):
                raise TypeError(f"{name} takes no controls {sorted(opts)}")
            model, opts = model.with_controls(**opts), {}
        vec_key = "" if style_vector is None else "vec:" + (
            style_vector if isinstance(style_vector, str)
            else ",".join(f"{float(v):.6g}" for v in np.ravel(np.asarray(style_vector, dtype=float))))
        opt_key = "" if not opts else "?" + "&".join(f"{k}={opts[k]}" for k in sorted(opts))
        key = ((str(name) + opt_key) if isinstance(model, (str, Path)) else f"module:{id(model)}",
               _image_key(style_image) + vec_key)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        module = create_model(model, **opts) if isinstance(model, (str, Path)) else model.eval()
        if not isinstance(module, HasSpec):
            raise TypeError(f"{name}: a model must carry a ModelSpec as .spec (see rtstyle.models._abilities.HasSpec)")
        if self.style_encoder is not None and isinstance(module, HasEncoderPrecision):
            module.encoder_precision = self.style_encoder
        spec: ModelSpec = module.spec
        style_inputs: tuple[torch.Tensor, ...] = ()
        # A model that specialises (MetaNet) turns a style image into a plain net: that net is what the
        # backend prepares and runs, with no style inputs; ``module`` stays the state's model so that a
        # later style image goes through it again.
        run_module: nn.Module = module
        if style_image is not None:
            if not isinstance(module, (Specialises, EncodesStyleImage)):
                raise ValueError(f"model {spec.name} has its style built in and takes no style image")
            if style_vector is not None:
                raise ValueError("give a style image or a style vector, not both")
            # a model that encodes styles small (MetaNet) gets them small: decoding, converting and
            # resizing a 1024 px image is a large part of a style change; one that encodes them at the
            # content's scale (linear.r31) gets them at the frames' internal size, within its bounds
            side = module.style_image_side if isinstance(module, StyleImageSide) else None
            if isinstance(module, StyleSideFollowsContent) and self._frame_size is not None:
                # (frames of unknown size: the model's cap, as before the stream's size is known)
                side = module.style_side_for(min(self.internal_size(*self._frame_size)))
            img = load_style_image(style_image, max_side=side or 1024)
            style_x = contract.to_model_input(torch.from_numpy(np.ascontiguousarray(img)), spec)
            if isinstance(module, Specialises):
                with torch.no_grad():  # not inference mode: the net's parameters may be traced or exported
                    run_module = module.specialise(style_x).eval()
            else:
                with torch.inference_mode():
                    style_inputs = tuple(t.to(self.device) for t in module.encode_style(style_x))
        elif spec.needs_style_image:
            raise ValueError(f"model {spec.name} needs a style image (--style IMG)")
        if style_image is None and (style_vector is not None or isinstance(module, TakesStyleVector)):
            if not isinstance(module, TakesStyleVector):
                raise ValueError(f"model {spec.name} takes no style vector")
            if isinstance(style_vector, str):
                if not isinstance(module, ParsesStyleVector):
                    raise ValueError(f"model {spec.name} cannot parse the style vector {style_vector!r}; give weights")
                style_vector = module.parse_style_vector(style_vector)
            vec = style_vector if style_vector is not None else module.default_style_vector()
            with torch.inference_mode():
                style_inputs = style_inputs + tuple(t.to(self.device) for t in module.encode_style_vector(vec))
        fw, fh = self._frame_size or (256, 256)
        iw, ih = self.internal_size(fw, fh)
        m = max(1, spec.size_multiple)
        example = torch.zeros(1, 3, -(-ih // m) * m, -(-iw // m) * m, device=self.device)
        example = example + (spec.input_range[0] + spec.input_range[1]) / 2
        bname = self.backend_name
        if isinstance(run_module, BackendBound) and bname not in run_module.supported_backends:
            bname = run_module.preferred_backend
        # what ``auto`` means for this net (MetaNet's per-style nets: eager, since an engine per style
        # change would cost a build per change on any device)
        hint = auto_backend_of(run_module)
        if hint and self.backend_requested == "auto":
            bname = hint
        if bname not in self._backends:
            log.info("%s runs on %s, not %s", spec.name, bname, self.backend_name)
            self._backends[bname] = create_backend(bname, self.options)
        # The same module on the same backend at the same size (a bank style or a new style image of
        # a model whose style is an input, e.g. MSG-Net): its runner takes any style inputs, so reuse
        # it instead of preparing (engine lookup, a warm-up run) again on every live switch.
        rkey = (id(run_module), bname, tuple(example.shape), tuple(t.shape for t in style_inputs))
        with self._lock:
            prev = self._runners.get(rkey) if style_inputs else None
        if prev is not None and prev[0] is run_module:
            runner = prev[1]
        else:
            runner = self._backends[bname].prepare(run_module, (example, *style_inputs))
            if style_inputs:  # a net without style inputs (MetaNet's generated nets) is never met again
                with self._lock:
                    self._runners[rkey] = (run_module, runner)  # the module is held: its id stays unique
        label = str(name) + opt_key + (f"+{Path(style_image).stem}" if isinstance(style_image, (str, Path)) else "")
        if style_vector is not None:
            label += f"[{vec_key[4:]}]"
        source = (("image", style_image) if style_image is not None else
                  ("vector", style_vector) if style_vector is not None else None)
        per_frame = module.frame_style_inputs if isinstance(module, PerFrameInputs) else None
        state = StyleState(label, spec, runner, style_inputs, time.perf_counter() - t0, module, source, per_frame)
        log.info("prepared %s on %s/%s in %.2f s", label, self.backend_name, self.device, state.prepared_s)
        with self._lock:
            self._cache[key] = state
            self._evict()
        return state

    def _evict(self) -> None:
        """Keep at most ``max_cached_styles`` prepared states (least recently used go first, never the
        active one), and the shared runners only while a kept state uses them: a long live session
        that goes through a folder of style images does not keep every generated net. Caller holds
        the lock."""
        active = getattr(self, "_state", None)
        while len(self._cache) > max(1, self.max_cached_styles):
            key, state = next(iter(self._cache.items()))
            if state is active:
                self._cache.move_to_end(key)
                key, state = next(iter(self._cache.items()))
            del self._cache[key]
            log.debug("dropped the prepared style %s (cache of %d)", state.name, self.max_cached_styles)
        used = {id(s.runner) for s in self._cache.values()}
        for rkey in [k for k, (_, r) in self._runners.items() if id(r) not in used]:
            del self._runners[rkey]

    def activate(self, state: StyleState, crossfade: int | None = None) -> None:
        """Make ``state`` the active style from the next frame on (atomic)."""
        n = self.crossfade if crossfade is None else int(crossfade)
        old = self._state
        self._fade = _Fade(old, n) if n > 0 and old is not state else None
        self._state = state
        self.swaps += 1
        if self.temporal is not None:
            self.temporal.reset()

    def set_style(
        self,
        model: ModelLike | None = None,
        *,
        style_image: np.ndarray | str | Path | None = None,
        style_vector: Any = None,
        options: dict[str, Any] | None = None,
        crossfade: int | None = None,
        wait: bool = False,
    ) -> "Future[StyleState]":
        """Prepare a style in the background and activate it when ready.

        Args:
            model: new model (``None``: keep the current model, e.g. to change the style image).
            style_image: new style image for style-image models.
            style_vector: new style vector (blend weights, or text the model parses) for
                vector-style models.
            options: model controls for a model given by name (see :meth:`prepare`).
            crossfade: frames to blend over (default: the stylizer's ``crossfade``).
            wait: block until the style is active.

        Returns:
            A future resolving to the activated :class:`StyleState`.
        """
        target: ModelLike = model if model is not None else (self._state.model or self._state.name)
        src = self._state.style_source
        if model is None and style_image is None and style_vector is None and src is not None:
            # a control change (options) on the running model keeps its style
            style_image, style_vector = (src[1], None) if src[0] == "image" else (None, src[1])

        def job() -> StyleState:
            try:
                st = self.prepare(target, style_image=style_image, style_vector=style_vector, options=options)
            finally:
                release_thread_pool()  # only the stylize thread keeps an OpenMP pool (rtstyle._openmp)
            self.activate(st, crossfade)
            return st

        fut = self._executor.submit(job)
        self._swap = (fut, time.perf_counter())
        if wait:
            fut.result()
        return fut

    def pending_swap(self) -> tuple["Future[StyleState]", float] | None:
        """The latest :meth:`set_style` request still being prepared, with its ``perf_counter`` time."""
        sw = self._swap
        return sw if sw is not None and not sw[0].done() else None

    def prefetch(self, model: ModelLike, *, style_image: np.ndarray | str | Path | None = None,
                 style_vector: Any = None, options: dict[str, Any] | None = None) -> "Future[StyleState]":
        """Prepare a style in the background without activating it (instant switch later)."""
        def job() -> StyleState:
            try:
                return self.prepare(model, style_image=style_image, style_vector=style_vector, options=options)
            finally:
                release_thread_pool()  # only the stylize thread keeps an OpenMP pool (rtstyle._openmp)

        return self._executor.submit(job)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ the hot path
    def plan(self, frame: Frame) -> FramePlan:
        """Fix what ``frame`` is stylised with: the active style, the crossfade step (advanced here,
        once per frame), the internal size and the temporal filter (see :mod:`rtstyle.contract`).

        The staged GPU path calls this when a frame enters, so a swap made while frames are in
        flight lands on the next frame that enters, never inside one.
        """
        state = self._state  # one read: a concurrent activate() affects the next frame only
        fade = self._fade
        h, w = frame.image.shape[:2]
        old, weight = None, 1.0
        if fade is not None and fade.done < fade.total:
            fade.done += 1
            old, weight = fade.old, fade.done / (fade.total + 1)
            if fade.done >= fade.total and self._fade is fade:
                self._fade = None
        return FramePlan(state, frame.index, self.internal_size(w, h), old, weight, self.temporal)

    def stylize(self, image: np.ndarray) -> np.ndarray:
        """Stylise one RGB uint8 ``(H, W, 3)`` image; returns the same shape."""
        return self(Frame(image, 0)).image

    def __call__(self, frame: Frame) -> Frame:
        """Stylise a frame. Records ``t_pre``/``t_infer``/``t_post`` (seconds) in ``frame.meta``."""
        t0 = time.perf_counter()
        plan = self.plan(frame)
        img = torch.from_numpy(np.ascontiguousarray(frame.image))  # shares the frame's memory
        if self.device.type == "cuda":
            img = img.pin_memory().to(self.device, non_blocking=True)  # upload uint8, convert on the GPU
        clock = [t0]
        out = contract.stylize(plan, img, clock)
        res = frame.with_image(np.ascontiguousarray(out.cpu().numpy()))
        t_pre, t_infer, t_post = (b - a for a, b in zip(clock, clock[1:]))
        res.meta.update(style=plan.style.name, t_pre=t_pre, t_infer=t_infer, t_post=t_post)
        return res


def load_style_image(img: np.ndarray | str | Path, max_side: int = 1024) -> np.ndarray:
    """A style image as RGB uint8: arrays are validated, files read; either is shrunk (area
    averaging) so that its longer side is at most ``max_side``."""
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"style image must be uint8 HxWx3 RGB, got {img.dtype} {img.shape}")
        return fit_image(img, max_side=max_side)

    p = Path(img)
    if not p.is_file():
        raise FileNotFoundError(f"style image not found: {p}")
    return read_image(p, max_side=max_side)

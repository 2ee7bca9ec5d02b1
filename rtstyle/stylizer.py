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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backends import BackendOptions, create_backend
from .backends.base import Runner
from ._openmp import release_thread_pool
from .frame import Frame
from .models import ModelSpec, create_model

__all__ = ["StyleState", "Stylizer", "ModelLike", "TemporalFilter"]

log = logging.getLogger(__name__)

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
    """

    name: str
    spec: ModelSpec
    runner: Runner
    style_inputs: tuple[torch.Tensor, ...] = ()
    prepared_s: float = 0.0
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    style_source: tuple[str, Any] | None = field(default=None, repr=False, compare=False)


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


class Stylizer:
    """Stylise RGB uint8 frames with a model on a backend.

    Args:
        model: registry name, checkpoint path or ``nn.Module`` with a ``spec``.
        backend: ``eager``, ``compiled``, ``onnx``, ``openvino``, ``tensorrt``, or ``auto`` (the
            fastest one installed for the device; see :func:`rtstyle.backends.resolve_backend`).
        device: ``cpu`` or ``cuda[:N]``; ``auto`` picks CUDA when present.
        precision: ``fp32``, ``bf16``, ``fp16`` (backend-dependent).
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
            (``encoder_precision``: MetaNet): ``"fp32"`` or ``"int8"`` (~3x faster style changes, a
            slightly different net; needs OpenVINO + NNCF). ``None``: the model's own setting (fp32).

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
        precision: str = "fp32",
        size: int | tuple[int, int] | None = None,
        scale: float | None = None,
        style_image: np.ndarray | str | Path | None = None,
        crossfade: int = 0,
        options: BackendOptions | None = None,
        frame_size: tuple[int, int] | None = None,
        temporal: "TemporalFilter | None" = None,
        style_encoder: str | None = None,
    ) -> None:
        if style_encoder not in (None, "fp32", "int8"):
            raise ValueError(f"style_encoder must be fp32 or int8, got {style_encoder!r}")
        if size is not None and scale is not None:
            raise ValueError("give either size or scale, not both")
        if scale is not None and not (0.05 <= scale <= 4.0):
            raise ValueError(f"scale must be within [0.05, 4], got {scale}")
        if isinstance(size, int) and size < 16:
            raise ValueError(f"size (short side) must be >= 16 pixels, got {size}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but no CUDA GPU is available")
        from .backends import resolve_backend

        self.backend_requested = backend
        backend = resolve_backend(backend, device)
        self.backend_name = backend
        self.device = torch.device(device)
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
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtstyle-prepare")
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
        return max(multiple, int(w)), max(multiple, int(h))

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
        name = model if isinstance(model, (str, Path)) else getattr(getattr(model, "spec", None), "name", type(model).__name__)
        opts = dict(options or {})
        if opts and not isinstance(model, (str, Path)):
            with_controls = getattr(model, "with_controls", None)
            if with_controls is None:
                raise TypeError(f"{name} takes no controls {sorted(opts)}")
            model, opts = with_controls(**opts), {}
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
        if self.style_encoder is not None and hasattr(module, "encoder_precision"):
            module.encoder_precision = self.style_encoder
        spec: ModelSpec = module.spec  # type: ignore[assignment]
        style_inputs: tuple[torch.Tensor, ...] = ()
        encode = getattr(module, "encode_style", None)
        # A model with ``specialise(style) -> nn.Module`` (MetaNet) turns a style image into a plain net:
        # that net is what the backend prepares and runs, with no style inputs; ``module`` stays the
        # state's model so that a later style image goes through it again.
        specialise = getattr(module, "specialise", None)
        run_module = module
        if style_image is not None:
            if encode is None and specialise is None:
                raise ValueError(f"model {spec.name} has its style built in and takes no style image")
            if style_vector is not None:
                raise ValueError("give a style image or a style vector, not both")
            # a model that encodes styles small (MetaNet: 384 px) gets them small: decoding, converting
            # and resizing a 1024 px image cost 11-29 ms of a style change (measured)
            img = load_style_image(style_image, max_side=getattr(module, "style_image_side", None) or 1024)
            if specialise is not None:
                with torch.no_grad():  # not inference mode: the net's parameters may be traced or exported
                    run_module = specialise(_to_model_input(img, spec, torch.device("cpu"))).eval()
            else:
                with torch.inference_mode():
                    style_inputs = tuple(t.to(self.device) for t in encode(_to_model_input(img, spec, torch.device("cpu"))))
        elif spec.needs_style_image:
            raise ValueError(f"model {spec.name} needs a style image (--style IMG)")
        if style_image is None and (style_vector is not None or hasattr(module, "default_style_vector")):
            enc_vec = getattr(module, "encode_style_vector", None)
            if enc_vec is None:
                raise ValueError(f"model {spec.name} takes no style vector")
            if isinstance(style_vector, str):
                parse = getattr(module, "parse_style_vector", None)
                if parse is None:
                    raise ValueError(f"model {spec.name} cannot parse the style vector {style_vector!r}; give weights")
                style_vector = parse(style_vector)
            vec = style_vector if style_vector is not None else module.default_style_vector()
            with torch.inference_mode():
                style_inputs = style_inputs + tuple(t.to(self.device) for t in enc_vec(vec))
        fw, fh = self._frame_size or (256, 256)
        iw, ih = self.internal_size(fw, fh)
        m = max(1, spec.size_multiple)
        example = torch.zeros(1, 3, -(-ih // m) * m, -(-iw // m) * m, device=self.device)
        example = example + (spec.input_range[0] + spec.input_range[1]) / 2
        ok = getattr(run_module, "supported_backends", None)
        bname = self.backend_name if ok is None or self.backend_name in ok else run_module.preferred_backend
        cpu_auto = getattr(run_module, "auto_backend", None)  # what ``auto`` means for this net on the CPU
        if cpu_auto and self.backend_requested == "auto" and self.device.type == "cpu":
            bname = cpu_auto
        if bname not in self._backends:
            log.info("%s runs on %s, not %s", spec.name, bname, self.backend_name)
            self._backends[bname] = create_backend(bname, self.options)
        # The same module on the same backend at the same size (a bank style or a new style image of
        # a model whose style is an input, e.g. MSG-Net): its runner takes any style inputs, so reuse
        # it instead of preparing (engine lookup, a warm-up run) again: ~40-60 ms per live switch.
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
        state = StyleState(label, spec, runner, style_inputs, time.perf_counter() - t0, module, source)
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
    def _run(self, state: StyleState, img: np.ndarray, index: int = 0) -> np.ndarray:
        spec = state.spec
        style_inputs = state.style_inputs
        per_frame = getattr(state.model, "frame_style_inputs", None)
        if per_frame is not None and style_inputs:  # e.g. an animated region mask
            style_inputs = per_frame(index, style_inputs)
        h, w = img.shape[:2]
        x = _to_model_input(img, spec, self.device)
        m = max(1, spec.size_multiple)
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        y = state.runner(x, *style_inputs)
        y = y[..., :h, :w]
        return _from_model_output(y, spec)

    def stylize(self, image: np.ndarray) -> np.ndarray:
        """Stylise one RGB uint8 ``(H, W, 3)`` image; returns the same shape."""
        return self(Frame(image, 0)).image

    def __call__(self, frame: Frame) -> Frame:
        """Stylise a frame. Records ``t_pre``/``t_infer``/``t_post`` (seconds) in ``frame.meta``."""
        state = self._state  # one read: a concurrent activate() affects the next frame only
        fade = self._fade
        t0 = time.perf_counter()
        src = frame.image
        h, w = src.shape[:2]
        iw, ih = self.internal_size(w, h)
        if (iw, ih) != (w, h):
            import cv2

            small = cv2.resize(src, (iw, ih), interpolation=cv2.INTER_AREA if iw < w else cv2.INTER_LINEAR)
        else:
            small = src
        t1 = time.perf_counter()
        out = self._run(state, small, frame.index)
        if fade is not None and fade.done < fade.total:
            fade.done += 1
            a = fade.done / (fade.total + 1)
            old = self._run(fade.old, small, frame.index)
            out = (out.astype(np.float32) * a + old.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8)
            if fade.done >= fade.total:
                self._fade = None
        if self.temporal is not None:
            out = self.temporal.process(small, out)
        t2 = time.perf_counter()
        if out.shape[:2] != (h, w):
            import cv2

            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        t3 = time.perf_counter()
        res = frame.with_image(np.ascontiguousarray(out))
        res.meta.update(style=state.name, t_pre=t1 - t0, t_infer=t2 - t1, t_post=t3 - t2)
        return res


def load_style_image(img: np.ndarray | str | Path, max_side: int = 1024) -> np.ndarray:
    """A style image as RGB uint8: arrays are validated, files read; either is shrunk (area
    averaging) so that its longer side is at most ``max_side``."""
    from .training.data import fit_image, load_rgb

    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"style image must be uint8 HxWx3 RGB, got {img.dtype} {img.shape}")
        return fit_image(img, max_side=max_side)

    p = Path(img)
    if not p.is_file():
        raise FileNotFoundError(f"style image not found: {p}")
    return load_rgb(p, max_side=max_side)


def _to_model_input(img: np.ndarray, spec: ModelSpec, device: torch.device) -> torch.Tensor:
    """uint8 HWC RGB -> float NCHW in the spec's input range/normalisation (on ``device``)."""
    t = torch.from_numpy(np.ascontiguousarray(img))
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)  # upload uint8, convert on the GPU
    x = t.permute(2, 0, 1).unsqueeze(0).float()
    if spec.color_order == "BGR":
        x = x.flip(1)
    lo, hi = spec.input_range
    if (lo, hi) != (0.0, 255.0):
        x = x * ((hi - lo) / 255.0) + lo
    if spec.mean is not None:
        x = (x - torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)) / torch.tensor(
            spec.std or (1.0, 1.0, 1.0), device=x.device).view(1, 3, 1, 1)
    return x.contiguous()


def _from_model_output(y: torch.Tensor, spec: ModelSpec) -> np.ndarray:
    """float NCHW in the spec's output range -> uint8 HWC RGB on the host."""
    lo, hi = spec.output_range
    if spec.mean is not None and spec.extra.get("output_normalised", False):
        y = y * torch.tensor(spec.std, device=y.device).view(1, 3, 1, 1) + torch.tensor(spec.mean, device=y.device).view(1, 3, 1, 1)
    if (lo, hi) != (0.0, 255.0):
        y = (y - lo) * (255.0 / (hi - lo))
    if spec.color_order == "BGR":
        y = y.flip(1)
    y = y.clamp(0.0, 255.0).add(0.5).to(torch.uint8)  # out of place: y may be an inference tensor
    return y[0].permute(1, 2, 0).contiguous().cpu().numpy()

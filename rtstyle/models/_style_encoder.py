"""A frozen style encoder (VGG up to some layer + statistics) run on the fastest CPU runtime at hand.

A new style image goes through a frozen VGG once per style change (MetaNet's mean/std features,
AdaIN's relu4_1 statistics). That pass is the largest part of the switch latency, and it runs off
the hot path with no backend of its own. On the CPU OpenVINO runs it faster than eager PyTorch with
the same output (README, "MetaNet" and "AdaIN"; ``tools/eval_style_encoder.py``), so
:class:`StyleEncoder` has the module converted once (OpenVINO's PyTorch frontend, dynamic height and
width, one compiled model per encoder) and falls back to eager when OpenVINO is missing, the module
lives on a GPU, conversion fails, or no graph runtime is registered. The conversion, the engine
cache entry and the compiled model come from the graph runtime (:mod:`rtstyle.models._graph_runtime`,
provided by :mod:`rtstyle.backends.graph_file` once ``rtstyle.backends`` is imported, as the Stylizer
and the CLI do): this module only decides when to use them.

The conversion happens on the first call ever for a given encoder (its IR is then kept in the engine
cache); later processes load the IR and compile it, with the first style, which is prepared before
the stream starts; later style changes only pay the inference.

``precision="auto"`` (the default) is bf16 where the host has bf16 in hardware, AMX-BF16 or AVX512_BF16
(:attr:`rtstyle.host.HostISA.native_bf16`), and fp32 elsewhere: the IR stays f32 and bf16 is OpenVINO's
compile-time inference precision. On a 2-vCPU AMX Xeon the relu3_1 encoder of ``linear.r31`` ran 3.2x
faster in bf16 on a 512 px painting (57 vs 182 ms) with its features 0.40% (relative mean absolute) from
f32's; on a 2-vCPU AMD EPYC with AVX512_BF16 and no AMX, 1.9-2.0x at 256-512 px (23 vs 47 ms at 256)
with its features 0.66-1.04% from f32's (``docs/arbitrary.md``). Without either, bf16 would be
emulated, so auto stays fp32. ``auto``
checks its bf16 model once, on the first image, against the f32 model of the same IR and keeps f32
when they differ by more than :data:`BF16_TOLERANCE`; an explicit ``"bf16"`` is taken as asked (OpenVINO
itself runs f32 where the CPU has no bf16, and :attr:`StyleEncoder.used` says what ran).

``precision="int8"`` quantises the converted model with NNCF (post-training, the first convolution kept
in f32, MIXED preset), calibrated on frames of the sample clip bundled with the package
(:func:`sample_frames`), so the same int8 model is built on every machine without any data from the
user: the live mode's choice, where the style change latency matters more than the small shift of
the features it costs (``docs/metanet_encoder.json``, ``tools/eval_style_encoder.py``).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..host import detect_host
from ..image import to_tensor
from ._graph_runtime import BackendUnavailableError, GraphCall, graph_runtime, has_graph_runtime

__all__ = ["BF16_TOLERANCE", "PRECISIONS", "StyleEncoder", "int8_available", "resolve_precision", "sample_frames"]

log = logging.getLogger(__name__)
PRECISIONS = ("auto", "fp32", "bf16", "int8")
# largest relative mean absolute difference of ``auto``'s bf16 output from f32 on the first image
BF16_TOLERANCE = 0.01
_SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"


def int8_available() -> bool:
    """Whether OpenVINO and NNCF (needed for ``precision="int8"``) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


def resolve_precision(precision: str) -> str:
    """``auto`` -> ``bf16`` on a host with bf16 in hardware (AMX-BF16 or AVX512_BF16), else ``fp32``;
    other precisions unchanged."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if detect_host().native_bf16 else "fp32"
    return precision


def _relative_error(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).mean() / max(float(np.abs(ref).mean()), 1e-12))


def sample_frames(long_side: int, every: int = 10, video: Path | None = None) -> list[torch.Tensor]:
    """Frames of the bundled sample clip (every ``every``-th) as ``(1, 3, H, W)`` RGB in [0, 1] with the
    longer side ``long_side``: calibration data that exists on every installation."""
    import cv2

    path = video or _SAMPLE
    cap = cv2.VideoCapture(str(path))
    out: list[torch.Tensor] = []
    try:
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                h, w = bgr.shape[:2]
                s = long_side / max(h, w)
                size = (max(16, round(w * s)), max(16, round(h * s)))
                rgb = cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
                out.append(to_tensor(rgb))
            i += 1
    finally:
        cap.release()
    if not out:
        raise RuntimeError(f"no frames could be read from {path}")
    return out


class StyleEncoder:
    """``encoder(img) -> tensor``: ``module(img)`` on OpenVINO (CPU) when available, else eager.

    Args:
        module: frozen eval-mode ``nn.Module`` taking one ``(1, 3, H, W)`` float image and returning
            one tensor.
        runtime: ``"auto"`` (OpenVINO on CPU if installed and a graph runtime is registered, else eager),
            ``"openvino"`` or ``"eager"``.
        name: for log messages; with ``version``, part of the key of the converted model in the
            engine cache (``engines/`` or ``$RTSTYLE_ENGINES``, see :mod:`rtstyle.backends.cache`).
        precision: ``"auto"`` (bf16 on hosts with AMX or AVX512_BF16, else fp32; see the module docs), ``"fp32"``,
            ``"bf16"``, or ``"int8"`` (OpenVINO + NNCF; without them, or off the CPU, the encoder runs
            fp32 and says so in the log and in :attr:`used`).

    Attributes:
        used: what runs: ``"pending"`` (before the first call), ``"eager"``, ``"openvino"`` (f32),
            ``"openvino-bf16"`` or ``"openvino-int8"``.
        calibration: for int8, a function returning the calibration inputs (default: 10 frames of the
            bundled sample clip at a longer side of 192 px, :func:`sample_frames`).
    """

    def __init__(self, module: nn.Module, runtime: str = "auto", name: str = "style encoder", version: int = 1,
                 precision: str = "auto", calibration: Callable[[], list[torch.Tensor]] | None = None) -> None:
        if runtime not in ("auto", "openvino", "eager"):
            raise ValueError(f"runtime must be auto, openvino or eager, got {runtime!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if precision in ("int8", "bf16") and runtime == "eager":
            raise ValueError(f"a {precision} style encoder runs on OpenVINO, not eager")
        self.module = module.eval()
        self.runtime = runtime
        self.name = name
        self.precision = precision
        self.calibration = calibration
        self.version = version  # part of the cached IR's key: bump when ``module``'s computation changes
        self._compiled: GraphCall | None = None
        self._tried = runtime == "eager"
        self._lock = threading.Lock()
        self.used = "eager" if runtime == "eager" else "pending"

    def __deepcopy__(self, memo: dict[int, Any]) -> "StyleEncoder":
        # A copied model (backends copy models they modify) gets its own encoder, compiled on first
        # use. The module may be the one being copied (the encoder is cached in its __dict__): take
        # its copy from ``memo`` without touching it.
        import copy

        new = StyleEncoder.__new__(StyleEncoder)
        memo[id(self)] = new
        state = self.__getstate__()
        state["module"] = copy.deepcopy(self.module, memo)
        new.__setstate__(state)
        return new

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__, _compiled=None, _tried=self.runtime == "eager")
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _device(self) -> torch.device:
        p = next(self.module.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _compile(self, example: torch.Tensor) -> None:
        self._tried = True
        if self._device().type != "cpu":
            self.used = "eager"
            return
        if not has_graph_runtime():
            if self.runtime == "openvino":
                graph_runtime()  # raises: says what to import
            # int8 or bf16 was asked for and is not given: say so louder than for the default
            log.log(logging.WARNING if self.precision in ("int8", "bf16") else logging.INFO,
                    "%s runs eager: no graph runtime is registered (import rtstyle.backends)", self.name)
            self.used = "eager"
            return
        runtime = graph_runtime()
        if not runtime.can_compile_module():
            if self.runtime == "openvino":
                raise BackendUnavailableError(f"{self.name}: runtime 'openvino' needs openvino: "
                                              "pip install 'rtstyle[openvino]'")
            self.used = "eager"
            return
        precision = resolve_precision(self.precision)
        calibration = None
        if precision == "int8":
            calibration = self.calibration or (lambda: sample_frames(192))
        try:
            # converted once (the IR is kept in the engine cache, keyed by the weights), then compiled
            self._compiled, ran = runtime.compile_module(self.module, example, name=self.name, version=self.version,
                                                         calibration=calibration, precision=precision)
            if ran == "bf16" and self.precision == "auto":
                ran = self._check_bf16(runtime, example)
            self.used = "openvino" if ran == "fp32" else f"openvino-{ran}"
            log.info("%s runs on OpenVINO (%s)", self.name, ran)
        except Exception as e:  # noqa: BLE001 - any conversion failure falls back to the reference path
            if self.runtime == "openvino":
                raise
            log.warning("%s: OpenVINO conversion failed (%s: %s); running it eager", self.name, type(e).__name__, e)
            self.used = "eager"

    def _check_bf16(self, runtime: Any, example: torch.Tensor) -> str:
        """``auto`` chose bf16: keep it if its output on ``example`` (the first style image) is within
        :data:`BF16_TOLERANCE` of the f32 model's, else switch to f32. Returns what is kept."""
        assert self._compiled is not None
        x = {0: example.contiguous().numpy()}
        fp32, _ = runtime.compile_module(self.module, example, name=self.name, version=self.version,
                                         calibration=None, precision="fp32")
        err = _relative_error(np.asarray(self._compiled(x), np.float32), np.asarray(fp32(x), np.float32))
        if np.isfinite(err) and err <= BF16_TOLERANCE:
            log.info("%s: bf16 is %.2f%% from f32 on the first image; running bf16", self.name, 100 * err)
            return "bf16"
        log.warning("%s: bf16 is %.2f%% from f32 on the first image (over %.0f%%); running f32",
                    self.name, 100 * err, 100 * BF16_TOLERANCE)
        self._compiled = fp32
        return "fp32"

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if img.dim() != 4 or img.shape[0] != 1:
            raise ValueError(f"style encoder takes one (1, 3, H, W) image, got {tuple(img.shape)}")
        with self._lock:  # one infer request; style changes are rare and serialised anyway
            if not self._tried:
                self._compile(img.float().cpu())
            if self._compiled is not None:
                x = img.detach().to("cpu", torch.float32).contiguous().numpy()
                out = torch.from_numpy(np.array(self._compiled({0: x}), dtype=np.float32, copy=True))
                if self.used == "openvino" or bool(torch.isfinite(out).all()):
                    return out
                # quantised or bf16 statistics can leave the domain of a square root: never hand on a NaN
                log.warning("%s: the %s model gave non-finite values for this image; computing it in fp32",
                            self.name, self.used.split("-")[-1])
        with torch.no_grad():
            return self.module(img.to(self._device()))


def style_encoder_for(owner: Any, attr: str, build: Callable[[], nn.Module], runtime: str, name: str,
                      precision: str = "auto", calibration: Callable[[], list[torch.Tensor]] | None = None
                      ) -> StyleEncoder:
    """The :class:`StyleEncoder` cached on ``owner.__dict__`` under ``attr`` (+ the precision when not
    ``auto``), built by ``build`` on first use. With ``runtime="eager"`` the precision is moot (bf16 and
    int8 are OpenVINO's): the eager encoder is returned."""
    if runtime == "eager":
        precision = "auto"
    if precision != "auto":
        attr = f"{attr}_{precision}"
    enc = owner.__dict__.get(attr)
    if enc is None or enc.runtime != runtime:
        enc = owner.__dict__[attr] = StyleEncoder(build(), runtime, name, precision=precision, calibration=calibration)
    return enc

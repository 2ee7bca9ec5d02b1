"""A frozen style encoder (VGG up to some layer + statistics) run on the fastest CPU runtime at hand.

A new style image goes through a frozen VGG once per style change (MetaNet's mean/std features,
AdaIN's relu4_1 statistics). That pass is the largest part of the switch latency, and it runs off
the hot path with no backend of its own. On the CPU, OpenVINO runs it about 1.7x faster than eager
PyTorch (VGG16 to relu4_3 at 256x202 on the 2-core dev box: 94 ms vs 163 ms, same output to 2e-7
relative; bf16 was *slower* there, 190 ms, without AMX), so :class:`StyleEncoder` converts the module
once (OpenVINO's PyTorch frontend, dynamic height/width, one compiled model per encoder) and
falls back to eager when OpenVINO is missing, the module lives on a GPU, or conversion fails.

The conversion (2–5 s measured) happens on the first call ever for a given encoder (its IR is then kept in the
engine cache); later processes load the IR and compile it (a fraction of a second), with the first
style, which is prepared before the stream starts; later style changes only pay the inference.

``precision="int8"`` quantises the converted model with NNCF (post-training, the first convolution kept
in f32, MIXED preset), calibrated on frames of the sample clip bundled with the package
(:func:`sample_frames`), so the same int8 model is built on every machine without any data from the
user. On the 2-core dev box it runs MetaNet's VGG16 pass at 192 px in ~16 ms instead of ~54 ms; a
painting's features move by a median of 5.9 (normalised units) where two paintings lie >= 30.5 apart,
and the generated nets' outputs by an RMS of ~4.5 (of 255) where two styles differ by >= 22
(``docs/metanet_encoder.json``, ``tools/eval_style_encoder.py``): the live
mode's choice, where the style change latency matters more than that.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

__all__ = ["PRECISIONS", "StyleEncoder", "int8_available", "sample_frames"]

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "int8")
_SAMPLE = Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"


def int8_available() -> bool:
    """Whether OpenVINO and NNCF (needed for ``precision="int8"``) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


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
                out.append(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)
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
        runtime: ``"auto"`` (OpenVINO on CPU if installed, else eager), ``"openvino"`` or ``"eager"``.
        name: for log messages; with ``version``, part of the key of the converted model in the
            engine cache (``engines/`` or ``$RTSTYLE_ENGINES``, see :mod:`rtstyle.backends.cache`).
        precision: ``"fp32"``, or ``"int8"`` (OpenVINO + NNCF; without them, or off the CPU, the
            encoder runs fp32 and says so in the log and in :attr:`used`).
        calibration: for int8, a function returning the calibration inputs (default: 10 frames of the
            bundled sample clip at a longer side of 192 px, :func:`sample_frames`).
    """

    def __init__(self, module: nn.Module, runtime: str = "auto", name: str = "style encoder", version: int = 1,
                 precision: str = "fp32", calibration: Callable[[], list[torch.Tensor]] | None = None) -> None:
        if runtime not in ("auto", "openvino", "eager"):
            raise ValueError(f"runtime must be auto, openvino or eager, got {runtime!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if precision == "int8" and runtime == "eager":
            raise ValueError("an int8 style encoder runs on OpenVINO, not eager")
        self.module = module.eval()
        self.runtime = runtime
        self.name = name
        self.precision = precision
        self.calibration = calibration
        self.version = version  # part of the cached IR's key: bump when ``module``'s computation changes
        self._compiled: Any = None
        self._request: Any = None
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
        state = dict(self.__dict__, _compiled=None, _request=None, _tried=self.runtime == "eager")
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
        try:
            import openvino as ov
        except ImportError:
            if self.runtime == "openvino":
                raise
            self.used = "eager"
            return
        nncf = None
        if self.precision == "int8":
            try:
                import nncf
            except ImportError:
                log.warning("%s: int8 needs NNCF (pip install nncf); running it fp32", self.name)
        try:
            from ..backends.cache import EngineCache, engine_key

            # The converted IR is kept in the engine cache (keyed by the weights): converting costs
            # 2-5 s (tracing); a later process loads and compiles the cached IR in ~0.6 s, so a
            # one-shot job (one photo, one video with one style) does not pay the conversion again.
            settings: dict[str, Any] = {"encoder": self.name, "version": self.version}
            calib: list[np.ndarray] = []
            if nncf is not None:
                calib = [t.detach().float().cpu().numpy() for t in
                         (self.calibration() if self.calibration is not None else sample_frames(192))]
                digest = hashlib.sha256(b"".join(c.tobytes() for c in calib)).hexdigest()[:16]
                settings.update(calibration=digest, nncf=nncf.__version__)
            key = engine_key(self.module, shapes=[(1, 3, None, None)], precision="int8" if nncf else "fp32",
                             backend="openvino-style-encoder", backend_version=f"openvino-{ov.get_version()}",
                             device="any", settings=settings)

            def build(folder: Path) -> None:
                with torch.no_grad():
                    m = ov.convert_model(self.module, example_input=example, input=[ov.PartialShape([1, 3, -1, -1])])
                if nncf is not None:
                    m = _quantize(nncf, m, calib)
                ov.save_model(m, str(folder / "model.xml"), compress_to_fp16=False)

            ir = EngineCache().put(key, build) / "model.xml"
            core = ov.Core()
            # f32 explicitly: on CPUs with AVX-512 BF16 OpenVINO defaults to bf16, which without AMX
            # measured 2x slower here (190 vs 94 ms) and rounds the statistics
            self._compiled = core.compile_model(core.read_model(str(ir)), "CPU",
                                                {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
            self._request = self._compiled.create_infer_request()
            self.used = "openvino-int8" if nncf is not None else "openvino"
            log.info("%s runs on OpenVINO (%s)", self.name, "int8" if nncf is not None else "fp32")
        except Exception as e:  # noqa: BLE001 - any conversion failure falls back to the reference path
            if self.runtime == "openvino":
                raise
            log.warning("%s: OpenVINO conversion failed (%s: %s); running it eager", self.name, type(e).__name__, e)
            self.used = "eager"

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if img.dim() != 4 or img.shape[0] != 1:
            raise ValueError(f"style encoder takes one (1, 3, H, W) image, got {tuple(img.shape)}")
        with self._lock:  # one infer request; style changes are rare and serialised anyway
            if not self._tried:
                self._compile(img.float().cpu())
            if self._compiled is not None:
                x = img.detach().to("cpu", torch.float32).contiguous().numpy()
                out = torch.from_numpy(np.array(self._request.infer({0: x}, share_inputs=True)[0], dtype=np.float32, copy=True))
                if self.used != "openvino-int8" or bool(torch.isfinite(out).all()):
                    return out
                # quantised statistics can leave the domain of a square root: never hand on a NaN
                log.warning("%s: the int8 model gave non-finite values for this image; computing it in fp32", self.name)
        with torch.no_grad():
            return self.module(img.to(self._device()))


def _quantize(nncf: Any, m: Any, calib: list[np.ndarray]) -> Any:
    """Post-training int8 of a converted encoder: every convolution but the first (which sees the raw
    image), MIXED preset (asymmetric activations)."""
    convs = [op.get_friendly_name() for op in m.get_ordered_ops() if op.get_type_name() == "Convolution"]
    from ..backends.openvino import quiet_nncf

    keep = nncf.IgnoredScope(names=convs[:1], validate=False)
    with quiet_nncf():
        return nncf.quantize(m, nncf.Dataset(calib), subset_size=len(calib), preset=nncf.QuantizationPreset.MIXED,
                             ignored_scope=keep)


def style_encoder_for(owner: Any, attr: str, build: Callable[[], nn.Module], runtime: str, name: str,
                      precision: str = "fp32", calibration: Callable[[], list[torch.Tensor]] | None = None
                      ) -> StyleEncoder:
    """The :class:`StyleEncoder` cached on ``owner.__dict__`` under ``attr`` (+ the precision when not
    fp32), built by ``build`` on first use."""
    if precision != "fp32":
        attr = f"{attr}_{precision}"
    enc = owner.__dict__.get(attr)
    if enc is None or enc.runtime != runtime:
        enc = owner.__dict__[attr] = StyleEncoder(build(), runtime, name, precision=precision, calibration=calibration)
    return enc

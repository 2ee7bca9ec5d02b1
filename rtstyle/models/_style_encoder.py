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
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

__all__ = ["StyleEncoder"]

log = logging.getLogger(__name__)


class StyleEncoder:
    """``encoder(img) -> tensor``: ``module(img)`` on OpenVINO (CPU) when available, else eager.

    Args:
        module: frozen eval-mode ``nn.Module`` taking one ``(1, 3, H, W)`` float image and returning
            one tensor.
        runtime: ``"auto"`` (OpenVINO on CPU if installed, else eager), ``"openvino"`` or ``"eager"``.
        name: for log messages; with ``version``, part of the key of the converted model in the
            engine cache (``engines/`` or ``$RTSTYLE_ENGINES``, see :mod:`rtstyle.backends.cache`).
    """

    def __init__(self, module: nn.Module, runtime: str = "auto", name: str = "style encoder", version: int = 1) -> None:
        if runtime not in ("auto", "openvino", "eager"):
            raise ValueError(f"runtime must be auto, openvino or eager, got {runtime!r}")
        self.module = module.eval()
        self.runtime = runtime
        self.name = name
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
        try:
            from ..backends.cache import EngineCache, engine_key

            # The converted IR is kept in the engine cache (keyed by the weights): converting costs
            # 2-5 s (tracing); a later process loads and compiles the cached IR in ~0.6 s, so a
            # one-shot job (one photo, one video with one style) does not pay the conversion again.
            key = engine_key(self.module, shapes=[(1, 3, None, None)], precision="fp32",
                             backend="openvino-style-encoder", backend_version=f"openvino-{ov.get_version()}",
                             device="any", settings={"encoder": self.name, "version": self.version})

            def build(folder: Path) -> None:
                with torch.no_grad():
                    m = ov.convert_model(self.module, example_input=example, input=[ov.PartialShape([1, 3, -1, -1])])
                ov.save_model(m, str(folder / "model.xml"), compress_to_fp16=False)

            ir = EngineCache().put(key, build) / "model.xml"
            core = ov.Core()
            # f32 explicitly: on CPUs with AVX-512 BF16 OpenVINO defaults to bf16, which without AMX
            # measured 2x slower here (190 vs 94 ms) and rounds the statistics
            self._compiled = core.compile_model(core.read_model(str(ir)), "CPU",
                                                {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
            self._request = self._compiled.create_infer_request()
            self.used = "openvino"
            log.info("%s runs on OpenVINO", self.name)
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
                out = self._request.infer({0: x}, share_inputs=True)[0]
                return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))
        with torch.no_grad():
            return self.module(img.to(self._device()))


def style_encoder_for(owner: Any, attr: str, build: Callable[[], nn.Module], runtime: str, name: str) -> StyleEncoder:
    """The :class:`StyleEncoder` cached on ``owner.__dict__[attr]`` (built by ``build`` on first use)."""
    enc = owner.__dict__.get(attr)
    if enc is None or enc.runtime != runtime:
        enc = owner.__dict__[attr] = StyleEncoder(build(), runtime, name)
    return enc

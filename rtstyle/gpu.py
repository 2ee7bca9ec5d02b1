"""Double-buffered CUDA frame path: upload, compute and download overlap on three streams.

For frame N the host copies the uint8 image into pinned slot ``N % depth`` and enqueues

* on the **copy-in** stream: pinned host -> device (uint8, 1/4 of the float bytes);
* on the **compute** stream (waits for that upload's event): uint8 -> float, resize to the
  internal size, range/normalisation from the spec, the backend runner, de-normalisation,
  resize back, -> uint8 into a preallocated device buffer;
* on the **copy-out** stream (waits for the compute event): device -> pinned host.

``push`` returns the frame that finished ``depth`` pushes earlier, so while frame N computes,
N+1 uploads and N-1 downloads. Buffers, streams and events are allocated once per frame size;
the hot path never calls ``torch.cuda.synchronize()`` (only per-slot event waits) and allocates
nothing but the caching allocator's reused activation blocks.

This module needs a CUDA device; nothing here runs on CPU-only machines.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .frame import Frame

if TYPE_CHECKING:
    from .stylizer import StyleState, Stylizer

__all__ = ["CudaDoubleBuffer"]

log = logging.getLogger(__name__)


class _Slot:
    __slots__ = ("pin_in", "dev_in", "dev_out", "pin_out", "ev_in", "ev_comp", "ev_out", "frame", "t_push", "style")

    def __init__(self, h: int, w: int, device: torch.device) -> None:
        self.pin_in = torch.empty((h, w, 3), dtype=torch.uint8).pin_memory()
        self.dev_in = torch.empty((h, w, 3), dtype=torch.uint8, device=device)
        self.dev_out = torch.empty((h, w, 3), dtype=torch.uint8, device=device)
        self.pin_out = torch.empty((h, w, 3), dtype=torch.uint8).pin_memory()
        self.ev_in = torch.cuda.Event()
        self.ev_comp = torch.cuda.Event()
        self.ev_out = torch.cuda.Event()
        self.frame: Frame | None = None
        self.t_push = 0.0
        self.style = ""


class CudaDoubleBuffer:
    """Pipelined GPU stylisation for one frame size.

    Args:
        stylizer: a :class:`Stylizer` on a CUDA device (its active style is read at each push,
            so hot swaps take effect on the next pushed frame).
        depth: frames in flight (2 = double buffering).

    Usage::

        db = CudaDoubleBuffer(stylizer)
        for f in frames:
            ready = db.push(f)      # None for the first ``depth`` frames
            if ready: emit(ready)
        for ready in db.flush(): emit(ready)
    """

    def __init__(self, stylizer: "Stylizer", depth: int = 2) -> None:
        if stylizer.device.type != "cuda":
            raise ValueError("CudaDoubleBuffer needs a stylizer on a CUDA device")
        self.st = stylizer
        self.device = stylizer.device
        self.depth = max(1, int(depth))
        self.s_in = torch.cuda.Stream(self.device)
        self.s_comp = torch.cuda.Stream(self.device)
        self.s_out = torch.cuda.Stream(self.device)
        self._slots: list[_Slot] = []
        self._size: tuple[int, int] | None = None
        self._n = 0
        self._consts: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _alloc(self, h: int, w: int) -> None:
        self._slots = [_Slot(h, w, self.device) for _ in range(self.depth)]
        self._size = (h, w)
        self._n = 0

    def _compute(self, state: "StyleState", x_u8: torch.Tensor, out_u8: torch.Tensor) -> None:
        spec = state.spec
        h, w = x_u8.shape[:2]
        iw, ih = self.st.internal_size(w, h)
        x = x_u8.permute(2, 0, 1).unsqueeze(0).float()
        if (iw, ih) != (w, h):
            x = F.interpolate(x, size=(ih, iw), mode="bilinear", align_corners=False, antialias=iw < w)
        lo, hi = spec.input_range
        if (lo, hi) != (0.0, 255.0):
            x = x * ((hi - lo) / 255.0) + lo
        if spec.mean is not None:
            key = spec.name
            if key not in self._consts:
                self._consts[key] = (torch.tensor(spec.mean, device=self.device).view(1, 3, 1, 1),
                                     torch.tensor(spec.std or (1.0, 1.0, 1.0), device=self.device).view(1, 3, 1, 1))
            m, s = self._consts[key]
            x = (x - m) / s
        mult = max(1, spec.size_multiple)
        ph, pw = (-ih) % mult, (-iw) % mult
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        y = state.runner(x, *state.style_inputs)[..., :ih, :iw]
        lo, hi = spec.output_range
        if (lo, hi) != (0.0, 255.0):
            y = (y - lo) * (255.0 / (hi - lo))
        if (iw, ih) != (w, h):
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        out_u8.copy_(y.clamp_(0, 255).add_(0.5)[0].permute(1, 2, 0).to(torch.uint8))

    def _collect(self, slot: _Slot) -> Frame:
        slot.ev_out.synchronize()  # waits for this slot only, never the whole device
        assert slot.frame is not None
        res = slot.frame.with_image(slot.pin_out.numpy().copy())
        dt = time.perf_counter() - slot.t_push
        res.meta.update(style=slot.style, t_pre=0.0, t_infer=dt, t_post=0.0)
        slot.frame = None
        return res

    def push(self, frame: Frame) -> Frame | None:
        """Enqueue ``frame``; return the frame pushed ``depth`` calls ago once it is done."""
        h, w = frame.image.shape[:2]
        if self._size != (h, w):
            done = self.flush() if self._slots else []
            if done:
                raise RuntimeError("frame size changed mid-stream; flush() before pushing a new size")
            self._alloc(h, w)
        slot = self._slots[self._n % self.depth]
        ready = self._collect(slot) if slot.frame is not None else None
        state = self.st.state
        slot.frame, slot.t_push, slot.style = frame, time.perf_counter(), state.name
        slot.pin_in.numpy()[...] = frame.image  # host memcpy into page-locked memory
        with torch.cuda.stream(self.s_in):
            slot.dev_in.copy_(slot.pin_in, non_blocking=True)
            slot.ev_in.record(self.s_in)
        with torch.cuda.stream(self.s_comp):
            self.s_comp.wait_event(slot.ev_in)
            with torch.inference_mode():
                self._compute(state, slot.dev_in, slot.dev_out)
            slot.ev_comp.record(self.s_comp)
        with torch.cuda.stream(self.s_out):
            self.s_out.wait_event(slot.ev_comp)
            slot.pin_out.copy_(slot.dev_out, non_blocking=True)
            slot.ev_out.record(self.s_out)
        self._n += 1
        return ready

    def flush(self) -> list[Frame]:
        """Finish every frame in flight, oldest first."""
        out = []
        for k in range(self.depth):
            slot = self._slots[(self._n + k) % self.depth]
            if slot.frame is not None:
                out.append(self._collect(slot))
        return out


def pinned_frame_copy(img: np.ndarray) -> torch.Tensor:
    """A page-locked copy of an image (for callers managing their own uploads)."""
    t = torch.empty(img.shape, dtype=torch.uint8).pin_memory()
    t.numpy()[...] = img
    return t

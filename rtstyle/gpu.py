"""Staged (double-buffered) frame path: upload, compute and download of consecutive frames overlap.

For frame N the host copies the uint8 image into host slot ``N % depth`` and enqueues

* on the **copy-in** stream: host slot -> device (uint8: a quarter of the float bytes);
* on the **compute** stream, after that upload's event: :func:`rtstyle.contract.stylize` (the
  same frame contract the CPU Stylizer runs: resize, colour order, range, mean/std, padding,
  per-frame style inputs, crossfade, temporal hook) into the slot's device output;
* on the **copy-out** stream, after the compute event: device -> host slot.

``push`` returns the oldest finished frame once ``depth`` frames are in flight, so while frame N
computes, N+1 uploads and N-1 downloads. A slot is written again only after its download event,
and the host waits on that one event, never on the whole device.

The streams, events and buffers come from a :class:`Scheduler`: :class:`CudaScheduler` (real
``torch.cuda`` streams, events and page-locked host memory) on a GPU, :class:`DeferredScheduler`
on the CPU, a stand-in that runs each stream's work only when an event needing it is waited on
(the latest a GPU may run it), so a missing wait shows up in CPU tests as a wrong frame.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np
import torch

from . import contract
from .contract import FramePlan
from .frame import Frame

if TYPE_CHECKING:
    from .stylizer import Stylizer

__all__ = ["CudaDoubleBuffer", "CudaScheduler", "DeferredScheduler", "Scheduler", "StagedStylizer",
           "cuda_auto_backend", "pinned_frame_copy"]

log = logging.getLogger(__name__)


class Scheduler(Protocol):
    """Streams, events and buffers for the staged path (CUDA semantics).

    Work enqueued on one stream runs in order; ``wait(stream, event)`` makes later work on
    ``stream`` wait for what was enqueued before the event's latest ``record``; ``synchronize``
    blocks the host until then.
    """

    device: torch.device

    def stream(self) -> Any:
        """A new stream."""
        ...

    def event(self) -> Any:
        """A new event (not yet recorded)."""
        ...

    def host_buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A uint8 host buffer that uploads/downloads can use asynchronously (page-locked on CUDA)."""
        ...

    def device_buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A uint8 buffer on the device."""
        ...

    def enqueue(self, stream: Any, work: Callable[[], object]) -> None:
        """Run ``work``'s tensor operations on ``stream``."""
        ...

    def record(self, event: Any, stream: Any) -> None:
        """Mark the point reached by ``stream`` so far."""
        ...

    def wait(self, stream: Any, event: Any) -> None:
        """Make later work on ``stream`` wait for ``event``'s latest mark."""
        ...

    def synchronize(self, event: Any) -> None:
        """Block the host until ``event``'s latest mark is reached."""
        ...


class CudaScheduler:
    """:class:`Scheduler` on a CUDA device: ``torch.cuda`` streams, events and pinned memory."""

    def __init__(self, device: torch.device | str = "cuda") -> None:
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"CudaScheduler needs a CUDA device, got {self.device}")

    def stream(self) -> torch.cuda.Stream:
        return torch.cuda.Stream(self.device)

    def event(self) -> torch.cuda.Event:
        return torch.cuda.Event()

    def host_buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.uint8).pin_memory()

    def device_buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.uint8, device=self.device)

    def enqueue(self, stream: torch.cuda.Stream, work: Callable[[], object]) -> None:
        with torch.cuda.stream(stream):
            work()

    def record(self, event: torch.cuda.Event, stream: torch.cuda.Stream) -> None:
        event.record(stream)

    def wait(self, stream: torch.cuda.Stream, event: torch.cuda.Event) -> None:
        stream.wait_event(event)

    def synchronize(self, event: torch.cuda.Event) -> None:
        event.synchronize()


class _Mark:
    __slots__ = ("stream", "done")

    def __init__(self, stream: "_Stream") -> None:
        self.stream, self.done = stream, False


class _Stream:
    __slots__ = ("ops", "name")

    def __init__(self, name: str) -> None:
        self.ops: deque[tuple[str, Any]] = deque()
        self.name = name


class _Event:
    __slots__ = ("mark",)

    def __init__(self) -> None:
        self.mark: _Mark | None = None


class DeferredScheduler:
    """CPU stand-in for CUDA streams and events that runs work as late as a GPU may.

    Each stream is a queue; nothing runs when enqueued. ``synchronize(event)`` runs the event's
    stream up to its mark, first finishing whatever that stream waits on. A caller that reads a
    host buffer before synchronising sees stale data, and one that refills a slot too early has the
    old frame's pending upload copy the new frame: ordering mistakes become wrong frames.

    Attributes:
        device: the CPU.
        ran: labels of the work run, in order (``"<stream>"`` per item), for tests.
        synchronized: how many host waits there were.
    """

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.ran: list[str] = []
        self.synchronized = 0
        self._streams: list[_Stream] = []

    def stream(self) -> _Stream:
        st = _Stream(f"s{len(self._streams) + 1}")
        self._streams.append(st)
        return st

    def event(self) -> _Event:
        return _Event()

    def host_buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, dtype=torch.uint8)

    def device_buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, dtype=torch.uint8)

    def enqueue(self, stream: _Stream, work: Callable[[], object]) -> None:
        stream.ops.append(("run", work))

    def record(self, event: _Event, stream: _Stream) -> None:
        event.mark = _Mark(stream)
        stream.ops.append(("mark", event.mark))

    def wait(self, stream: _Stream, event: _Event) -> None:
        if event.mark is not None:  # an event never recorded is complete (as in CUDA)
            stream.ops.append(("wait", event.mark))

    def synchronize(self, event: _Event) -> None:
        self.synchronized += 1
        if event.mark is not None:
            self._reach(event.mark)

    def pending(self) -> int:
        """Work items (not marks or waits) enqueued and not run yet, over all streams made here."""
        return sum(1 for st in self._streams for kind, _ in st.ops if kind == "run")

    def _reach(self, mark: _Mark) -> None:
        stream = mark.stream
        while not mark.done:
            kind, arg = stream.ops.popleft()  # IndexError would mean a mark that was never enqueued
            if kind == "run":
                arg()
                self.ran.append(stream.name)
            elif kind == "mark":
                arg.done = True
            else:  # "wait": finish the other stream up to that mark first
                self._reach(arg)


class _Slot:
    __slots__ = ("host_in", "dev_in", "dev_out", "host_out", "ev_in", "ev_comp", "ev_out", "frame", "plan", "t_push")

    def __init__(self, sched: Scheduler, shape: tuple[int, int, int]) -> None:
        self.host_in = sched.host_buffer(shape)
        self.dev_in = sched.device_buffer(shape)
        self.dev_out = sched.device_buffer(shape)
        self.host_out = sched.host_buffer(shape)
        self.ev_in, self.ev_comp, self.ev_out = sched.event(), sched.event(), sched.event()
        self.frame: Frame | None = None
        # the plan holds the frame's style (runner, style tensors) until the download is waited on:
        # on CUDA a swapped-out style's tensors must not be freed while queued work still reads them
        self.plan: FramePlan | None = None
        self.t_push = 0.0


class StagedStylizer:
    """Pipelined stylisation: frames overlap upload, compute and download.

    Args:
        stylizer: the :class:`~rtstyle.Stylizer` whose styles, internal size, crossfade and temporal
            filter are used (its active style is read as each frame is pushed, so a hot swap takes
            effect on the next pushed frame, whatever is in flight).
        depth: frames in flight (2 = double buffering).
        scheduler: streams and events; default :class:`CudaScheduler` on the stylizer's CUDA device.
            :class:`DeferredScheduler` runs the same path on the CPU.

    Usage::

        staged = StagedStylizer(stylizer)
        for f in frames:
            ready = staged.push(f)      # None until the first frame is done
            if ready: emit(ready)
        for ready in staged.flush(): emit(ready)

    Frames leave in the order they were pushed. A frame of another size finishes the frames in
    flight (they come out of the next pushes and ``flush``) and reallocates the slots.
    """

    def __init__(self, stylizer: "Stylizer", depth: int = 2, scheduler: Scheduler | None = None) -> None:
        if scheduler is None:
            if stylizer.device.type != "cuda":
                raise ValueError("the staged path needs a stylizer on a CUDA device, or a scheduler "
                                 "(rtstyle.gpu.DeferredScheduler runs it on the CPU)")
            scheduler = CudaScheduler(stylizer.device)
        if scheduler.device.type != stylizer.device.type:
            raise ValueError(f"scheduler on {scheduler.device} but stylizer on {stylizer.device}")
        self.st = stylizer
        self.sched = scheduler
        self.device = stylizer.device
        self.depth = max(1, int(depth))
        self.s_in, self.s_comp, self.s_out = scheduler.stream(), scheduler.stream(), scheduler.stream()
        self._slots: list[_Slot] = []
        self._size: tuple[int, int] | None = None
        self._n = 0
        self._ready: deque[Frame] = deque()

    @property
    def in_flight(self) -> int:
        """Frames pushed and not yet collected."""
        return sum(1 for s in self._slots if s.frame is not None)

    def _alloc(self, h: int, w: int) -> None:
        self._slots = [_Slot(self.sched, (h, w, 3)) for _ in range(self.depth)]
        self._size = (h, w)
        self._n = 0

    def _collect(self, slot: _Slot) -> Frame:
        self.sched.synchronize(slot.ev_out)  # this slot only, never the whole device
        frame, plan = slot.frame, slot.plan
        assert frame is not None and plan is not None
        res = frame.with_image(slot.host_out.numpy().copy())
        res.meta.update(style=plan.style.name, t_pre=0.0, t_infer=time.perf_counter() - slot.t_push, t_post=0.0)
        slot.frame = slot.plan = None
        return res

    def _drain(self) -> None:
        """Collect every frame in flight, oldest first, into the ready queue."""
        for k in range(len(self._slots)):
            slot = self._slots[(self._n + k) % len(self._slots)]
            if slot.frame is not None:
                self._ready.append(self._collect(slot))

    def _compute(self, slot: _Slot, plan: FramePlan) -> None:
        with torch.inference_mode():
            slot.dev_out.copy_(contract.stylize(plan, slot.dev_in))

    def push(self, frame: Frame) -> Frame | None:
        """Enqueue ``frame``; return the oldest finished frame, or ``None`` while the pipe fills."""
        h, w = frame.image.shape[:2]
        if self._size != (h, w):
            if self._size is not None:
                log.debug("frame size %s -> %s: finishing %d frames in flight", self._size, (h, w), self.in_flight)
            self._drain()
            self._alloc(h, w)
        slot = self._slots[self._n % self.depth]
        if slot.frame is not None:
            self._ready.append(self._collect(slot))  # the slot is free only after its download
        plan = self.st.plan(frame)
        slot.frame, slot.plan, slot.t_push = frame, plan, time.perf_counter()
        slot.host_in.numpy()[...] = frame.image  # host memcpy into the (page-locked) slot
        sch = self.sched
        sch.enqueue(self.s_in, partial(slot.dev_in.copy_, slot.host_in, non_blocking=True))
        sch.record(slot.ev_in, self.s_in)
        sch.wait(self.s_comp, slot.ev_in)
        sch.enqueue(self.s_comp, partial(self._compute, slot, plan))
        sch.record(slot.ev_comp, self.s_comp)
        sch.wait(self.s_out, slot.ev_comp)
        sch.enqueue(self.s_out, partial(slot.host_out.copy_, slot.dev_out, non_blocking=True))
        sch.record(slot.ev_out, self.s_out)
        self._n += 1
        return self._ready.popleft() if self._ready else None

    def flush(self) -> list[Frame]:
        """Finish every frame in flight; returns all not yet returned, oldest first."""
        self._drain()
        out = list(self._ready)
        self._ready.clear()
        return out


# The name the pipeline and earlier releases use; same class.
CudaDoubleBuffer = StagedStylizer


def cuda_auto_backend(device: str = "cuda") -> str:
    """What ``--backend auto`` runs on a CUDA device: ``tensorrt`` when torch-tensorrt imports, else
    ``compiled`` (``torch.compile`` with CUDA graphs; needs Triton), else ``eager``."""
    from .backends import BackendOptions, BackendUnavailableError, create_backend

    for name in ("tensorrt", "compiled"):
        try:
            backend = create_backend(name, BackendOptions(device=device))
            check = getattr(backend, "check_available", None)
            if check is not None:
                check()
        except BackendUnavailableError as e:
            log.info("--backend auto on %s: no %s (%s)", device, name, e)
            continue
        return name
    return "eager"


def pinned_frame_copy(img: np.ndarray) -> torch.Tensor:
    """A page-locked copy of an image (for callers managing their own uploads)."""
    t = torch.empty(img.shape, dtype=torch.uint8).pin_memory()
    t.numpy()[...] = img
    return t

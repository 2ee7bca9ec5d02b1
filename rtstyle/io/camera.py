"""Webcams through OpenCV: :class:`CameraSource`."""
from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..frame import Frame
from .base import LatestFrameSlot, Source, SourceError, SourceInfo

__all__ = ["CameraSource"]

log = logging.getLogger(__name__)


class CameraSource(Source):
    """Frames from a camera, newest first.

    A grab thread reads the camera continuously and keeps only the latest frame, so a slow
    pipeline never works on stale images; frames it replaced before anyone read them are counted
    in :attr:`dropped`. ``pts`` is the capture time in seconds since the camera opened. A camera
    that stops delivering ends the stream with :class:`SourceError`; wrap the camera in
    :class:`~rtstyle.io.reconnect.ReconnectingSource` (as ``rtstyle live`` does) to ride out a USB
    hiccup or an unplugged device.

    Args:
        device: camera index (``0``) or device path (``"/dev/video0"``).
        width / height / fps: requested capture mode (the driver may pick the nearest one;
            ``info`` reports what was actually delivered).
        first_frame_timeout: seconds to wait for the first frame before giving up.

    Raises:
        SourceError: there is no camera at ``device`` or it delivers no frames.
    """

    def __init__(
        self,
        device: int | str = 0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        *,
        first_frame_timeout: float = 5.0,
    ) -> None:
        import cv2

        if isinstance(device, str) and device.isdigit():
            device = int(device)
        self.device = device
        missing = _missing_node(device)
        if missing is not None:
            raise SourceError(f"no camera at {device}{missing}")
        cap = cv2.VideoCapture(device)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"no camera at {device}")
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer frames queued in the driver = less latency
        self._cap: Any = cap
        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._closed = False
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._grab_loop, name="rtstyle-camera", daemon=True)
        self._thread.start()
        try:
            first = self._slot.get(timeout=first_frame_timeout)
        except TimeoutError:
            self.close()
            raise SourceError(f"camera {device} delivered no frame within {first_frame_timeout:g} s") from None
        except SourceError:
            self.close()
            raise
        if first is None:
            self.close()
            raise SourceError(f"camera {device} delivered no frame")
        self._first: Frame | None = first
        reported_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.info = SourceInfo(
            width=first.width,
            height=first.height,
            fps=reported_fps if reported_fps > 0 else float(fps or 0.0),
            live=True,
            frame_count=None,
            path=None,
            extra={"device": device, "backend": _backend_name(cap)},
        )
        log.info("camera %s: %dx%d @ %.1f fps", device, first.width, first.height, self.info.fps)

    @property
    def dropped(self) -> int:
        """Frames grabbed but replaced by a newer one before being read."""
        return self._slot.dropped

    def _grab_loop(self) -> None:
        import cv2

        index = 0
        failures = 0
        error: BaseException | None = None
        try:
            while not self._stop.is_set():
                ok, bgr = self._cap.read()
                now = time.perf_counter()
                if not ok or bgr is None:
                    failures += 1
                    if failures >= 50:  # unplugged or gone: end of stream, not a hang
                        error = SourceError(f"camera {self.device} stopped delivering frames")
                        return
                    time.sleep(0.01)
                    continue
                failures = 0
                if bgr.ndim == 2:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
                else:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                self._slot.put(Frame(np.ascontiguousarray(rgb), index=index, pts=now - self._t0, captured_at=now))
                index += 1
        except Exception as exc:  # a driver error must end the stream, not hang the reader
            error = SourceError(f"camera {self.device} failed: {type(exc).__name__}: {exc}")
        finally:
            self._slot.finish(error)

    def read(self) -> Frame | None:
        """The newest frame, waiting for one if needed; ``None`` once the camera is closed."""
        if self._closed:
            return None
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return self._slot.get()

    def close(self) -> None:
        """Stop grabbing and release the camera. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._slot.finish()  # wakes a reader blocked in another thread
        if self._thread.is_alive():
            log.warning("camera %s: grab thread did not stop; leaving the device open", self.device)
            return
        self._cap.release()


def _backend_name(cap: Any) -> str:
    try:
        return str(cap.getBackendName())
    except Exception:  # older OpenCV builds / fake captures
        return "unknown"


def _missing_node(device: int | str) -> str | None:
    """On Linux, a note on why ``device`` cannot be a camera; ``None`` when it may be one.

    Probing a missing V4L2 node can take a while and floods stderr, so look before opening.
    """
    if not sys.platform.startswith("linux"):
        return None
    node = Path(f"/dev/video{device}") if isinstance(device, int) else Path(device)
    if node.exists():
        return None
    return f" ({node} does not exist)" if isinstance(device, int) else ""

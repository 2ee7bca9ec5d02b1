"""A virtual webcam (for Zoom, Meet, OBS ...) through pyvirtualcam: :class:`VirtualCameraSink`."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..frame import Frame
from .base import Sink, SinkError

__all__ = ["VirtualCameraSink"]

log = logging.getLogger(__name__)

_NO_DEVICE = (
    "no virtual camera device found: on Linux load v4l2loopback: "
    "sudo modprobe v4l2loopback devices=1 exclusive_caps=1"
)
_SYSFS_V4L2 = Path("/sys/devices/virtual/video4linux")  # where v4l2loopback devices appear


def _linux_loopback_devices() -> list[str]:
    if not _SYSFS_V4L2.is_dir():
        return []
    return sorted(f"/dev/{p.name}" for p in _SYSFS_V4L2.iterdir() if p.name.startswith("video"))


class VirtualCameraSink(Sink):
    """Send frames to a virtual camera that video-call apps can pick as a webcam.

    The camera is opened on the first frame with that frame's size; later frames of another size
    are resized to it. Frames are sent as they come (the pipeline already paces them), never
    waiting for the camera's next frame slot.

    Args:
        device: device to use (``"/dev/video2"`` on Linux); default: the first one found.
        fps: frame rate announced to the virtual camera.
        backend: pyvirtualcam backend (``"v4l2loopback"``, ``"obs"``, ``"unitycapture"``).

    Raises:
        SinkError: pyvirtualcam is not installed, or there is no virtual camera device.
    """

    lossless = False

    def __init__(self, device: str | None = None, fps: float = 30, backend: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkError("the virtual camera needs pyvirtualcam: pip install 'rtstyle[vcam]'") from None
        self._pyvirtualcam: Any = pyvirtualcam
        if sys.platform.startswith("linux") and backend in (None, "v4l2loopback"):
            found = _linux_loopback_devices()
            if device is None and not found:
                raise SinkError(_NO_DEVICE)
            if device is not None and device not in found:
                hint = f" (found: {', '.join(found)})" if found else ""
                raise SinkError(f"{device} is not a virtual camera device{hint}; {_NO_DEVICE}")
        self.device = device
        self.fps = float(fps)
        self.backend = backend
        self._cam: Any = None
        self._size: tuple[int, int] | None = None  # (h, w)
        self._closed = False
        self.frames_sent = 0

    def _open(self, frame: Frame) -> None:
        pvc = self._pyvirtualcam
        h, w = frame.height, frame.width
        try:
            self._cam = pvc.Camera(w, h, self.fps, fmt=pvc.PixelFormat.RGB, device=self.device, backend=self.backend)
        except RuntimeError as exc:
            msg = " ".join(str(exc).split())
            low = msg.lower()
            if ("no " in low and "found" in low) or "does not exist" in low:
                raise SinkError(_NO_DEVICE) from None
            raise SinkError(f"cannot open the virtual camera: {msg}") from None
        self._size = (h, w)
        log.info("virtual camera %s: %dx%d @ %g fps", self._cam.device, w, h, self.fps)

    def write(self, frame: Frame) -> None:
        """Send one frame (opening the camera on the first)."""
        if self._closed:
            raise SinkError("cannot write to the virtual camera: the sink is closed")
        if self._cam is None:
            self._open(frame)
        image = frame.image
        if (frame.height, frame.width) != self._size:
            import cv2

            h, w = self._size or (0, 0)
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        try:
            self._cam.send(np.ascontiguousarray(image))
        except (RuntimeError, ValueError) as exc:
            raise SinkError(f"cannot write to the virtual camera: {' '.join(str(exc).split())}") from None
        self.frames_sent += 1

    def close(self) -> None:
        """Release the virtual camera. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._cam is not None:
            self._cam.close()
            self._cam = None

"""An on-screen preview: :class:`WindowSink` (OpenCV ``imshow``) with an fps/latency overlay."""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

import numpy as np

from ..frame import Frame
from .base import Controls, Sink, SinkError

__all__ = ["WindowSink"]

log = logging.getLogger(__name__)

# waitKeyEx codes of the arrow keys differ between HighGUI backends (GTK, Qt, Win32, Cocoa).
_RIGHT = {65363, 0x27_0000, 2555904, 63235, 0x1000014}
_LEFT = {65361, 0x25_0000, 2424832, 63234, 0x1000012}
_ACTIONS = {
    ord("n"): "next_style",
    ord("N"): "next_style",
    ord("p"): "previous_style",
    ord("P"): "previous_style",
    ord(" "): "toggle_pause",
    ord("q"): "request_stop",
    ord("Q"): "request_stop",
    27: "request_stop",  # Esc
    ord("["): "brush_smaller",  # MSG-Net brush size
    ord("]"): "brush_larger",
}


def _display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink(Sink):
    """Show frames in a window, with fps, latency and the current style drawn on top.

    Keys: ``n``/→ next style, ``p``/← previous style (a model's bank of styles when only one
    model runs), ``[``/``]`` smaller/larger brush (MSG-Net), space pause, ``q``/Esc quit; closing the
    window also quits. The keys act through the :class:`~rtstyle.io.base.Controls` given to
    :meth:`bind`. The overlay reads ``frame.meta["fps"]``, ``frame.meta["latency_ms"]`` and
    ``frame.meta["style"]`` when present. HighGUI must be driven from one thread (the main
    thread on macOS): create, write to, poll and close the sink from the same thread.

    Args:
        title: window title.
        overlay: draw the fps/latency/style line.

    Raises:
        SinkError: no display is available (headless machine, SSH without X forwarding) or
            OpenCV was built without GUI support (``opencv-python-headless``).
    """

    lossless = False

    def __init__(self, title: str = "rtstyle", *, overlay: bool = True) -> None:
        if not _display_available():
            raise SinkError("no display available for the preview window")
        try:
            import cv2

            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
        except Exception as exc:  # cv2.error from headless builds, or a display we cannot reach
            log.debug("cv2.namedWindow failed: %s", " ".join(str(exc).split()))
            raise SinkError("no display available for the preview window") from None
        self._cv2: Any = cv2
        self.title = title
        self.overlay = overlay
        self._controls: Controls | None = None
        self._shown = False
        self._closed = False
        self._stop_requested = False

    def bind(self, controls: Controls) -> None:
        """Route the hotkeys to the running pipeline."""
        self._controls = controls

    def write(self, frame: Frame) -> None:
        """Show the frame and handle the keys pressed since the last call."""
        if self._closed:
            return
        cv2 = self._cv2
        bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        if self.overlay:
            _draw_overlay(cv2, bgr, frame.meta)
        cv2.imshow(self.title, bgr)
        self._shown = True
        self.poll()

    def poll(self) -> None:
        """Pump window events: keys and the close button (call it while paused)."""
        if self._closed:
            return
        cv2 = self._cv2
        key = cv2.waitKeyEx(1)
        if key != -1:
            self.handle_key(key)
        if self._shown and not self._stop_requested:
            try:
                visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
            except cv2.error:
                visible = 0
            if visible < 1:  # the user closed the window
                self._request("request_stop")

    def handle_key(self, key: int) -> str | None:
        """Act on a ``waitKeyEx`` code; returns the :class:`Controls` method called, if any."""
        if key in _RIGHT:
            action = "next_style"
        elif key in _LEFT:
            action = "previous_style"
        else:
            # GTK reports modifier state (e.g. NumLock) above bit 16; X keysyms sit at 0xFFxx.
            action = _ACTIONS.get(key) or (_ACTIONS.get(key & 0xFF) if key > 0xFFFF else None)
        if action is not None:
            self._request(action)
        return action

    def _request(self, action: str) -> None:
        if action == "request_stop":
            self._stop_requested = True
        if self._controls is None:
            log.debug("key for %s ignored: no pipeline bound", action)
            return
        getattr(self._controls, action)()

    def close(self) -> None:
        """Close the window. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            self._cv2.destroyWindow(self.title)
            self._cv2.waitKey(1)  # lets HighGUI actually process the destroy
        except Exception as exc:  # the user may have closed it already
            log.debug("destroyWindow: %s", exc)


def _draw_overlay(cv2: Any, bgr: np.ndarray, meta: dict) -> None:
    parts = []
    if meta.get("fps") is not None:
        parts.append(f"{float(meta['fps']):.1f} fps")
    if meta.get("latency_ms") is not None:
        parts.append(f"{float(meta['latency_ms']):.0f} ms")
    if meta.get("style"):
        parts.append(str(meta["style"]))
    if not parts:
        return
    text = "  |  ".join(parts)
    scale = max(0.4, bgr.shape[0] / 720)
    thick = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = int(6 * scale) + 2
    x1, y1 = min(bgr.shape[1], tw + 2 * pad), min(bgr.shape[0], th + base + 2 * pad)
    # Darken a box under the text so it stays readable on any style.
    bgr[:y1, :x1] //= 3
    cv2.putText(bgr, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)

"""An on-screen preview: :class:`WindowSink`, drawn with pygame (SDL2), with an fps/latency overlay.

Why pygame and not OpenCV's ``imshow``: the project depends on ``opencv-python-headless``, which has
no GUI at all, and the GUI builds of OpenCV (Qt) must be driven from the thread that created the Qt
application — called from the pipeline's writer thread the window stays empty and the run hangs.
pygame (the maintained ``pygame-ce`` distribution) installs from a wheel that bundles SDL2, needs
no system GUI toolkit, sits beside ``opencv-python-headless`` without conflict, and blits a numpy
frame without a copy. pyglet was also tried: it draws through OpenGL (a system ``libGL`` is needed)
and blitted more slowly on the same host (figures in the README, "Preview window").

Threading: SDL, like every desktop toolkit, wants one thread to own the window (the main thread on
macOS). So :meth:`WindowSink.write` (called from the pipeline's writer thread) only hands the newest
frame over, and :meth:`WindowSink.pump` — called by :meth:`rtstyle.Pipeline.run` / ``wait`` on the
thread that runs the pipeline — draws it and handles keys and the close button.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

import numpy as np

from ..frame import Frame
from .base import Controls, Sink, SinkError

__all__ = ["WindowSink"]

log = logging.getLogger(__name__)

_INSTALL = "pip install 'rtstyle[gui]'"

# Keys by the character they type (so "[" works on layouts where it needs AltGr), then by keycode name.
_BY_CHAR = {
    "n": "next_style",
    "N": "next_style",
    "p": "previous_style",
    "P": "previous_style",
    " ": "toggle_pause",
    "q": "request_stop",
    "Q": "request_stop",
    "\x1b": "request_stop",  # Esc
    "[": "brush_smaller",  # MSG-Net brush size
    "]": "brush_larger",
}
_BY_KEY = {
    "right": "next_style",
    "left": "previous_style",
    "escape": "request_stop",
    "space": "toggle_pause",
    "[": "brush_smaller",
    "]": "brush_larger",
    "n": "next_style",
    "p": "previous_style",
    "q": "request_stop",
}


def key_action(key_name: str, char: str = "") -> str | None:
    """The :class:`Controls` method a key press asks for, or ``None``.

    Args:
        key_name: the key's name as ``pygame.key.name`` gives it (``"right"``, ``"escape"``, ``"n"``).
        char: the text the key typed (``event.unicode``), which wins when it maps to an action.
    """
    return _BY_CHAR.get(char) or _BY_KEY.get(key_name.lower())


def _import_pygame() -> Any:
    # pygame prints a "Hello from the pygame community" banner on import unless told not to.
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # Leave Ctrl-C / SIGTERM to Python (KeyboardInterrupt, a clean stop) rather than SDL's handler.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    # SDL turns the desktop compositor off for its windows (made for full-screen games); a preview
    # beside other windows should not make the desktop flicker.
    os.environ.setdefault("SDL_VIDEO_X11_NET_WM_BYPASS_COMPOSITOR", "0")
    # The X11 window class (taskbars group by it; scripts find the window by it) instead of argv[0].
    os.environ.setdefault("SDL_VIDEO_X11_WMCLASS", "rtstyle")
    try:
        import pygame
    except ImportError:
        raise SinkError(f"the preview window needs pygame, which is not installed: {_INSTALL}") from None
    return pygame


_UNIX_DESKTOP = sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))


def _video_drivers() -> str | None:
    """The SDL video drivers to try, from the display variables; ``None``: leave it to SDL.

    Left alone, SDL falls back to its invisible ``offscreen`` driver when no display answers,
    and the "window" would silently show nothing.
    """
    if not _UNIX_DESKTOP or os.environ.get("SDL_VIDEODRIVER"):
        return None  # macOS / Windows have one native driver; a user's own choice is kept
    drivers = [d for var, d in (("WAYLAND_DISPLAY", "wayland"), ("DISPLAY", "x11")) if os.environ.get(var)]
    if not drivers:
        raise SinkError("no display for the preview window: neither DISPLAY nor WAYLAND_DISPLAY is set "
                        "(run on a desktop, forward X with ssh -X, or use another --sink)")
    return ",".join(drivers)


def _display_name() -> str:
    named = [f"{var}={os.environ[var]}" for var in ("WAYLAND_DISPLAY", "DISPLAY") if os.environ.get(var)]
    return f"the display ({', '.join(named)})" if named else "the display"


class WindowSink(Sink):
    """Show frames in a window, with fps, latency and the current style drawn on top.

    Keys: ``n``/→ next style, ``p``/← previous style (a model's bank of styles when only one
    model runs), ``[``/``]`` smaller/larger brush (MSG-Net), space pause, ``q``/Esc quit; closing the
    window also quits. The keys act through the :class:`~rtstyle.io.base.Controls` given to
    :meth:`bind`. The overlay reads ``frame.meta["fps"]``, ``frame.meta["latency_ms"]`` and
    ``frame.meta["style"]`` when present.

    :meth:`write` may be called from any thread; create the sink, :meth:`pump` it and
    :meth:`close` it from one thread, the one that owns the GUI (the main thread). The
    :class:`~rtstyle.Pipeline` does so when its ``run()`` / ``wait()`` is called there.

    Args:
        title: window title.
        overlay: draw the fps/latency/style line.

    Raises:
        SinkError: pygame is not installed (``rtstyle[gui]``), no display is set
            (``DISPLAY`` / ``WAYLAND_DISPLAY``), or the display cannot be reached.
    """

    lossless = False
    needs_gui_thread = True

    _open = False  # SDL as pygame drives it has one window per process

    def __init__(self, title: str = "rtstyle", *, overlay: bool = True) -> None:
        if WindowSink._open:
            raise SinkError("only one preview window per process: give --sink window once")
        pygame = _import_pygame()
        drivers = _video_drivers()
        try:
            # Connects to the display now, so a dead DISPLAY fails here, before any model work.
            if drivers is None:
                pygame.display.init()
            else:
                os.environ["SDL_VIDEODRIVER"] = drivers  # read by SDL during init only
                try:
                    pygame.display.init()
                finally:
                    del os.environ["SDL_VIDEODRIVER"]
        except pygame.error as exc:
            raise SinkError(f"cannot connect to {_display_name()} for the preview window "
                            f"(SDL: {' '.join(str(exc).split()) or 'no reason given'})") from None
        log.debug("SDL video driver: %s", pygame.display.get_driver())
        WindowSink._open = True
        self._pg: Any = pygame
        self.title = title
        self.overlay = overlay
        self._controls: Controls | None = None
        self._cond = threading.Condition()
        self._pending: np.ndarray | None = None
        self._screen: Any = None
        self._frame_size: tuple[int, int] | None = None
        self._user_sized = False
        self._closed = False
        #: frames drawn on screen (the rest were replaced by newer ones before the GUI thread came)
        self.shown = 0

    def bind(self, controls: Controls) -> None:
        """Route the hotkeys to the running pipeline."""
        self._controls = controls

    def write(self, frame: Frame) -> None:
        """Hand a frame to the window (any thread); :meth:`pump` draws the newest one."""
        if self._closed:
            return
        img = frame.image
        if self.overlay:
            img = img.copy()  # the frame is shared with the other sinks
            _draw_overlay(img, frame.meta)
        with self._cond:
            self._pending = np.ascontiguousarray(img)
            self._cond.notify_all()

    def pump(self, timeout: float = 0.02) -> None:
        """Draw the newest frame (waiting up to ``timeout`` s for one) and handle window events.

        Call it from the GUI thread, often (the pipeline does, every ``timeout`` at most), also
        while no frames flow, so that keys and the close button keep working when paused.

        Raises:
            SinkError: SDL could not create or draw the window. (An X server that goes away ends
                the process: Xlib allows no recovery from a lost connection.)
        """
        if self._closed:
            return
        with self._cond:
            if self._pending is None and timeout > 0:
                self._cond.wait(timeout)
            img, self._pending = self._pending, None
        pg = self._pg
        try:
            if img is not None:
                self._show(img)
            events = pg.event.get()
        except pg.error as exc:
            raise SinkError(f"preview window: {' '.join(str(exc).split())}") from None
        for event in events:
            if event.type in (pg.QUIT, pg.WINDOWCLOSE):  # the close button (WM_DELETE_WINDOW)
                self._request("request_stop")
            elif event.type == pg.KEYDOWN:
                self.handle_key(pg.key.name(event.key), getattr(event, "unicode", ""))
            elif event.type == pg.VIDEORESIZE:
                self._user_sized = (event.w, event.h) != self._frame_size

    def _show(self, img: np.ndarray) -> None:
        pg = self._pg
        h, w = img.shape[:2]
        if self._screen is None or (not self._user_sized and self._frame_size != (w, h)):
            pg.display.set_caption(self.title)  # before set_mode: the window is created with its title
            self._screen = pg.display.set_mode((w, h), pg.RESIZABLE)
            self._frame_size = (w, h)
        # frombuffer wraps the array's memory: no copy on the way to the window surface.
        surf = pg.image.frombuffer(img, (w, h), "RGB")
        screen = self._screen = pg.display.get_surface()
        sw, sh = screen.get_size()
        if (sw, sh) == (w, h):
            screen.blit(surf, (0, 0))
        else:  # the user resized the window: fit, keep the aspect ratio, black bars
            scale = min(sw / w, sh / h)
            tw, th = max(1, round(w * scale)), max(1, round(h * scale))
            screen.fill((0, 0, 0))
            screen.blit(pg.transform.smoothscale(surf, (tw, th)), ((sw - tw) // 2, (sh - th) // 2))
        pg.display.flip()
        self.shown += 1

    def handle_key(self, key_name: str, char: str = "") -> str | None:
        """Act on a key press (see :func:`key_action`); returns the :class:`Controls` method called."""
        action = key_action(key_name, char)
        if action is not None:
            self._request(action)
        return action

    def _request(self, action: str) -> None:
        if self._controls is None:
            log.debug("key for %s ignored: no pipeline bound", action)
            return
        getattr(self._controls, action)()

    def close(self) -> None:
        """Close the window (from the GUI thread). Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        WindowSink._open = False
        with self._cond:
            self._pending = None
        try:
            self._pg.display.quit()
        except Exception as exc:  # noqa: BLE001 - the display may be gone already (X server ended)
            log.debug("pygame.display.quit: %s", exc)


def _draw_overlay(rgb: np.ndarray, meta: dict) -> None:
    parts = []
    if meta.get("fps") is not None:
        parts.append(f"{float(meta['fps']):.1f} fps")
    if meta.get("latency_ms") is not None:
        parts.append(f"{float(meta['latency_ms']):.0f} ms")
    if meta.get("style"):
        parts.append(str(meta["style"]))
    if not parts:
        return
    import cv2  # a core dependency; its text drawing works in headless builds too

    text = "  |  ".join(parts)
    scale = max(0.4, rgb.shape[0] / 720)
    thick = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = int(6 * scale) + 2
    x1, y1 = min(rgb.shape[1], tw + 2 * pad), min(rgb.shape[0], th + base + 2 * pad)
    # Darken a box under the text so it stays readable on any style.
    rgb[:y1, :x1] //= 3
    cv2.putText(rgb, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)

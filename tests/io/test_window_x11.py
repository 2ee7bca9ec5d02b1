"""The preview window on a real X server: Xvfb is started here, the screen is read back with
ImageMagick's ``import``, keys are typed with ``xdotool`` and the close button is clicked the way a
window manager does it (a ``WM_DELETE_WINDOW`` message).

Skipped, with the reason, where Xvfb / xdotool / ImageMagick / x11-utils or pygame are missing
(``.ci/run`` installs the Debian packages; pygame comes with ``rtstyle[gui]``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

TITLE = "rtstyle"
CLASS = "rtstyle"  # the X11 window class WindowSink sets
_TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "import": "imagemagick", "xwininfo": "x11-utils"}


# --------------------------------------------------------------------------- an X server and its tools
@pytest.fixture(scope="module")
def xdisplay() -> Iterator[str]:
    """A fresh Xvfb (1024x768, 24 bit) on a display number it picks itself; ends with the module."""
    missing = [f"{tool} (Debian {pkg})" for tool, pkg in _TOOLS.items() if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    if importlib.util.find_spec("pygame") is None:
        pytest.skip("needs pygame: pip install 'rtstyle[gui]'")
    r, w = os.pipe()
    # -displayfd: Xvfb takes the first free display number and writes it to the pipe when ready.
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 60)
        number = os.read(r, 64).decode().strip() if ready else ""
        if not number.isdigit():
            pytest.fail(f"Xvfb did not start (exit code {proc.poll()})")
        yield f":{number}"
    finally:
        os.close(r)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _env(display: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    env["DISPLAY"] = display
    return env


def _x(display: str, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=_env(display), capture_output=True, text=True, timeout=timeout)


def screenshot(display: str) -> np.ndarray:
    """The whole screen, RGB uint8."""
    out = subprocess.run(["import", "-display", display, "-window", "root", "png:-"], capture_output=True,
                         timeout=60, check=True)
    bgr = cv2.imdecode(np.frombuffer(out.stdout, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "import wrote no PNG"
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _window_ids(display: str) -> list[str]:
    return _x(display, "xdotool", "search", "--onlyvisible", "--classname", f"^{CLASS}$").stdout.split()


def find_window(display: str, timeout: float, proc: subprocess.Popen | None = None,
                pump: Callable[[], None] | None = None) -> tuple[int, tuple[int, int, int, int]]:
    """The preview window's id and (x, y, width, height) on the screen, waiting for it to be mapped.

    Found by its X11 class: the xdotool of Debian 12 cannot read the UTF-8 title SDL sets."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"rtstyle ended (exit code {proc.returncode}) before its window appeared")
        if pump is not None:
            pump()
        found = _window_ids(display)
        if found:
            wid = int(found[0])
            info = _x(display, "xwininfo", "-id", str(wid)).stdout
            title = re.search(r'Window id: \S+ "(.*)"', info)
            assert title is not None and title.group(1) == TITLE, info  # the title bar text
            geo = [int(re.search(rf"{k}:\s+(-?\d+)", info).group(1))  # type: ignore[union-attr]
                   for k in ("Absolute upper-left X", "Absolute upper-left Y", "Width", "Height")]
            return wid, (geo[0], geo[1], geo[2], geo[3])
        time.sleep(0.25)
    pytest.fail(f"no window named {TITLE!r} appeared within {timeout:.0f} s")


def region(shot: np.ndarray, geo: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = geo
    return shot[y:y + h, x:x + w]


def overlay_text_pixels(win: np.ndarray) -> int:
    """Near-white pixels in the top-left strip where the overlay line is drawn."""
    strip = win[: max(12, win.shape[0] // 8), : win.shape[1] // 2]
    return int((strip.min(axis=2) > 200).sum())


def type_keys(display: str, wid: int, *keys: str) -> None:
    """Focus the window (there is no window manager to do it) and type X keysyms into it."""
    _x(display, "xdotool", "windowfocus", "--sync", str(wid), timeout=30)
    res = _x(display, "xdotool", "key", "--delay", "50", *keys)
    assert res.returncode == 0, res.stderr


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


def click_close_button(display: str, wid: int) -> None:
    """What a window manager sends when the user clicks the close button: WM_DELETE_WINDOW."""
    lib = ctypes.util.find_library("X11")
    if lib is None:
        pytest.skip("needs libX11 to send WM_DELETE_WINDOW")
    x11 = ctypes.CDLL(lib)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open {display}"
    try:
        ev = _XEvent()
        ev.xclient.type = 33  # ClientMessage
        ev.xclient.window = wid
        ev.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        ev.xclient.data[1] = 0  # CurrentTime
        assert x11.XSendEvent(dpy, wid, 0, 0, ctypes.byref(ev))
        x11.XFlush(dpy)
    finally:
        x11.XCloseDisplay(dpy)


# --------------------------------------------------------------------------- the sink in this process
class _Recorder:
    """The Controls a pipeline would offer, recording the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def next_style(self) -> None:
        self.calls.append("next")

    def previous_style(self) -> None:
        self.calls.append("previous")

    def toggle_pause(self) -> None:
        self.calls.append("pause")

    def request_stop(self) -> None:
        self.calls.append("stop")

    def brush_smaller(self) -> None:
        self.calls.append("brush-")

    def brush_larger(self) -> None:
        self.calls.append("brush+")


def _test_image(w: int = 320, h: int = 240) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=2).astype(np.uint8)


def test_frame_overlay_and_keys_in_a_real_window(xdisplay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from rtstyle.frame import Frame
    from rtstyle.io import SinkError, WindowSink

    monkeypatch.setenv("DISPLAY", xdisplay)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    img = _test_image()
    meta = {"fps": 29.7, "latency_ms": 41.0, "style": "johnson.wave_lite"}
    sink = WindowSink(TITLE)
    ctl = _Recorder()
    sink.bind(ctl)
    try:
        assert not sink.lossless and sink.needs_gui_thread
        with pytest.raises(SinkError, match="only one preview window"):
            WindowSink(TITLE)

        def show() -> None:
            sink.write(Frame(img, 0, meta=dict(meta)))
            sink.pump(0.01)

        wid, geo = find_window(xdisplay, 30, pump=show)
        assert geo[2:] == (320, 240)
        show()
        win = region(screenshot(xdisplay), geo)
        # below the overlay the frame is on screen pixel for pixel; in the overlay box it is darker
        np.testing.assert_array_equal(win[60:], img[60:])
        assert overlay_text_pixels(win) > 30
        box = win[:3, 150:200].astype(int)  # above the text, inside the box
        assert (box <= img[:3, 150:200] // 3 + 1).all() and (box < img[:3, 150:200]).any()
        assert ctl.calls == []

        # X keysyms as a keyboard sends them; "x" does nothing
        type_keys(xdisplay, wid, "n", "Right", "p", "Left", "space", "bracketleft", "bracketright", "x", "q", "Escape")
        expected = ["next", "next", "previous", "previous", "pause", "brush-", "brush+", "stop", "stop"]
        deadline = time.monotonic() + 20
        while ctl.calls != expected and time.monotonic() < deadline:
            sink.pump(0.02)  # no frames flow (as when paused): the keys still arrive
        assert ctl.calls == expected
    finally:
        sink.close()
        sink.close()
    assert _window_ids(xdisplay) == []


def test_pipeline_ends_when_the_window_is_closed(xdisplay: str, monkeypatch: pytest.MonkeyPatch,
                                                  tiny_johnson: Path) -> None:
    from rtstyle import Pipeline
    from rtstyle.io import SyntheticSource, WindowSink
    from rtstyle.stylizer import Stylizer

    monkeypatch.setenv("DISPLAY", xdisplay)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    sink = WindowSink(TITLE)
    st = Stylizer(str(tiny_johnson), backend="eager")
    pipe = Pipeline(SyntheticSource(160, 120, fps=15), st, [sink], live=True)
    closer_error: list[BaseException] = []

    def user() -> None:  # another "person": waits for a drawn frame, then clicks the close button
        try:
            wid, geo = find_window(xdisplay, 120)
            deadline = time.monotonic() + 60
            while region(screenshot(xdisplay), geo).max() == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            click_close_button(xdisplay, wid)
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            closer_error.append(e)
            pipe.request_stop()

    t = threading.Thread(target=user, daemon=True)
    t.start()
    t0 = time.monotonic()
    try:
        stats = pipe.run(duration=240)  # the GUI is pumped here, on the test's (main) thread
    finally:
        st.close()
    t.join(30)
    assert not closer_error, closer_error
    assert time.monotonic() - t0 < 200, "closing the window did not end the run"
    assert stats.frames_out > 0 and sink.shown > 0
    assert not pipe.running


# --------------------------------------------------------------------------- `rtstyle live` as a user runs it
def _rtstyle(display: str, *args: str) -> subprocess.Popen[str]:
    code = "import sys; from rtstyle.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=_env(display), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _control(proc: subprocess.Popen[str], lines: list[str], timeout: float) -> tuple[str, str]:
    """Read rtstyle's stderr in the background; the control endpoint and token it prints."""
    found = threading.Event()
    pattern = re.compile(r"(http://[^/\s]+)/\S*[?&]token=([^&\s]+)")

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if pattern.search(line):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout):
        pytest.fail(f"rtstyle printed no control endpoint: {''.join(lines)[-2000:]}")
    m = next(m for m in map(pattern.search, lines) if m)
    return m.group(1), m.group(2)


def _status(ctl: tuple[str, str]) -> dict:
    url, token = ctl
    req = urllib.request.Request(f"{url}/status", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def _wait_drawn(display: str, geo: tuple[int, int, int, int], timeout: float) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while True:
        win = region(screenshot(display), geo)
        if win.mean() > 10 and overlay_text_pixels(win) > 30:
            return win
        if time.monotonic() > deadline:
            pytest.fail("the window shows no frame with an overlay")
        time.sleep(0.3)


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"rtstyle still running {timeout:.0f} s later")
    return proc.returncode, out


@pytest.fixture
def control_extra() -> None:
    if importlib.util.find_spec("aiohttp") is None:
        pytest.skip("watches the run through its control endpoint: needs pip install 'rtstyle[control]'")


def test_live_window_draws_switches_style_and_quits(xdisplay: str, control_extra: None, tmp_path: Path) -> None:
    from rtstyle.io import SyntheticSource

    report = tmp_path / "R.json"
    first, second = "johnson.wave_lite", "johnson.starry_night_lite"
    proc = _rtstyle(xdisplay, "live", "--source", "synthetic:320x240@15", "--sink", "window", "--model", first,
                    "--model", second, "--control-port", "0", "--duration", "600", "--report", str(report))
    lines: list[str] = []
    try:
        ctl = _control(proc, lines, 240)
        wid, geo = find_window(xdisplay, 240, proc)
        win = _wait_drawn(xdisplay, geo, 120)
        assert geo[2:] == (320, 240)
        # the stylised frame, not the raw pattern: far from every frame the source made so far
        frames_made = _status(ctl)["frames_in"] + 30
        src = SyntheticSource(320, 240, fps=15, live=False)
        below = win[40:].astype(np.int16)
        nearest = min(float(np.abs(below - src.read().image[40:]).mean()) for _ in range(frames_made))
        assert nearest > 20, f"the window shows the unstylised source (mean difference {nearest:.1f})"
        assert _status(ctl)["style"] == first

        type_keys(xdisplay, wid, "n")
        deadline = time.monotonic() + 120
        while _status(ctl)["style"] != second and time.monotonic() < deadline:
            time.sleep(0.3)
        assert _status(ctl)["style"] == second, "the n key did not switch the style"
        # and the window keeps being redrawn
        time.sleep(1.0)
        assert np.abs(region(screenshot(xdisplay), geo)[40:].astype(np.int16) - below).mean() > 5

        type_keys(xdisplay, wid, "q")
        t_quit = time.monotonic()
        while _window_ids(xdisplay) and time.monotonic() - t_quit < 30:
            time.sleep(0.05)
        gone_s = time.monotonic() - t_quit  # the run has stopped and closed its window
        rc, out = _finish(proc, 60)  # then the process tears down (torch, OpenVINO, prefetch threads)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, "".join(lines)[-2000:]
    assert gone_s < 10, f"the window was still open {gone_s:.1f} s after q"
    rep = json.loads(report.read_text())
    assert rep["style"] == second and rep["swaps"] >= 1
    assert rep["wall_s"] < 500 and rep["frames_out"] > 0
    assert out.startswith("live: ")
    assert "pygame" not in out + "".join(lines)  # no banner or SDL noise on the console


def test_live_window_duration_ends_a_paused_run(xdisplay: str, control_extra: None, tmp_path: Path) -> None:
    report = tmp_path / "R.json"
    duration = 30.0  # from the first frame on: time to find the window and pause, on a busy machine
    proc = _rtstyle(xdisplay, "live", "--source", "synthetic:160x120@15", "--sink", "window", "--model",
                    "johnson.wave_lite", "--control-port", "0", "--duration", str(duration), "--report", str(report))
    lines: list[str] = []
    try:
        ctl = _control(proc, lines, 240)
        wid, geo = find_window(xdisplay, 240, proc)
        _wait_drawn(xdisplay, geo, 120)
        type_keys(xdisplay, wid, "space")  # paused: no frames reach the window any more
        deadline = time.monotonic() + 30
        while not _status(ctl)["paused"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _status(ctl)["paused"], "space did not pause"
        rc, _ = _finish(proc, 180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, "".join(lines)[-2000:]
    rep = json.loads(report.read_text())
    assert duration - 1 < rep["wall_s"] < duration + 30
    assert _window_ids(xdisplay) == []

"""WindowSink without a usable display: each missing piece is named in one line, quickly.

The window itself (frames drawn, keys, close button, ``--duration``) is tested on a real X server
in test_window_x11.py.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from rtstyle.cli import main
from rtstyle.io import SinkError, WindowSink, open_sink
from rtstyle.io.window import key_action


@pytest.fixture
def no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(var, raising=False)


def _dead_display() -> str:
    """An X display number nobody serves (no socket, no lock file)."""
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return f":{n}"
    pytest.skip("no unused X display number found")


def test_without_pygame_names_the_extra(monkeypatch: pytest.MonkeyPatch, one_line) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)  # what `import pygame` sees when it is not installed
    with pytest.raises(SinkError) as e:
        WindowSink()
    msg = one_line(e)
    assert "pygame" in msg and "pip install 'rtstyle[gui]'" in msg


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY/WAYLAND_DISPLAY are how Linux finds a desktop")
def test_no_display_set(no_display: None, one_line) -> None:
    pytest.importorskip("pygame")
    with pytest.raises(SinkError) as e:
        WindowSink()
    msg = one_line(e)
    assert msg.startswith("no display for the preview window") and "DISPLAY" in msg and "WAYLAND_DISPLAY" in msg
    with pytest.raises(SinkError, match="no display"):
        open_sink("window", fps=30, time_base=None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 display names")
def test_display_nobody_serves(no_display: None, monkeypatch: pytest.MonkeyPatch, one_line) -> None:
    pytest.importorskip("pygame")
    dead = _dead_display()
    monkeypatch.setenv("DISPLAY", dead)
    t = time.perf_counter()
    with pytest.raises(SinkError) as e:
        WindowSink()
    assert time.perf_counter() - t < 10  # fails at once, not after a long X timeout
    # SDL's own reason (its wording varies between SDL versions) follows in brackets
    assert one_line(e).startswith(f"cannot connect to the display (DISPLAY={dead}) for the preview window (SDL: ")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY/WAYLAND_DISPLAY are how Linux finds a desktop")
def test_cli_live_window_without_display(no_display: None, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pygame")
    t = time.perf_counter()
    rc = main(["live", "--source", "synthetic:64x48@10", "--sink", "window", "--duration", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err.startswith("rtstyle: error: no display for the preview window") and "\n" not in err
    assert "Traceback" not in err
    assert time.perf_counter() - t < 30  # refused before any model was built


def test_pygame_prints_no_banner() -> None:
    pytest.importorskip("pygame")
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYGAME_HIDE_SUPPORT_PROMPT"}
    out = subprocess.run([sys.executable, "-c", "from rtstyle.io.window import _import_pygame; _import_pygame()"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


@pytest.mark.parametrize(
    ("name", "char", "action"),
    [
        ("n", "n", "next_style"),
        ("right", "", "next_style"),
        ("p", "P", "previous_style"),
        ("left", "", "previous_style"),
        ("space", " ", "toggle_pause"),
        ("q", "q", "request_stop"),
        ("escape", "\x1b", "request_stop"),
        ("[", "[", "brush_smaller"),
        ("]", "]", "brush_larger"),
        ("5", "[", "brush_smaller"),  # a layout where "[" is typed with AltGr+5
        ("x", "x", None),
        ("left shift", "", None),
    ],
)
def test_key_table(name: str, char: str, action: str | None) -> None:
    assert key_action(name, char) == action

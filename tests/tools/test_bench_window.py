"""tools/bench_window.py: the preview window's per-frame cost (needs a display and pygame)."""
from __future__ import annotations

import os

import pytest


def test_small_run(tool, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pygame")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        pytest.skip("needs a display (tests/io/test_window_x11.py starts Xvfb for the window itself)")
    tool("bench_window").main(["--sizes", "160x120", "--frames", "10"])
    assert "160x120" in capsys.readouterr().out

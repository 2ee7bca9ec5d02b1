"""WindowSink: a clear error on this headless machine; keys and overlay with a stubbed HighGUI."""
from __future__ import annotations

import time

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from rtstyle.frame import Frame  # noqa: E402
from rtstyle.io import SinkError, WindowSink, open_sink  # noqa: E402


def test_no_display(monkeypatch: pytest.MonkeyPatch, one_line) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError) as e:
        WindowSink()
    assert one_line(e) == "no display available for the preview window"
    with pytest.raises(SinkError):
        open_sink("window", fps=30, time_base=None)


def test_display_set_but_no_gui(monkeypatch: pytest.MonkeyPatch) -> None:
    # A DISPLAY nobody serves, or a headless OpenCV build: still the clear error, and fast.
    monkeypatch.setenv("DISPLAY", ":97")
    try:
        cv2.namedWindow("rtstyle-probe")
        cv2.destroyWindow("rtstyle-probe")
        pytest.skip("this OpenCV can open windows here")
    except cv2.error:
        pass
    t = time.perf_counter()
    with pytest.raises(SinkError, match="no display available"):
        WindowSink()
    assert time.perf_counter() - t < 5


class _Controls:
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


@pytest.fixture
def fake_gui(monkeypatch: pytest.MonkeyPatch):
    state = {"keys": [], "shown": [], "visible": 1.0, "destroyed": False}
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(cv2, "namedWindow", lambda *a, **k: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, img: state["shown"].append(img.copy()))
    monkeypatch.setattr(cv2, "waitKeyEx", lambda ms: state["keys"].pop(0) if state["keys"] else -1)
    monkeypatch.setattr(cv2, "waitKey", lambda ms: -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: state["visible"])
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: state.update(destroyed=True))
    return state


def test_hotkeys_call_controls(fake_gui) -> None:
    sink = WindowSink()
    assert not sink.lossless
    ctl = _Controls()
    sink.bind(ctl)
    frame = Frame(np.zeros((120, 160, 3), np.uint8), 0)
    for key in (ord("n"), 65363, ord("p"), 65361, ord(" "), ord("x"), ord("q"), 27):
        fake_gui["keys"].append(key)
        sink.write(frame)
    assert ctl.calls == ["next", "next", "previous", "previous", "pause", "stop", "stop"]
    fake_gui["keys"].append(ord(" "))
    sink.poll()  # keys still work while paused (no frames flowing)
    assert ctl.calls[-1] == "pause"
    sink.close()
    sink.close()
    assert fake_gui["destroyed"]


def test_overlay_and_window_closed_by_user(fake_gui) -> None:
    sink = WindowSink()
    ctl = _Controls()
    sink.bind(ctl)
    img = np.full((120, 160, 3), 200, np.uint8)
    sink.write(Frame(img, 0))
    np.testing.assert_array_equal(fake_gui["shown"][-1], img[:, :, ::-1])  # no meta: no overlay
    sink.write(Frame(img, 1, meta={"fps": 29.7, "latency_ms": 41.0, "style": "johnson.candy"}))
    shown = fake_gui["shown"][-1]
    assert (shown[:10, :60] != 200).any()  # text box drawn top-left
    np.testing.assert_array_equal(shown[-20:], img[-20:, :, ::-1])  # rest untouched
    assert ctl.calls == []
    fake_gui["visible"] = 0.0  # the user clicked the close button
    sink.write(Frame(img, 2))
    assert ctl.calls == ["stop"]
    sink.close()

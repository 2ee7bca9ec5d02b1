"""VirtualCameraSink: clear errors on this machine, resizing with a fake pyvirtualcam."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from rtstyle.frame import Frame
from rtstyle.io import SinkError, VirtualCameraSink, open_sink
from rtstyle.io import virtualcam as vcam_mod


def test_no_device_is_a_clear_error(one_line) -> None:
    pytest.importorskip("pyvirtualcam")
    if sys.platform.startswith("linux") and vcam_mod._linux_loopback_devices():
        pytest.skip("this machine has a v4l2loopback device")
    with pytest.raises(SinkError) as e:
        sink = VirtualCameraSink()
        sink.write(Frame(np.zeros((48, 64, 3), np.uint8), 0))  # other platforms find out on open
    msg = one_line(e)
    assert "no virtual camera device found" in msg and "modprobe v4l2loopback" in msg
    with pytest.raises(SinkError):
        open_sink("vcam:/dev/video9", fps=30)


def test_missing_pyvirtualcam(monkeypatch: pytest.MonkeyPatch, one_line) -> None:
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # makes `import pyvirtualcam` fail
    with pytest.raises(SinkError) as e:
        VirtualCameraSink()
    assert "rtstyle[vcam]" in one_line(e)


def test_fake_camera_gets_resized_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cv2")
    sent: list[np.ndarray] = []
    opened: list[dict] = []

    class Camera:
        def __init__(self, width, height, fps, *, fmt, device=None, backend=None):
            opened.append(dict(width=width, height=height, fps=fps, fmt=fmt, device=device))
            self.device = device or "/dev/video9"

        def send(self, frame):
            sent.append(frame)

        def sleep_until_next_frame(self):  # must never be called: it would stall the pipeline
            raise AssertionError("sleep_until_next_frame called")

        def close(self):
            opened.append({"closed": True})

    fake = types.SimpleNamespace(Camera=Camera, PixelFormat=types.SimpleNamespace(RGB="RGB"))
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    monkeypatch.setattr(vcam_mod, "_linux_loopback_devices", lambda: ["/dev/video9"])
    sink = open_sink("vcam:/dev/video9", fps=25, time_base=None)
    assert isinstance(sink, VirtualCameraSink) and not sink.lossless
    sink.write(Frame(np.zeros((48, 64, 3), np.uint8), 0))
    sink.write(Frame(np.full((96, 128, 3), 200, np.uint8), 1))
    sink.close()
    sink.close()
    assert opened[0] == dict(width=64, height=48, fps=25.0, fmt="RGB", device="/dev/video9")
    assert opened[-1] == {"closed": True} and len(opened) == 2
    assert [s.shape for s in sent] == [(48, 64, 3), (48, 64, 3)]
    assert sent[1].mean() == pytest.approx(200)
    with pytest.raises(SinkError):
        sink.write(Frame(np.zeros((48, 64, 3), np.uint8), 2))

"""CameraSource: clear errors without a camera, latest-wins with a fake capture device."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from rtstyle.io import CameraSource, SourceError, open_source  # noqa: E402
from rtstyle.io import camera as camera_mod  # noqa: E402


@pytest.mark.parametrize("device", [0, 7, "/dev/video0", "/dev/video42"])
def test_no_camera_is_a_clear_error(device, one_line) -> None:
    if camera_mod._missing_node(device) is None:
        pytest.skip(f"this machine has a camera node for {device}")
    t = time.perf_counter()
    with pytest.raises(SourceError) as e:
        CameraSource(device)
    assert one_line(e).startswith(f"no camera at {device}")
    assert time.perf_counter() - t < 5


def test_open_source_camera_specs(one_line) -> None:
    for spec in ("cam", "cam:0", "0", "/dev/video0"):
        if camera_mod._missing_node(0) is None:
            pytest.skip("this machine has a camera")
        with pytest.raises(SourceError) as e:
            open_source(spec)
        assert "no camera at" in one_line(e)


class _FakeCapture:
    """A 200 fps camera: frame k is filled with k % 256 (BGR)."""

    def __init__(self, device) -> None:
        self.k = 0
        self.released = threading.Event()
        self.props: dict[int, float] = {}

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return 200.0 if prop == cv2.CAP_PROP_FPS else self.props.get(prop, 0.0)

    def read(self):
        time.sleep(0.005)
        img = np.full((48, 64, 3), self.k % 256, np.uint8)
        img[0, 0] = (255, 0, 0)  # blue in BGR
        self.k += 1
        return True, img

    def release(self) -> None:
        self.released.set()


def test_latest_wins_with_fake_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camera_mod, "_missing_node", lambda device: None)
    monkeypatch.setattr(cv2, "VideoCapture", _FakeCapture)
    with CameraSource(3, width=64, height=48, fps=200) as cam:
        assert cam.info.live and (cam.info.width, cam.info.height) == (64, 48) and cam.info.fps == 200.0
        cap = cam._cap
        assert cap.props[cv2.CAP_PROP_FRAME_WIDTH] == 64
        seen = []
        for _ in range(5):
            f = cam.read()
            seen.append(f.index)
            assert tuple(f.image[0, 0]) == (0, 0, 255)  # delivered as RGB
            time.sleep(0.05)
        assert all(b > a for a, b in zip(seen, seen[1:]))
        assert max(np.diff(seen)) > 1
        assert cam.dropped > 0
    assert cap.released.is_set()
    assert cam.read() is None


def test_camera_that_stops_ends_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    class Dying(_FakeCapture):
        def read(self):
            self.k += 1
            if self.k > 3:
                return False, None
            return super().read()

    monkeypatch.setattr(camera_mod, "_missing_node", lambda device: None)
    monkeypatch.setattr(cv2, "VideoCapture", Dying)
    with CameraSource(0) as cam:
        t = time.perf_counter()
        with pytest.raises(SourceError, match="stopped delivering frames"):
            while cam.read() is not None:
                pass
        assert time.perf_counter() - t < 5

"""ReconnectingSource: a camera fake that dies and comes back, through the real Pipeline and CLI."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from rtstyle.frame import Frame  # noqa: E402
from rtstyle.io import SourceError, SyntheticSource  # noqa: E402
from rtstyle.io import camera as camera_mod  # noqa: E402
from rtstyle.io.base import Sink, Source, SourceInfo  # noqa: E402
from rtstyle.io.reconnect import ReconnectingSource  # noqa: E402

MODEL = "johnson.starry_night_lite"  # shipped with the package


class _Camera(Source):
    """A 25 fps live source of synthetic frames that fails once ``die`` is set.

    ``mode="raise"``: read() raises (a driver error); ``"stall"``: read() blocks until closed (a
    camera that silently stops delivering)."""

    def __init__(self, die: threading.Event | None = None, mode: str = "raise", size: tuple[int, int] = (160, 120)) -> None:
        self._syn = SyntheticSource(*size, fps=25, live=True)
        self.info = SourceInfo(width=size[0], height=size[1], fps=25.0, live=True, extra={"device": "fake"})
        self.die, self.mode = die or threading.Event(), mode
        self.closed = threading.Event()

    def read(self) -> Frame | None:
        if self.closed.is_set():
            return None
        if self.die.is_set():
            if self.mode == "stall":
                self.closed.wait()
                return None
            raise SourceError("camera fake stopped delivering frames")
        return self._syn.read()

    def close(self) -> None:
        self.closed.set()


class _Factory:
    """Opens cameras. After :meth:`unplug` the open one fails and the device is gone for ``gone_s``
    seconds (opening raises); then it works for good."""

    def __init__(self, gone_s: float, mode: str = "raise") -> None:
        self.gone_s, self.mode = gone_s, mode
        self.opened: list[_Camera] = []
        self.refused = 0
        self.dead_at: float | None = None
        self._die = threading.Event()

    def unplug(self) -> None:
        self.dead_at = time.perf_counter()
        self._die.set()

    def __call__(self) -> _Camera:
        if self.dead_at is not None and self.opened and time.perf_counter() - self.dead_at < self.gone_s:
            self.refused += 1
            raise SourceError("no camera at fake")
        # every camera opened before the unplug dies with it (a busy machine may have made the source
        # reopen a slow camera before): only the one plugged back in after the outage lives on
        cam = _Camera(self._die if self.dead_at is None else None, self.mode)
        self.opened.append(cam)
        return cam


class _Recorder(Sink):
    lossless = False

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.times: list[float] = []

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)
        self.times.append(time.perf_counter())

    def close(self) -> None:
        pass

    def kinds(self) -> list[str]:
        return ["slate" if f.meta.get("slate") else "held" if f.meta.get("held") else "real" for f in list(self.frames)]


def _wait(cond, timeout: float = 120.0) -> None:
    """Wait for ``cond()`` (generous: the machine may be busy); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s")
        time.sleep(0.05)


def _slate_has_text(img: np.ndarray) -> bool:
    """White text on a dark image: a few bright pixels, most of the frame dark."""
    grey = img.mean(axis=2)
    return int((grey > 200).sum()) >= 40 and np.median(grey) < 90


def _back_after_slate(kinds: list[str], n: int = 10) -> bool:
    return "slate" in kinds and kinds[len(kinds) - 1 - kinds[::-1].index("slate"):].count("real") >= n


@pytest.mark.parametrize("mode", ["raise", "stall"])
def test_pipeline_keeps_sinks_fed_through_an_outage(mode: str) -> None:
    from rtstyle import Pipeline, Stylizer

    factory = _Factory(gone_s=4.0, mode=mode)
    # stall_timeout 2 s: under a loaded CI machine a pump thread starved for a second must not count as a
    # dead camera (it did once at 0.8 s: the camera was reopened before the unplug, which then hit none)
    src = ReconnectingSource(factory, hold_after=0.3, slate_after=1.0, stall_timeout=2.0, backoff=0.1,
                             backoff_max=0.4)
    sink = _Recorder()
    with src:
        pipe = Pipeline(src, Stylizer(MODEL, size=96), [sink], live=True)
        runner = threading.Thread(target=pipe.run, daemon=True)
        runner.start()
        try:
            _wait(lambda: len(sink.frames) >= 5)  # stylised frames flow: now the camera dies
            factory.unplug()
            _wait(lambda: _back_after_slate(sink.kinds()))
        finally:
            pipe.request_stop()
            runner.join(timeout=60)
    assert not runner.is_alive()
    rep = pipe.report()
    frames, times, kinds = sink.frames, np.array(sink.times), sink.kinds()
    first_sub = kinds.index("held")
    last_sub = len(kinds) - 1 - kinds[::-1].index("slate")
    assert len(factory.opened) == 2 and factory.refused >= 1
    # the sinks were fed all through the outage (4 s without a camera): substitutes only, no long silence
    assert kinds[first_sub:last_sub + 1].count("real") == 0
    assert last_sub - first_sub >= 10
    gaps = np.diff(times[first_sub - 1:last_sub + 2])
    assert gaps.max() < 2.0, gaps.max()
    # the slate is the dimmed last frame with white text; sent unstylised, at the stream's size
    slate = frames[last_sub]
    assert slate.image.shape == (120, 160, 3) and _slate_has_text(slate.image)
    assert "style" not in slate.meta  # not through the stylizer
    # the held frame is the last camera frame stylised again: the same picture as the last real output
    held, before = frames[first_sub], frames[first_sub - 1]
    assert held.meta.get("style") and kinds[first_sub - 1] == "real"
    assert np.abs(held.image.astype(int) - before.image.astype(int)).mean() < 2
    # one stream: indices and timestamps keep increasing across the reopen
    idx = [f.index for f in frames]
    pts = [f.pts for f in frames]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    assert all(b > a for a, b in zip(pts, pts[1:]))
    # counted in the report
    assert rep["reconnects"] == 1 and rep["source_recovery"]["failed_attempts"] == factory.refused
    assert 3.0 < rep["outage_s"] < 60, rep["outage_s"]
    assert rep["source_recovery"]["frames_slate"] >= 1 and rep["source_recovery"]["outages"] == 1
    assert all(c.closed.is_set() for c in factory.opened)


def test_give_up_after_timeout_ends_the_stream() -> None:
    factory = _Factory(gone_s=60)
    with ReconnectingSource(factory, hold_after=0.2, slate_after=0.5, backoff=0.1, give_up_after=1.2) as src:
        got = 0
        assert src.gave_up is None
        for _ in range(5):
            assert src.read() is not None
        factory.unplug()
        t0 = time.perf_counter()
        while src.read() is not None:
            got += 1
        elapsed = time.perf_counter() - t0
        assert src.read() is None
    assert src.gave_up == "fake: no frames for 1.2 s, giving up"
    assert got >= 10  # substitutes until it gave up
    assert 1.0 < elapsed < 5.0
    assert factory.refused >= 2


def test_first_open_failure_propagates() -> None:
    def factory() -> Source:
        raise SourceError("no camera at 9")

    with pytest.raises(SourceError, match="no camera at 9"):
        ReconnectingSource(factory)


def test_reopened_source_of_another_size_is_resized() -> None:
    die = threading.Event()
    cams = iter([_Camera(die), _Camera(size=(320, 240))])
    with ReconnectingSource(lambda: next(cams), hold_after=5.0, backoff=0.05) as src:
        shapes = {src.read().image.shape for _ in range(3)}
        die.set()
        shapes |= {src.read().image.shape for _ in range(10)}
        assert src.reconnects == 1
    assert shapes == {(120, 160, 3)}


class _FakeCapture:
    """cv2.VideoCapture stand-in: 100 fps frames until ``state["dead"]`` (unplugged): then reads fail
    and the device does not open, until it is set back."""

    state: dict = {}

    def __init__(self, device) -> None:
        self.k = 0
        self.opened = not self.state["dead"]
        self.state["opens"] += 1

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        time.sleep(0.01)
        if self.state["dead"]:
            return False, None
        self.k += 1
        return True, np.full((96, 128, 3), (self.k * 7) % 256, np.uint8)

    def release(self) -> None:
        pass


def _unplug_once_recording(rec: Path, back_after: float | None) -> threading.Thread:
    """Unplug the fake camera one second after the recording started (model loading takes a while on
    a busy machine); plug it back ``back_after`` seconds later."""

    def run() -> None:
        deadline = time.monotonic() + 120
        while not any(rec.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        _FakeCapture.state["dead"] = True
        if back_after is not None:
            time.sleep(back_after)
            _FakeCapture.state["dead"] = False

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _patch_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    _FakeCapture.state = {"dead": False, "opens": 0}
    monkeypatch.setattr(camera_mod, "_missing_node", lambda device: None)
    monkeypatch.setattr(cv2, "VideoCapture", _FakeCapture)


def test_cli_source_timeout_gives_up_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    from rtstyle.cli import main

    _patch_camera(monkeypatch)
    rec = tmp_path / "rec"
    rec.mkdir()
    _unplug_once_recording(rec, back_after=None)
    rep = tmp_path / "rep.json"
    t0 = time.perf_counter()
    code = main(["--quiet", "live", "--source", "cam:3", "--sink", str(rec / "out.mp4"), "--source-timeout", "2",
                 "--size", "64", "--duration", "120", "--report", str(rep)])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1] == "rtstyle: error: cam:3: no frames for 2 s, giving up", err
    assert (rec / "out.mp4").stat().st_size > 0  # the recording up to the outage is kept
    assert elapsed < 100
    assert _FakeCapture.state["opens"] >= 2  # it tried to reopen before giving up
    r = json.loads(rep.read_text())
    assert r["reconnects"] == 0 and r["outage_s"] >= 2.0 and r["source_recovery"]["failed_attempts"] >= 1


def test_cli_camera_comes_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rtstyle.cli import main

    _patch_camera(monkeypatch)
    rec = tmp_path / "rec"
    rec.mkdir()
    _unplug_once_recording(rec, back_after=4.0)
    rep = tmp_path / "rep.json"
    code = main(["--quiet", "live", "--source", "cam:3", "--sink", str(rec / "out.mp4"), "--size", "64",
                 "--duration", "15", "--report", str(rep)])
    assert code == 0
    r = json.loads(rep.read_text())
    assert r["reconnects"] >= 1 and r["outage_s"] > 2.0
    assert r["source_recovery"]["frames_held"] + r["source_recovery"]["frames_slate"] > 20
    assert r["frames_out"] > 60


@pytest.mark.network
def test_network_source_that_drops_is_reopened(udp_port: int) -> None:
    pytest.importorskip("av")
    from rtstyle.io import StreamSink, VideoFileSource

    url = f"udp://127.0.0.1:{udp_port}"
    paused = threading.Event()
    done = threading.Event()

    def sender() -> None:  # 25 fps over UDP, silent while ``paused`` (the sender went away)
        with StreamSink(url, fps=25) as sink, SyntheticSource(160, 120, fps=25, live=True) as syn:
            while not done.is_set():
                f = syn.read()
                if not paused.is_set():
                    sink.write(f)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    time.sleep(0.3)
    src = ReconnectingSource(lambda: VideoFileSource(url, open_timeout=5, read_timeout=1), hold_after=0.3,
                             slate_after=1.0, stall_timeout=1.5, backoff=0.1, backoff_max=0.5)
    kinds: list[str] = []
    try:
        with src:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 40:
                f = src.read()
                assert f is not None and f.image.shape == (120, 160, 3)
                kinds.append("sub" if f.meta.get("slate") or f.meta.get("held") else "real")
                if len(kinds) == 40:
                    paused.set()  # the network source drops
                if paused.is_set() and kinds.count("sub") >= 50:
                    paused.clear()  # ~2 s of substitutes later, the sender is back
                if not paused.is_set() and kinds.count("sub") and kinds[-30:] == ["real"] * 30:
                    break
            stats = src.recovery_stats()
    finally:
        done.set()
        t.join(timeout=10)
    assert kinds[-30:] == ["real"] * 30, "frames did not resume after the sender came back"
    assert stats["reconnects"] >= 1 and stats["outage_s"] > 1.5


@pytest.mark.parametrize(("argv", "want"), [
    (["--source", "synthetic:64x48@10", "--source-timeout", "5"], "rtstyle: error: --source-timeout applies to cameras and network streams"),
    (["--source", "synthetic:64x48@10", "--source-timeout", "0"], "rtstyle: error: --source-timeout must be > 0 seconds, got 0"),
])
def test_cli_source_timeout_checks(argv: list[str], want: str, tmp_path: Path, capsys) -> None:
    from rtstyle.cli import main

    assert main(["live", *argv, "--sink", str(tmp_path / "o.mp4"), "--duration", "1"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == want
    assert not (tmp_path / "o.mp4").exists()


def test_a_source_that_fails_at_once_is_reopened_with_backoff() -> None:
    opened: list[float] = []
    die = threading.Event()

    class Broken(_Camera):  # opens fine, fails before its first frame
        def read(self) -> Frame | None:
            raise SourceError("stream broke")

    def factory() -> Source:
        opened.append(time.perf_counter())
        return _Camera(die) if len(opened) == 1 else Broken()

    with ReconnectingSource(factory, hold_after=0.2, backoff=0.1, backoff_max=0.4) as src:
        src.read()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.2:  # let the first camera deliver, then fail it
            src.read()
        die.set()
        time.sleep(2.0)
        n = len(opened)
    # 0.1 + 0.2 + 0.4 + 0.4 ... between opens: a handful in 2 s, not thousands
    assert 3 <= n <= 10, n

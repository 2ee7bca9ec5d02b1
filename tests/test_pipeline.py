"""Pipeline semantics: file mode loses nothing, live mode keeps latency bounded, swaps land on frames."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rtstyle.frame import Frame
from rtstyle.io import NullSink
from rtstyle.io.base import Sink, Source, SourceInfo
from rtstyle.pipeline import Pipeline, ScheduledSwap, parse_schedule
from rtstyle.stylizer import Stylizer


class ListSource(Source):
    def __init__(self, images: list[np.ndarray], fps: float = 25.0, live: bool = False, delay: float = 0.0,
                 gate: tuple[int, "threading.Event"] | None = None) -> None:
        self.images, self.i, self.delay, self.gate = images, 0, delay, gate
        h, w = images[0].shape[:2]
        self.info = SourceInfo(width=w, height=h, fps=fps, live=live, frame_count=len(images))
        self.closed = 0

    def read(self) -> Frame | None:
        if self.i >= len(self.images):
            return None
        if self.delay:
            time.sleep(self.delay)
        if self.gate is not None and self.i == self.gate[0]:
            self.gate[1].wait(60)  # hold this frame back until the test releases it
        f = Frame(self.images[self.i], self.i, pts=self.i / self.info.fps)
        self.i += 1
        return f

    def close(self) -> None:
        self.closed += 1


class Collect(Sink):
    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.frames: list[Frame] = []
        self.delay, self.fail_at = delay, fail_at
        self.closed = self.aborted = 0

    def write(self, frame: Frame) -> None:
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise OSError("disk full")
        if self.delay:
            time.sleep(self.delay)
        self.frames.append(frame)

    def close(self) -> None:
        self.closed += 1

    def abort(self) -> None:
        self.aborted += 1


def _frames(content_photo: np.ndarray, n: int) -> list[np.ndarray]:
    # real photo content, shifted per frame so every frame differs
    return [np.ascontiguousarray(np.roll(content_photo, 3 * i, axis=1)) for i in range(n)]


def test_file_mode_keeps_every_frame_in_order(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    imgs = _frames(content_photo, 24)
    sink = Collect(delay=0.002)
    pipe = Pipeline(ListSource(imgs), Stylizer(str(tiny_johnson)), [sink], queue_size=2)
    stats = pipe.run()
    assert [f.index for f in sink.frames] == list(range(24))
    assert [f.pts for f in sink.frames] == [i / 25.0 for i in range(24)]
    assert stats.frames_in == stats.frames_out == 24 and stats.frames_dropped == 0
    assert sink.closed == 1 and sink.aborted == 0
    rep = pipe.report()
    for key in ("model", "backend", "device", "frames_in", "frames_out", "frames_dropped", "wall_s", "fps", "stages"):
        assert key in rep
    assert rep["stages"]["inference"]["count"] == 24


def test_live_mode_drops_stale_frames_and_bounds_latency(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    imgs = _frames(content_photo, 60)
    st = Stylizer(str(tiny_johnson))
    # the source produces every 5 ms; the sink is slower (30 ms): live mode must drop, not queue
    sink = Collect(delay=0.03)
    pipe = Pipeline(ListSource(imgs, live=True, delay=0.005), st, [sink])
    stats = pipe.run()
    assert stats.frames_dropped > 0
    assert stats.frames_out + stats.frames_dropped == stats.frames_in
    idx = [f.index for f in sink.frames]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)
    rep = pipe.report()
    assert rep["latency_ms_p95"] < 500


def test_schedule_switches_at_exact_frame(tiny_johnson: Path, engstrom_udnie: Path, content_photo: np.ndarray) -> None:
    imgs = [content_photo] * 12  # identical input: any output change is the swap
    sink = Collect()
    sched = parse_schedule(f"0.2s={engstrom_udnie}")  # 25 fps -> frame 5
    pipe = Pipeline(ListSource(imgs), Stylizer(str(tiny_johnson)), [sink], schedule=sched)
    pipe.run()
    outs = [f.image for f in sink.frames]
    assert len(outs) == 12
    same = [np.array_equal(outs[0], o) for o in outs]
    assert same == [True] * 5 + [False] * 7
    assert all(np.array_equal(outs[5], o) for o in outs[5:])
    assert sink.frames[4].meta["style"] != sink.frames[5].meta["style"]


def test_parse_schedule() -> None:
    s = parse_schedule("12s=b, 5s=a,#30=c")
    assert [x.model for x in s] == ["a", "b", "c"]
    assert s[0] == ScheduledSwap("a", at_s=5.0)
    assert s[2].at_frame == 30
    with pytest.raises(ValueError):
        parse_schedule("5=")
    with pytest.raises(ValueError):
        parse_schedule("soon=a")


def test_parse_schedule_style_and_controls(tmp_path: Path) -> None:
    img = tmp_path / "wave.jpg"
    img.write_bytes(b"not decoded here")
    s = parse_schedule(f"2s=msgnet.lite?style=wave&brush=384&alpha=0.5,#9=adain.vgg16?style={img},3s=m?style=2:0.5+5:0.5")
    assert s[0] == ScheduledSwap("msgnet.lite", at_s=2.0, style_vector="wave", options={"brush": 384, "alpha": 0.5})
    assert s[1].style_vector == "2:0.5,5:0.5" and s[1].style_image is None
    assert s[2].style_image == str(img) and s[2].at_frame == 9 and s[2].options is None
    with pytest.raises(ValueError):
        parse_schedule("2s=?style=wave")
    with pytest.raises(ValueError):
        parse_schedule("2s=m?brush")


def test_sink_error_aborts_and_is_raised(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    sink = Collect(fail_at=3)
    other = Collect()
    pipe = Pipeline(ListSource(_frames(content_photo, 20)), Stylizer(str(tiny_johnson)), [sink, other], queue_size=2)
    with pytest.raises(OSError, match="disk full"):
        pipe.run()
    assert sink.aborted == 1 and other.aborted == 1 and sink.closed == 0


def test_stop_finishes_frames_in_flight(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    imgs = _frames(content_photo, 200)
    sink = NullSink()
    pipe = Pipeline(ListSource(imgs, delay=0.002), Stylizer(str(tiny_johnson)), [sink], queue_size=4)
    pipe.start()
    time.sleep(0.3)
    pipe.stop()
    assert pipe.wait(10)
    st = pipe.stats
    assert 0 < st.frames_out == st.frames_in < 200, "every frame read before stop must be written"


def test_hot_swap_from_another_thread_changes_output_without_loss(tiny_johnson: Path, engstrom_udnie: Path, content_photo: np.ndarray) -> None:
    imgs = [content_photo] * 40
    sink = Collect(delay=0.005)
    st = Stylizer(str(tiny_johnson))
    release = threading.Event()  # frames from #20 on wait until the swap is ready, however slow the machine
    pipe = Pipeline(ListSource(imgs, delay=0.01, gate=(20, release)), st, [sink], queue_size=2)
    pipe.start()
    time.sleep(0.1)
    pipe.swap(str(engstrom_udnie)).result(timeout=60)
    release.set()
    pipe.wait(60)
    pipe.sinks[0].close()
    assert [f.index for f in sink.frames] == list(range(40))
    styles = [f.meta["style"] for f in sink.frames]
    k = styles.index(next(s for s in styles if s != styles[0]))
    assert 0 < k < 40 and all(s == styles[k] for s in styles[k:]), "swap must land on one frame boundary"


@pytest.mark.parametrize("hold", [0.0, 0.6])
def test_live_swap_hold_pauses_old_style_while_new_one_prepares(hold: float, tiny_johnson: Path, engstrom_udnie: Path,
                                                                 content_photo: np.ndarray) -> None:
    imgs = _frames(content_photo, 400)
    st = Stylizer(str(tiny_johnson))
    slow = 0.3  # the new style takes this long to prepare
    real_prepare = st.prepare

    def slow_prepare(*a, **k):  # noqa: ANN002, ANN003
        time.sleep(slow)
        return real_prepare(*a, **k)

    seen: list[tuple[float, str]] = []
    pipe = Pipeline(ListSource(imgs, live=True, delay=0.004), st, [NullSink(lossless=False)], swap_hold=hold,
                    on_frame=lambda f: seen.append((time.perf_counter(), f.meta.get("style", ""))))
    pipe.start()
    import gc

    assert gc.get_freeze_count() > 0  # live: what exists at start is kept out of the GC's walks ...
    try:
        time.sleep(0.3)
        st.prepare = slow_prepare  # type: ignore[method-assign]
        t0 = time.perf_counter()
        state = pipe.swap(str(engstrom_udnie)).result(timeout=30)
        time.sleep(0.2)
    finally:
        pipe.stop()
        pipe.wait(30)
    assert gc.get_freeze_count() == 0  # ... and given back when the run ends
    old = [t for t, name in seen if t0 + 0.05 < t < t0 + slow - 0.02 and name != state.name]
    if hold:
        assert len(old) == 0, f"{len(old)} frames of the old style went out while the new one was prepared"
        assert pipe.stats.frames_dropped > 0  # held frames are stale: dropped, not queued
    else:
        assert len(old) >= 3  # without a hold the old style keeps running
    assert any(name == state.name for _, name in seen)
    with pytest.raises(ValueError, match="swap_hold"):
        Pipeline(ListSource(imgs[:2], live=True), st, [], swap_hold=-1)


class GuiSink(Collect):
    """A sink whose GUI one thread must own, as the preview window: pumped by Pipeline.run/wait."""

    needs_gui_thread = True

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.fail_after, self.pumps = fail_after, 0
        self.pump_threads: set[int] = set()
        self.write_threads: set[int] = set()

    def write(self, frame: Frame) -> None:
        self.write_threads.add(threading.get_ident())
        super().write(frame)

    def pump(self, timeout: float = 0.02) -> None:
        self.pump_threads.add(threading.get_ident())
        self.pumps += 1
        if self.fail_after is not None and self.pumps > self.fail_after:
            raise RuntimeError("display gone")
        time.sleep(timeout)


def test_gui_sinks_are_pumped_on_the_calling_thread(tiny_johnson: Path) -> None:
    imgs = [np.full((48, 64, 3), 4 * i, np.uint8) for i in range(30)]
    sink = GuiSink()
    Pipeline(ListSource(imgs, delay=0.01), Stylizer(str(tiny_johnson)), [sink]).run()
    assert sink.pumps > 0 and sink.pump_threads == {threading.get_ident()}
    assert len(sink.frames) == 30 and threading.get_ident() not in sink.write_threads
    # an error while pumping the GUI stops the stages and is raised from run(); the sink is aborted
    failing = GuiSink(fail_after=3)
    pipe = Pipeline(ListSource(imgs * 100, live=True, delay=0.01), Stylizer(str(tiny_johnson)), [failing])
    with pytest.raises(RuntimeError, match="display gone"):
        pipe.run(duration=120)
    assert not pipe.running and failing.aborted == 1

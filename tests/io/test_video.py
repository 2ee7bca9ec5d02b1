"""VideoFileSource / VideoFileSink on real clips: counts, timestamps, audio, temp files, errors."""
from __future__ import annotations

import itertools
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from rtstyle.frame import Frame  # noqa: E402
from rtstyle.io import SinkError, SourceError, SyntheticSource, VideoFileSink, VideoFileSource  # noqa: E402


def _pyav_video(path: Path) -> tuple[int, list[float]]:
    with av.open(str(path)) as c:
        pts = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    return len(pts), pts


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        return sum(f.samples / f.sample_rate for f in c.decode(audio=0))


def _copy(src: VideoFileSource, sink: VideoFileSink, limit: int | None = None) -> list[Frame]:
    frames = []
    for f in itertools.islice(src, limit):
        sink.write(f)
        frames.append(Frame(f.image[:1, :1].copy(), f.index, f.pts))  # keep metadata, not pixels
    return frames


# -- source ---------------------------------------------------------------------------------
def test_decode_count_and_pts_match_pyav(short_clip: Path) -> None:
    n, pts = _pyav_video(short_clip)
    with VideoFileSource(short_clip) as src:
        frames = list(src)
    assert len(frames) == n == src.info.frame_count == 36
    assert [f.index for f in frames] == list(range(n))
    assert [f.pts for f in frames] == pytest.approx(pts, abs=1e-9)
    f = frames[0]
    assert f.image.dtype == np.uint8 and f.image.shape == (240, 320, 3) and f.image.flags.c_contiguous
    assert f.pixel_format == "rgb24"
    assert src.read() is None  # stays at the end


def test_frames_are_rgb(short_clip: Path) -> None:
    with av.open(str(short_clip)) as c:
        ref = next(c.decode(video=0)).to_ndarray(format="rgb24")
    with VideoFileSource(short_clip) as src:
        img = src.read().image
    np.testing.assert_array_equal(img, ref)


def test_info(audio_clip: Path) -> None:
    with VideoFileSource(audio_clip) as src:
        info = src.info
        assert (info.width, info.height) == (640, 360)
        assert info.fps == pytest.approx(25.0)
        assert info.frame_count == 280
        assert info.has_audio and not info.live
        assert info.path == str(audio_clip)
        assert info.extra["time_base"] == Fraction(1, 12800)
        assert isinstance(info.extra["time_base"], Fraction)
        assert info.extra["codec"] == "h264"
        assert src.dropped == 0


def test_close_early_does_not_hang(bikes_clip: Path) -> None:
    t = time.perf_counter()
    src = VideoFileSource(bikes_clip, queue_size=2)
    assert src.read().index == 0
    src.close()
    src.close()  # idempotent
    assert src.read() is None
    assert time.perf_counter() - t < 5


def test_missing_file(tmp_path: Path, one_line) -> None:
    with pytest.raises(SourceError) as e:
        VideoFileSource(tmp_path / "nope.mp4")
    assert "video file not found" in one_line(e)


def test_corrupt_file(tmp_path: Path, one_line) -> None:
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError) as e:
        with VideoFileSource(bad) as src:
            list(src)
    assert one_line(e).startswith(f"cannot decode {bad}")


def test_truncated_file_ends_or_errors_cleanly(tmp_path: Path, short_clip: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(short_clip.read_bytes()[: short_clip.stat().st_size // 2])
    try:
        with VideoFileSource(cut) as src:
            n = len(list(src))
        assert n <= 36
    except SourceError as e:  # either way: one line, no hang
        assert "\n" not in str(e)


def test_realtime_paces_at_native_fps(short_clip: Path) -> None:
    with VideoFileSource(short_clip, realtime=True) as src:
        t = time.perf_counter()
        frames = [src.read() for _ in range(16)]
        elapsed = time.perf_counter() - t
    expected = frames[-1].pts - frames[0].pts  # 15 frame intervals, 0.5 s
    assert expected * 0.8 < elapsed < expected * 1.5 + 0.3


def test_live_latest_wins(bikes_clip: Path) -> None:
    # A file played live at 25 fps with a consumer at ~8 fps: newest frames, gaps, drops counted.
    with VideoFileSource(bikes_clip, realtime=True, live=True) as src:
        assert src.info.live
        seen = []
        for _ in range(6):
            time.sleep(0.12)
            seen.append(src.read().index)
        dropped = src.dropped
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert max(np.diff(seen)) > 1
    assert dropped > 0


# -- sink -----------------------------------------------------------------------------------
def test_roundtrip_keeps_frames_timestamps_and_audio(tmp_path: Path, short_clip: Path) -> None:
    out = tmp_path / "out.mp4"
    with VideoFileSource(short_clip) as src:
        info = src.info
        with VideoFileSink(out, fps=info.fps, time_base=info.extra["time_base"], audio_from=info.path) as sink:
            frames = _copy(src, sink)
    n_out, pts_out = _pyav_video(out)
    assert n_out == len(frames) == 36
    half = 0.5 / info.fps
    assert max(abs(a - b.pts) for a, b in zip(pts_out, frames)) < half
    with av.open(str(out)) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"  # remuxed, not re-encoded
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (320, 240)
        assert v.codec_context.name == "h264"
    assert _audio_seconds(out) == pytest.approx(_audio_seconds(short_clip), abs=0.1)


def test_a_late_first_frame_keeps_its_exact_timestamp(tmp_path: Path, short_clip: Path) -> None:
    """A file whose first frame is not at 0 (a Ray chunk) keeps every timestamp to the tick: the mp4
    edit list counts in the stream's unit, not in milliseconds (30.02 fps: frame 13 is at 0.43304 s)."""
    out = tmp_path / "late.mp4"
    with VideoFileSource(short_clip) as src:
        info = src.info
        with VideoFileSink(out, fps=info.fps, time_base=info.extra["time_base"]) as sink:
            for f in itertools.islice(src, 13, 20):
                sink.write(f)
    with av.open(str(short_clip)) as c:
        want = sorted(p.pts for p in c.demux(video=0) if p.pts is not None)[13:20]
    with av.open(str(out)) as c:
        assert sorted(p.pts for p in c.demux(video=0) if p.pts is not None) == want


def test_roundtrip_prefix_cuts_audio_to_video(tmp_path: Path, audio_clip: Path) -> None:
    out = tmp_path / "first50.mkv"
    with VideoFileSource(audio_clip) as src:
        with VideoFileSink(out, fps=src.info.fps, time_base=src.info.extra["time_base"], audio_from=audio_clip) as sink:
            frames = _copy(src, sink, limit=50)
    n_out, pts_out = _pyav_video(out)
    assert n_out == 50
    assert max(abs(a - b.pts) for a, b in zip(pts_out, frames)) < 0.5 / 25
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name.startswith("mp3")  # copied as is
    assert _audio_seconds(out) == pytest.approx(50 / 25, abs=0.1)


def test_audio_transcoded_when_container_rejects_codec(tmp_path: Path, short_clip: Path) -> None:
    out = tmp_path / "out.webm"  # WebM takes no AAC: the sink transcodes to Opus
    with VideoFileSource(short_clip) as src, VideoFileSink(out, fps=src.info.fps, audio_from=short_clip) as sink:
        _copy(src, sink, limit=12)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        assert c.streams.audio[0].codec_context.name == "opus"
    assert _pyav_video(out)[0] == 12
    assert _audio_seconds(out) == pytest.approx(12 / 30, abs=0.1)


def test_temp_file_then_rename(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    sink = VideoFileSink(out, fps=30)
    with SyntheticSource(64, 48, frames=5, live=False) as src:
        for f in src:
            sink.write(f)
    assert not out.exists()
    assert sink.temp_path.exists() and sink.temp_path.parent == tmp_path
    sink.close()
    assert out.exists() and not sink.temp_path.exists()
    sink.close()  # idempotent
    sink.abort()  # after a successful close: leaves the result alone
    assert out.exists()
    assert _pyav_video(out)[0] == 5


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    sink = VideoFileSink(out, fps=30)
    for f in SyntheticSource(64, 48, frames=3, live=False):
        sink.write(f)
    sink.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), VideoFileSink(out, fps=30) as sink2:  # an error inside `with` aborts
        sink2.write(Frame(np.zeros((48, 64, 3), np.uint8), 0, 0.0))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_close_without_frames_creates_nothing(tmp_path: Path) -> None:
    VideoFileSink(tmp_path / "empty.mp4", fps=30).close()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output(tmp_path: Path, one_line) -> None:
    with pytest.raises(SinkError) as e:
        VideoFileSink(tmp_path / "missing" / "out.mp4", fps=30)
    assert "does not exist" in one_line(e)
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(SinkError):
        VideoFileSink(tmp_path / "dir.mp4", fps=30)
    with pytest.raises(SinkError) as e:
        VideoFileSink(tmp_path / "out.xyz", fps=30)
    assert "extension" in one_line(e)
    with pytest.raises(SinkError) as e:
        VideoFileSink(tmp_path / "out.mp4", fps=30, audio_from=tmp_path / "no_audio_here.mp4")
    assert "audio source not found" in one_line(e)


def test_read_only_folder(tmp_path: Path, one_line) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if _can_write(ro):
            pytest.skip("running as a user that ignores folder permissions (root)")
        with pytest.raises(SinkError) as e:
            VideoFileSink(ro / "out.mp4", fps=30)
        assert "not writable" in one_line(e)
    finally:
        ro.chmod(0o755)


def _can_write(folder: Path) -> bool:
    try:
        (folder / ".probe").write_bytes(b"")
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    with VideoFileSink(out, fps=25) as sink:
        for f in SyntheticSource(101, 75, fps=25, frames=4, live=False):
            sink.write(f)
    with av.open(str(out)) as c:
        v = c.streams.video[0].codec_context
        assert (v.width, v.height) == (102, 76)


def test_frames_without_pts_use_index_over_fps(tmp_path: Path) -> None:
    out = tmp_path / "nopts.mp4"
    img = np.zeros((48, 64, 3), np.uint8)
    with VideoFileSink(out, fps=20) as sink:
        for i in range(6):
            sink.write(Frame(img, i, None))
    assert _pyav_video(out)[1] == pytest.approx([i / 20 for i in range(6)], abs=1e-6)


def test_size_change_is_an_error(tmp_path: Path, one_line) -> None:
    sink = VideoFileSink(tmp_path / "x.mp4", fps=25)
    sink.write(Frame(np.zeros((48, 64, 3), np.uint8), 0, 0.0))
    with pytest.raises(SinkError) as e:
        sink.write(Frame(np.zeros((50, 64, 3), np.uint8), 1, 0.04))
    assert "frame size changed" in one_line(e)
    sink.abort()
    assert list(tmp_path.iterdir()) == []

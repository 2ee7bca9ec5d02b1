"""open_source / open_sink: what the user strings turn into."""
from __future__ import annotations

from pathlib import Path

import pytest

from rtstyle.io import (
    ImageSink,
    ImageSource,
    SinkError,
    SourceError,
    StreamSink,
    SyntheticSource,
    VideoFileSink,
    VideoFileSource,
    open_sink,
    open_source,
)


def test_synthetic_specs() -> None:
    s = open_source("synthetic")
    assert isinstance(s, SyntheticSource) and (s.info.width, s.info.height, s.info.fps) == (640, 480, 30.0)
    s = open_source("synthetic:320x240@15", live=False, frames=3)
    assert (s.info.width, s.info.height, s.info.fps, s.info.live) == (320, 240, 15.0, False)
    assert len(list(s)) == 3
    assert open_source("synthetic:@60").info.fps == 60.0


def test_file_specs(short_clip: Path, photos: Path, one_line) -> None:
    with open_source(str(short_clip)) as s:
        assert isinstance(s, VideoFileSource) and not s.info.live
    assert isinstance(open_source(photos / "mate_Aqua.jpg"), ImageSource)
    assert isinstance(open_source(str(photos)), ImageSource)
    with pytest.raises(SourceError) as e:
        open_source("/nonexistent/clip.mp4")
    assert one_line(e) == "input not found: /nonexistent/clip.mp4"


def test_sink_specs(tmp_path: Path, one_line) -> None:
    for ext in (".mp4", ".mkv", ".mov", ".avi", ".webm"):
        sink = open_sink(str(tmp_path / f"o{ext}"), fps=25, time_base=None, audio_from=None)
        assert isinstance(sink, VideoFileSink) and sink.lossless
        sink.close()
    assert isinstance(open_sink(str(tmp_path / "o.png"), fps=25), ImageSink)  # fps ignored by images
    assert open_sink(str(tmp_path / "new_folder") + "/").folder_mode
    assert open_sink(str(tmp_path)).folder_mode
    assert isinstance(open_sink("udp://127.0.0.1:5000", fps=30), StreamSink)
    assert open_sink("rtmp://127.0.0.1/live/x", fps=30).format == "flv"
    with pytest.raises(SinkError) as e:
        open_sink(str(tmp_path / "out.unknown"))
    assert "cannot tell what kind of output" in one_line(e)
    with pytest.raises(SinkError):
        open_sink("/nonexistent/dir/out.mp4", fps=25)
    assert list(tmp_path.iterdir()) == []

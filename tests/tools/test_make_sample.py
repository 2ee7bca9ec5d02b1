"""tools/make_sample.py renders a short clip with audio, and never replaces a file unasked."""
from __future__ import annotations

from pathlib import Path

import pytest


def test_renders_video_and_audio(tool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    av = pytest.importorskip("av")
    out = tmp_path / "clip.mp4"
    tool("make_sample").main([str(out), "--seconds", "0.4", "--size", "64x36", "--fps", "10"])
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (64, 36)
        assert len(c.streams.audio) == 1
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 4
    assert frames[0].std() > 5  # a picture, not a blank frame
    assert not list(tmp_path.glob(".*part*"))  # the temporary file is gone


def test_refuses_to_overwrite(tool, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"mine")
    with pytest.raises(SystemExit) as e:
        tool("make_sample").main([str(out), "--seconds", "0.2", "--size", "32x32"])
    assert e.value.code == 2
    assert out.read_bytes() == b"mine"

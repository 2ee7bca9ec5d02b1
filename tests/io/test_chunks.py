"""Chunk planning, chunk decoding and the remux join (rtstyle.io.chunks), on real clips with audio."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from rtstyle.io.base import SourceError  # noqa: E402
from rtstyle.io.chunks import (ChunkSource, ChunkWriter, count_video_frames, join_chunks, plan_chunks,  # noqa: E402
                               probe_video)
from rtstyle.io.video import VideoFileSink, VideoFileSource  # noqa: E402


def _decoded(path: Path) -> tuple[list[int], list[np.ndarray]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(c.streams.video[0]))
    return [f.pts for f in frames], [f.to_ndarray(format="rgb24") for f in frames]


def _audio_packets(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts, p.size) for p in c.demux(c.streams.audio[0]) if p.dts is not None]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_plan_snaps_to_keyframes_and_covers_every_frame(audio_clip: Path) -> None:
    probe = probe_video(audio_clip)
    assert probe.frame_count == 280 and probe.has_audio
    assert 81 in probe.keyframes  # the clip has a keyframe at 3.24 s
    chunks = plan_chunks(probe, 4.0, warmup_frames=6)
    # the first boundary moves from 4.0 s to the keyframe at 3.24 s; the next is cut at its exact frame
    assert [(c.start, c.stop) for c in chunks] == [(0, 81), (81, 181), (181, 280)]
    assert [c.warmup_from for c in chunks] == [0, 75, 175]
    assert chunks[1].start_s == pytest.approx(3.24) and chunks[-1].end_s == pytest.approx(11.2)
    # a scene cut near the target wins over the keyframe (a stateful filter restarts there anyway)
    assert [c.start for c in plan_chunks(probe, 4.0, cuts=[90, 200])][:2] == [0, 90]
    # no chunks, a short tail merged, max_frames
    assert len(plan_chunks(probe, 0)) == 1
    assert [(c.start, c.stop) for c in plan_chunks(probe, 10.0)] == [(0, 280)]
    assert plan_chunks(probe, 2.0, max_frames=120)[-1].stop == 120


def test_chunks_joined_without_reencoding_keep_every_frame_and_the_audio(audio_clip: Path, tmp_path: Path) -> None:
    """Decode chunks (with warm-up frames that are not written), encode each, join: the result has the
    input's frames at the input's timestamps, the audio once, and matches a one-piece encode."""
    probe = probe_video(audio_clip)
    chunks = plan_chunks(probe, 4.0, warmup_frames=5)
    parts = []
    for c in chunks:
        part = tmp_path / f"part{c.index}.mp4"
        writer = ChunkWriter(VideoFileSink(part, fps=probe.fps, time_base=probe.time_base), c)
        with ChunkSource(probe, c) as src:
            for f in src:
                writer.write(f)
        writer.close()
        assert writer.frames_written == c.frames
        assert count_video_frames(part) == c.frames
        parts.append(part)
    joined = tmp_path / "joined.mp4"
    n = join_chunks(parts, joined, fps=probe.fps, audio_from=audio_clip,
                    expected_pts=[probe.seconds(i) for i in range(probe.frame_count)])
    assert n == 280 and joined.is_file()
    assert not list(tmp_path.glob(".*part*"))  # the temp file was renamed

    single = tmp_path / "single.mp4"
    sink = VideoFileSink(single, fps=probe.fps, time_base=probe.time_base, audio_from=audio_clip)
    with VideoFileSource(audio_clip) as src:
        for f in src:
            sink.write(f)
    sink.close()

    pts_j, img_j = _decoded(joined)
    pts_s, img_s = _decoded(single)
    assert pts_j == list(probe.pts) == pts_s  # every frame, in order, at the input's timestamps
    assert min(_psnr(a, b) for a, b in zip(img_j, img_s)) >= 35.0
    audio = _audio_packets(joined)
    assert audio and audio == _audio_packets(single)  # copied once, cut where the one-piece sink cuts


def _damage(src: Path, dst: Path, t0: float, t1: float) -> None:
    """Copy ``src`` with the video packets shown in [t0, t1) zeroed (the container stays readable)."""
    shutil.copy(src, dst)
    with av.open(str(src)) as c:
        v = c.streams.video[0]
        spans = [(p.pos, p.size) for p in c.demux(v)
                 if p.pts is not None and p.pos is not None and t0 <= float(p.pts * v.time_base) < t1]
    with open(dst, "r+b") as f:
        for pos, size in spans:
            f.seek(pos)
            f.write(b"\0" * size)


def test_a_damaged_range_fails_its_chunk_only(audio_clip: Path, tmp_path: Path, one_line) -> None:
    bad = tmp_path / "damaged.mp4"
    _damage(audio_clip, bad, 3.2, 3.6)
    probe = probe_video(bad)  # packets only: the damage is not visible yet
    assert probe.frame_count == 280
    results = {}
    for c in plan_chunks(probe, 2.0, max_frames=200):
        try:
            with ChunkSource(probe, c) as src:
                results[c.index] = sum(1 for _ in src)
        except SourceError as e:
            results[c.index] = one_line(e)
    assert results[0] == 50 and results[2] == 50 and results[3] == 50
    assert isinstance(results[1], str) and "2.000-4.000 s" in results[1] and str(bad) in results[1]


def test_probe_and_count_refuse_what_is_not_a_video(tmp_path: Path, one_line) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(SourceError) as e:
        probe_video(junk)
    assert str(junk) in one_line(e)
    assert count_video_frames(junk) is None and count_video_frames(tmp_path / "missing.mp4") is None

"""Batch stylisation on Ray (rtstyle.distributed, ``rtstyle stylize --ray``) with a real local cluster.

One embedded cluster (2 CPUs) serves the module; clips are short and stylised small (eager, 120 px).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from helpers import audio_packets as _audio, input_pts as _input_pts, psnr as _psnr, video_frames as _frames  # noqa: E402
from rtstyle.cli import main as _main  # noqa: E402


def main(argv: list[str]) -> int:
    return _main(["-q", *argv])  # no progress bars in the tests

SAMPLE = Path(__file__).resolve().parents[1] / "rtstyle" / "assets" / "sample.mp4"  # 4 s, 25 fps, AAC audio
FAST = ["-b", "eager", "--size", "120"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def single_swap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process output the chunked run is compared with (a swap with a crossfade at frame 37)."""
    out = tmp_path_factory.mktemp("single") / "single.mp4"
    assert _one_process(["stylize", str(SAMPLE), "-o", str(out), *FAST, "--swap", "#37=johnson.wave_lite",
                         "--crossfade", "4"]) == 0
    return out


def _one_process(argv: list[str]) -> int:
    """The single-process run, with one torch thread as each worker has (and immune to OpenMP threads
    spinning on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_chunked_output_is_frame_exact_and_matches_one_process(ray_cluster, single_swap: Path, tmp_path: Path) -> None:
    """Chunks of 1.5 s, a --swap with a 4-frame crossfade that starts one frame before a chunk boundary:
    the joined file has every frame at the input's timestamps, the input's audio once, and is within
    35 dB of the single-process output on every frame (the fade continues across the seam)."""
    out, report = tmp_path / "chunked.mp4", tmp_path / "report.json"
    rc = main(["stylize", str(SAMPLE), "-o", str(out), *FAST, "--swap", "#37=johnson.wave_lite", "--crossfade", "4",
               "--ray", "--chunk-seconds", "1.5", "--report", str(report)])
    assert rc == 0
    rep = json.loads(report.read_text())
    assert rep["chunks"] == 3 and rep["retried_chunks"] == 0 and rep["skipped"] == 0 and rep["workers"] == 2
    assert rep["frames_out"] == rep["frames_expected"] == 100
    assert [c["chunk"] for c in sorted(rep["chunk_times"], key=lambda c: c["chunk"])] == [0, 1, 2]
    assert all(c["wall_s"] > 0 and c["warmup"] == (4 if c["chunk"] else 0) for c in rep["chunk_times"])
    assert sorted(c["start_s"] for c in rep["chunk_times"]) == [0.0, 1.52, 3.04]  # boundary at frame 38

    pts_c, img_c = _frames(out)
    pts_s, img_s = _frames(single_swap)
    assert pts_c == _input_pts(SAMPLE) == pts_s
    psnr = [_psnr(a, b) for a, b in zip(img_c, img_s)]
    assert min(psnr) >= 35.0, f"worst frame {int(np.argmin(psnr))}: {min(psnr):.1f} dB"
    assert _audio(out) and _audio(out) == _audio(single_swap)  # the input's audio, once, cut as one process cuts it
    assert _leftovers(tmp_path) == []  # no chunk folder, no temp file


def test_a_worker_killed_mid_chunk_is_retried(ray_cluster, tmp_path: Path) -> None:
    from rtstyle.distributed import BatchOptions, StylizerRecipe, run_batch

    killed: list[tuple[str, int]] = []

    def kill_one(snap) -> None:
        for key, (pid, frames) in snap.running.items():
            if not killed and key.endswith("#1") and frames >= 3:
                os.kill(pid, signal.SIGKILL)  # a worker of this job, mid-chunk
                killed.append((key, pid))

    out = tmp_path / "out.mp4"
    recipe = StylizerRecipe.plain("johnson.starry_night_lite", backend="eager", size=120)
    rep = run_batch(SAMPLE, out, recipe, options=BatchOptions(chunk_seconds=2.0), progress=False,
                    on_progress=kill_one)
    assert killed, "no chunk was seen running"
    assert rep["failed"] == [] and rep["retried_chunks"] == 1 and rep["chunks"] == 2
    assert {c["chunk"]: c["attempts"] for c in rep["chunk_times"]} == {0: 1, 1: 2}
    assert next(c["pid"] for c in rep["chunk_times"] if c["chunk"] == 1) != killed[0][1]
    assert _frames(out)[0] == _input_pts(SAMPLE)  # every frame, in order, at its timestamp
    assert _leftovers(tmp_path) == []


def test_a_chunk_whose_worker_dies_every_time_fails_in_one_line(ray_cluster, tmp_path: Path) -> None:
    from rtstyle.distributed import BatchOptions, StylizerRecipe, run_batch

    killed: set[int] = set()

    def kill_every_attempt(snap) -> None:
        for key, (pid, frames) in snap.running.items():
            if key.endswith("#1") and frames >= 2 and pid not in killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)

    out = tmp_path / "out.mp4"
    recipe = StylizerRecipe.plain("johnson.starry_night_lite", backend="eager", size=120)
    rep = run_batch(SAMPLE, out, recipe, options=BatchOptions(chunk_seconds=2.0, retries=1), progress=False,
                    on_progress=kill_every_attempt)
    assert len(killed) == 2  # the first attempt and its one retry
    (fail,) = rep["failed"]
    assert fail["error"].startswith(f"{SAMPLE} chunk 2 of 2 (2.000-4.000 s) failed after 2 attempts: ")
    assert "\n" not in fail["error"] and rep["written"] == 0
    assert not out.exists() and _leftovers(tmp_path) == []


def test_folder_job_resumes_names_bad_files_and_redoes_with_y(ray_cluster, tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copy(SAMPLE, src / name)
    (src / "broken.mp4").write_bytes(b"\0" * 4096)
    args = ["stylize", str(src), "-o", str(out), *FAST, "--max-frames", "12", "--ray"]

    assert main([*args, "--report", str(tmp_path / "r1.json")]) == 1  # the broken file fails, the others finish
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("rtstyle: error:")]
    assert len(lines) == 1 and "1 of 3 files failed: broken.mp4" in lines[0]
    r1 = json.loads((tmp_path / "r1.json").read_text())
    assert r1["written"] == 2 and r1["skipped"] == 0 and [Path(f["input"]).name for f in r1["failed"]] == ["broken.mp4"]
    for name in ("a.mp4", "b.mp4"):
        assert _frames(out / name)[0] == _input_pts(SAMPLE)[:12]
        assert _audio(out / name)  # the audio is copied, as one process does
    assert not (out / "broken.mp4").exists() and _leftovers(out) == []

    (src / "broken.mp4").unlink()
    stamp = (out / "a.mp4").stat().st_mtime_ns
    assert main([*args, "--report", str(tmp_path / "r2.json")]) == 0  # rerun: both complete, skipped
    r2 = json.loads((tmp_path / "r2.json").read_text())
    assert r2["skipped"] == 2 and r2["written"] == 0 and (out / "a.mp4").stat().st_mtime_ns == stamp

    (out / "b.mp4").write_bytes((out / "b.mp4").read_bytes()[:3000])  # not a complete output any more
    assert main(args) == 1
    assert "b.mp4" in capsys.readouterr().err and (out / "a.mp4").stat().st_mtime_ns == stamp
    assert main([*args, "-y", "--report", str(tmp_path / "r3.json")]) == 0  # -y redoes everything
    r3 = json.loads((tmp_path / "r3.json").read_text())
    assert r3["written"] == 2 and r3["skipped"] == 0
    assert _frames(out / "b.mp4")[0] == _input_pts(SAMPLE)[:12]


def test_a_chunk_failing_every_retry_is_one_line_and_leaves_nothing(ray_cluster, videos: Path, tmp_path: Path,
                                                                     capsys) -> None:
    """A clip damaged at 3.2-3.6 s (real packets zeroed): that chunk fails on every attempt."""
    audio_clip_path = videos / "moviepy_video_with_failing_audio.mp4"
    if not audio_clip_path.exists():
        pytest.skip(f"needs {audio_clip_path}")
    bad = tmp_path / "damaged.mp4"
    shutil.copy(audio_clip_path, bad)
    with av.open(str(audio_clip_path)) as c:
        v = c.streams.video[0]
        spans = [(p.pos, p.size) for p in c.demux(v) if p.pts is not None and 3.2 <= float(p.pts * v.time_base) < 3.6]
    with open(bad, "r+b") as f:
        for pos, size in spans:
            f.seek(pos)
            f.write(b"\0" * size)
    out = tmp_path / "out.mp4"
    rc = main(["stylize", str(bad), "-o", str(out), *FAST, "--ray", "--chunk-seconds", "2", "--max-frames", "150"])
    assert rc == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    # a damaged range fails the same way every time: reported at once, not retried
    assert lines[0].startswith(f"rtstyle: error: {bad} chunk 2 of 3 (2.000-4.000 s) failed after 1 attempt: "
                               f"cannot decode {bad} in 2.000-4.000 s: damaged frame at 3.")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_without_ray_one_line_names_the_extra(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    rc = main(["stylize", str(SAMPLE), "-o", str(tmp_path / "o.mp4"), "--ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("rtstyle: error: --ray needs Ray") and "pip install 'rtstyle[ray]'" in err[0]
    assert not any(tmp_path.iterdir())


def test_refuses_the_input_as_output(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    clip = tmp_path / "clip.mp4"
    shutil.copy(SAMPLE, clip)
    before = clip.read_bytes()
    assert main(["stylize", str(clip), "-o", str(clip), "--ray"]) == 1
    assert "it is the input file" in capsys.readouterr().err and clip.read_bytes() == before


def _ray_processes_since(t0: float) -> list[int]:
    """Pids of raylet / GCS processes started after ``t0`` (seconds since the epoch)."""
    ticks, boot = os.sysconf("SC_CLK_TCK"), 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime"):
            boot = float(line.split()[1])
    found = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
            started = boot + int((d / "stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        except (OSError, ValueError, IndexError):
            continue
        if (b"raylet" in cmd or b"gcs_server" in cmd) and started >= t0 - 1:
            found.append(int(d.name))
    return found


@pytest.mark.slow
def test_ctrl_c_stops_workers_leaves_nothing_and_shuts_the_cluster_down(videos: Path, tmp_path: Path) -> None:
    import subprocess
    import time

    pytest.importorskip("ray")
    clip = videos / "moviepy_video_with_failing_audio.mp4"
    if not clip.exists():
        pytest.skip(f"needs {clip}")
    out = tmp_path / "out.mp4"
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "rtstyle.cli", "-q", "stylize", str(clip), "-o", str(out), *FAST,
                             "--ray", "--chunk-seconds", "3"], stderr=subprocess.PIPE, text=True)
    chunks = tmp_path / ".out.mp4.chunks"
    deadline = time.time() + 240
    while time.time() < deadline and not (chunks.is_dir() and any(chunks.iterdir())):
        time.sleep(0.2)  # wait until workers are writing chunks
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    assert not out.exists() and not any(tmp_path.iterdir())  # no output, no chunk folder, no temp file
    time.sleep(2)
    assert _ray_processes_since(t0) == []  # the cluster started for the job is gone


@pytest.mark.slow
def test_temporal_chunks_start_at_a_scene_cut_without_a_seam(ray_cluster, videos: Path, tmp_path: Path) -> None:
    """--temporal: a boundary placed on a scene cut (where the filter restarts in one process too)
    gives the one-process frames after it: only encoder differences remain (>= 38 dB), while the
    first chunk is the one-process encode itself up to its last frames."""
    from rtstyle.frame import Frame
    from rtstyle.io.video import VideoFileSink, VideoFileSource

    other = videos / "moviepy_video_with_failing_audio.mp4"  # 640x360 like the sample
    if not other.exists():
        pytest.skip(f"needs {other}")
    clip = tmp_path / "cut.mp4"
    sink = VideoFileSink(clip, fps=25.0)
    i = 0
    for src_path in (SAMPLE, other):  # 3 s of one real clip, then 3 s of another: a cut at frame 75
        with VideoFileSource(src_path) as src:
            for k, f in enumerate(src):
                if k >= 75:
                    break
                sink.write(Frame(f.image, i, pts=i / 25.0))
                i += 1
    sink.close()
    single, chunked, report = tmp_path / "single.mp4", tmp_path / "chunked.mp4", tmp_path / "r.json"
    assert _one_process(["stylize", str(clip), "-o", str(single), *FAST, "--temporal", "0.8"]) == 0
    assert main(["stylize", str(clip), "-o", str(chunked), *FAST, "--temporal", "0.8", "--ray",
                 "--chunk-seconds", "2.5", "--report", str(report)]) == 0
    rep = json.loads(report.read_text())
    assert sorted(c["start"] for c in rep["chunk_times"]) == [0, 75]  # moved from 2.5 s to the cut at 3.0 s
    _, a = _frames(single)
    _, b = _frames(chunked)
    psnr = [_psnr(x, y) for x, y in zip(a, b)]
    assert len(a) == len(b) == 150
    assert min(psnr[:60]) >= 90.0  # the same encoder on the same frames: identical
    assert min(psnr[75:]) >= 38.0, f"after the cut: {min(psnr[75:]):.1f} dB"

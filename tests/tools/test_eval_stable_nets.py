"""tools/eval_stable_nets.py: two shipped nets compared on one short clip, Sintel and the live source
(the Sintel and live cases always run: slow)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_small_run(tool, tmp_path: Path, shared: Path, vgg16_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    out = tmp_path / "s.json"
    assert tool("eval_stable_nets").main([
        "--pair", "johnson.starry_night_lite=johnson.wave_lite", "--style", str(shared / "media/styles/wave.jpg"),
        "--frames", "3", "--max-size", "96x72", "--loss-frames", "2", "--live-frames", "6", "--live-fps", "10",
        "--timing-reps", "2", "--clips", "imageio_realshort.mp4", "--json", str(out),
        "--live-background", str(shared / "media/photos/content/palapeli_cincinnati-bridge.jpg")]) == 0
    report = json.loads(out.read_text())
    (pair,) = report["pairs"]
    assert report["live_background"].endswith("palapeli_cincinnati-bridge.jpg")
    # the textured synthetic scene moves by the known step: the input itself warps exactly, the nets do not
    for mode in ("synthetic_live", "synthetic_unpaced"):
        for side in ("old", "new"):
            run = pair[mode][side]
            assert run["input_warping_error"] < 1e-5 and run["warping_error"] > 1e-4, (mode, side, run)
    assert (pair["old"], pair["new"]) == ("johnson.starry_night_lite", "johnson.wave_lite")
    clip = pair["cases"]["imageio_realshort.mp4"]
    assert clip["we_old"] > 0 and clip["we_new"] > 0 and clip["we_ratio"] == clip["we_new"] / clip["we_old"]
    assert {"sintel_easy_gt", "sintel_medium_gt", "sintel_hard_gt"} <= set(pair["cases"])
    assert pair["time_per_frame_s"]["old"] > 0


def test_refuses_a_net_on_clips_its_video_loss_saw(tool, tmp_path: Path, shared: Path, vgg16_path: Path) -> None:
    from helpers import small_training_folders, train_tiny_with_video

    content, _ = small_training_folders(shared, tmp_path, styles=(), photos=2)
    weights = train_tiny_with_video(shared, vgg16_path, content, tmp_path / "run")
    mod = tool("eval_stable_nets")
    assert mod.seen_clips(str(weights), ["imageio_realshort.mp4", "synthetic", "easy"]) == ["synthetic"]
    with pytest.raises(SystemExit):  # before any clip is read
        mod.main(["--pair", f"johnson.wave_lite={weights}", "--style", "x.jpg", "--clips", "synthetic"])

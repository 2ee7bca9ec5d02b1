"""The temporal regulariser in the MSG-Net and MetaNet trainers: the generated flags, real training steps
(bf16 autocast) with finite losses recorded in the history and the spec, and weight 0 changing nothing."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rtstyle.training.temporal import TemporalOptions, TemporalTerm

FLAGS = ("--temporal-weight", "--temporal-shift", "--temporal-rotate", "--temporal-zoom", "--temporal-noise",
         "--temporal-jpeg", "--temporal-video", "--temporal-video-weight", "--temporal-video-frames",
         "--temporal-video-stride")


def _resized(sources: list[Path], folder: Path, size: tuple[int, int]) -> Path:
    import cv2

    folder.mkdir(parents=True)
    for p in sources:
        cv2.imwrite(str(folder / p.name), cv2.resize(cv2.imread(str(p)), size))
    return folder


@pytest.fixture(scope="module")
def folders(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Four real photos at 80x64 and two paintings at 128x96."""
    root = tmp_path_factory.mktemp("temporal_trainers")
    photos = sorted((shared / "media" / "photos" / "train_256").glob("*.jpg"))[:4]
    paintings = [shared / "media" / "styles" / f"{name}.jpg" for name in ("starry_night", "mondrian")]
    return _resized(photos, root / "data", (80, 64)), _resized(paintings, root / "styles", (128, 96))


def _args(family: str, data: Path, styles: Path) -> list[str]:
    return {
        "msgnet": ["--styles", str(styles), "--data", str(data), "--style-sizes", "48", "--bank-sizes", "48",
                   "--ngf", "8", "--n-blocks", "1", "--stem", "8", "--down1", "4", "--up1", "4", "--up2", "4"],
        "metanet": ["--content", str(data), "--styles", str(styles), "--style-size", "48", "--style-every", "2",
                    "--width", "4", "--n-res", "1", "--hidden", "4", "--rank", "2"],
    }[family]


def _train(family: str, folders: tuple[Path, Path], vgg16_path: Path, out: Path, *extra: str
           ) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Three real steps through ``rtstyle train FAMILY`` (bf16 autocast on any host); (history, spec extra)."""
    from rtstyle.cli import main
    from rtstyle.models import create_model

    argv = ["-q", "train", family, *_args(family, *folders), "--out", str(out), "--vgg", str(vgg16_path),
            "--steps", "3", "--batch", "2", "--size", "32", "--preview-every", "0", "--amp", "bf16", *extra]
    assert main(argv) == 0
    hist = json.loads((out / "history.json").read_text())
    (weights,) = out.glob("*.safetensors")
    model = create_model(f"{family}:{weights}", **({"vgg": vgg16_path} if family == "metanet" else {}))
    return hist, model.spec.extra


@pytest.mark.parametrize("family", ["johnson", "msgnet", "metanet"])
def test_the_generated_cli_has_the_temporal_flags(family: str) -> None:
    from rtstyle.cli.train import TRAINERS, flag_fields

    (trainer,) = [t for t in TRAINERS if t.name == family]
    config = trainer.load_config()
    assert issubclass(config, TemporalOptions)
    flags = {flag: f for flag, f, _, _ in flag_fields(config)}
    shared = {f.name: f for f in dataclasses.fields(TemporalOptions)}
    for flag in FLAGS:  # the same default and help in every family: written once
        f = flags[flag]
        assert f.default == shared[f.name].default and f.metadata["help"] == shared[f.name].metadata["help"]
    assert flags["--temporal-weight"].default == 0.0


@pytest.mark.parametrize("family", ["msgnet", "metanet"])
def test_temporal_steps_and_weight_zero(family: str, folders: tuple[Path, Path], vgg16_path: Path,
                                        tmp_path: Path) -> None:
    off, off_spec = _train(family, folders, vgg16_path, tmp_path / "off")
    # weight 0 with other transforms: the very same run (the term is not even computed)
    off2, _ = _train(family, folders, vgg16_path, tmp_path / "off2", "--temporal-shift", "2", "--temporal-noise", "0.05")
    on, on_spec = _train(family, folders, vgg16_path, tmp_path / "on", "--temporal-weight", "1e6",
                         "--temporal-shift", "3", "--temporal-rotate", "2", "--temporal-noise", "0.02")

    assert off == off2 and all("temporal" not in h for h in off)
    assert len(on) == 3 and all(np.isfinite([h["content"], h["style"], h["temporal"]]).all() for h in on)
    assert all(h["temporal"] > 0 for h in on)
    # the term is added on top: the first step (same initial net, data and style) has the same other losses
    assert (on[0]["content"], on[0]["style"]) == (off[0]["content"], off[0]["style"])
    assert on[-1]["content"] != off[-1]["content"]  # and the term did train the net

    assert off_spec["weights"]["temporal"] == 0.0 and off_spec["temporal_regulariser"] is None
    reg = on_spec["temporal_regulariser"]
    assert on_spec["weights"]["temporal"] == 1e6 and on_spec["weights"]["content"] == 1e5
    assert (reg["weight"], reg["shift_px"], reg["rotate_deg"], reg["zoom"], reg["noise_std"]) == (1e6, 3.0, 2.0, 0.02, 0.02)
    assert "Wang" in reg["method"] and reg["mask_margin_px"] == 2


def test_term_off_returns_the_loss_itself_and_bad_weights_are_refused() -> None:
    from rtstyle.training._loop import resolve_amp

    amp = resolve_amp("fp32", "cpu")
    x = torch.rand(1, 3, 16, 16)
    loss, logged = torch.tensor(1.5), {}
    calls = []
    net = lambda z: calls.append(1) or z  # noqa: E731
    assert TemporalTerm(TemporalOptions(), 0).add(loss, logged, net, x, x, amp) is loss and not logged and not calls
    term = TemporalTerm(TemporalOptions(temporal_weight=10.0, temporal_noise=0.0), 0)
    total = term.add(loss, logged, net, x, x, amp)  # an identity net commutes with the warp: ~0 added
    assert calls and logged["temporal"] == pytest.approx(0.0, abs=1e-9) and float(total) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="temporal weight"):
        TemporalOptions(temporal_weight=-1.0).temporal_reg()
    with pytest.raises(ValueError, match="temporal shift"):
        TemporalTerm(TemporalOptions(temporal_shift=-1.0), 0)

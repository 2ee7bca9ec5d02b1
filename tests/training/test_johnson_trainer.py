"""A few real training steps on real photos: losses fall, checkpoints resume, output loads."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtstyle.models import create_model
from rtstyle.training.johnson import JohnsonTrainConfig, train_johnson


@pytest.fixture()
def tiny_data(shared: Path, tmp_path: Path) -> Path:
    import cv2

    d = tmp_path / "data"
    d.mkdir()
    for i, p in enumerate(sorted((shared / "media" / "photos" / "train_256").glob("*"))[:6]):
        img = cv2.imread(str(p))
        cv2.imwrite(str(d / f"{i}.jpg"), cv2.resize(img, (80, 64)))
    return d


def test_train_resume_and_load(shared: Path, vgg16_path: Path, tiny_data: Path, tmp_path: Path) -> None:
    style = shared / "media" / "styles" / "starry_night.jpg"
    out = tmp_path / "run"
    cfg = JohnsonTrainConfig(style=str(style), data=str(tiny_data), out=str(out), name="johnson.tiny", vgg=str(vgg16_path),
                             steps=12, batch=2, size=48, style_size=96, width=4, n_res=1, lr=1e-2,
                             checkpoint_every=4, preview_every=6, command="test")
    path = train_johnson(cfg, progress=False)
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 12
    style_losses = [h["style"] for h in hist]
    assert np.mean(style_losses[-3:]) < np.mean(style_losses[:3]), "style loss did not fall"
    assert (out / "preview_000006.jpg").exists()
    m = create_model(path)
    assert m.spec.name == "johnson.tiny" and m.spec.extra["steps"] == 12
    # resume: more steps continue from the checkpoint, not from scratch
    cfg.steps = 14
    train_johnson(cfg, progress=False)
    hist2 = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist2] == list(range(1, 15)), "the loss history must survive a resume"

"""A few real MSG-Net training steps on real photos and paintings: losses fall, resume, bank, load."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtstyle.models import create_model
from rtstyle.training.msgnet import MSGNetTrainConfig, train_msgnet


@pytest.fixture()
def folders(shared: Path, tmp_path: Path) -> tuple[Path, Path]:
    import cv2

    data, styles = tmp_path / "data", tmp_path / "styles"
    data.mkdir()
    styles.mkdir()
    for i, p in enumerate(sorted((shared / "media" / "photos" / "train_256").glob("*"))[:6]):
        cv2.imwrite(str(data / f"{i}.jpg"), cv2.resize(cv2.imread(str(p)), (80, 64)))
    for name in ("starry_night", "mondrian"):
        img = cv2.imread(str(shared / "media" / "styles" / f"{name}.jpg"))
        cv2.imwrite(str(styles / f"{name}.jpg"), cv2.resize(img, (128, 96)))
    return data, styles


def test_train_resume_bank_and_load(vgg16_path: Path, folders: tuple[Path, Path], tmp_path: Path) -> None:
    data, styles = folders
    out = tmp_path / "run"
    cfg = MSGNetTrainConfig(styles=str(styles), data=str(data), out=str(out), name="msgnet.tiny", vgg=str(vgg16_path),
                            steps=16, batch=2, size=48, style_sizes=(48, 96), bank_sizes=(48, 72, 96),
                            ngf=4, n_blocks=1, stem=8, down1=4, up1=4, up2=4, lr=1e-2,
                            checkpoint_every=4, preview_every=8, command="test")
    path = train_msgnet(cfg, progress=False)
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 16 and {h["style_index"] for h in hist} == {0, 1}  # styles alternate
    assert all(np.isfinite(h["content"]) and np.isfinite(h["style"]) for h in hist)
    total = [h["style"] + h["content"] for h in hist]
    assert np.mean(total[-4:]) < np.mean(total[:4]), "loss did not fall"
    assert (out / "preview_000008.jpg").exists()

    model = create_model(f"msgnet:{path}")
    assert model.spec.styles == ("mondrian", "starry_night") and model.spec.extra["steps"] == 16
    assert model.bank.sizes("mondrian") == [48, 72, 96]
    assert model.spec.extra["style_sizes"] == [48, 96]

    cfg.steps = 18  # resume continues from the checkpoint
    train_msgnet(cfg, progress=False)
    hist2 = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist2] == list(range(1, 19))

    cfg.ngf = 8  # another architecture cannot resume this run
    with pytest.raises(ValueError, match="ngf"):
        train_msgnet(cfg, progress=False)

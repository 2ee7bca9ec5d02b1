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


def _tiny(**kw: object) -> MSGNetTrainConfig:
    return MSGNetTrainConfig(**{"name": "msgnet.tiny", "batch": 2, "size": 48, "style_sizes": (48, 96),
                                "bank_sizes": (48, 96), "ngf": 4, "n_blocks": 1, "stem": 8, "down1": 4, "up1": 4,
                                "up2": 4, "lr": 1e-2, "checkpoint_every": 4, "preview_every": 0, "command": "test",
                                **kw})


def test_extra_styles_train_outside_the_bank_held_out_never(vgg16_path: Path, folders: tuple[Path, Path],
                                                           shared: Path, tmp_path: Path) -> None:
    import cv2

    from rtstyle.eval.arbitrary import HELD_OUT_STYLES

    data, styles = folders
    extra = tmp_path / "extra"
    extra.mkdir()
    for src in [shared / "media/styles/the_scream.jpg", shared / "media/styles/wave.jpg",
                shared / "media/styles/public_domain" / f"{HELD_OUT_STYLES[1]}.jpg"]:  # the last: held out
        cv2.imwrite(str(extra / src.name), cv2.resize(cv2.imread(str(src)), (128, 96)))
    cfg = _tiny(styles=str(styles), data=str(data), out=str(tmp_path / "run"), vgg=str(vgg16_path),
                extra_styles=(str(extra),), style_hue=1.0, steps=8)
    path = train_msgnet(cfg, progress=False)
    hist = json.loads((tmp_path / "run/history.json").read_text())
    assert {h["style_index"] for h in hist} == {0, 1, 2, 3}  # 2 bank + 2 extra styles; the held-out one never
    assert all(np.isfinite(h["style"]) for h in hist)  # hue-rotated targets too
    model = create_model(f"msgnet:{path}")
    assert model.spec.styles == ("mondrian", "starry_night")  # the bank: the style folder only
    extra_rec = model.spec.extra
    assert extra_rec["extra_styles"] == {"folders": ["extra"], "images": 2}
    assert HELD_OUT_STYLES[1] in extra_rec["held_out_styles"] and extra_rec["style_hue"] == 1.0

    # --init-from: a run starts exactly at a trained net of its architecture (0 steps: its weights)
    start = train_msgnet(_tiny(styles=str(styles), data=str(data), out=str(tmp_path / "warm"), vgg=str(vgg16_path),
                               init_from=str(path), steps=0), progress=False)
    a, b = model.net.state_dict(), create_model(f"msgnet:{start}").net.state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert create_model(f"msgnet:{start}").spec.extra["initialised_from"] == str(path)
    with pytest.raises(ValueError, match="architecture"):
        train_msgnet(_tiny(styles=str(styles), data=str(data), out=str(tmp_path / "other"), vgg=str(vgg16_path),
                           init_from=str(path), steps=0, ngf=8), progress=False)


def test_distillation_from_a_teacher(vgg16_path: Path, folders: tuple[Path, Path], tmp_path: Path) -> None:
    """``teacher``: added on top of the other losses (same first step), logged every step with the hue-rotated
    styles too, recorded in the spec."""
    data, styles = folders
    off = train_msgnet(_tiny(styles=str(styles), data=str(data), out=str(tmp_path / "off"), vgg=str(vgg16_path),
                             steps=3, style_hue=0.5), progress=False)
    on = train_msgnet(_tiny(styles=str(styles), data=str(data), out=str(tmp_path / "on"), vgg=str(vgg16_path),
                            steps=3, style_hue=0.5, teacher="linear.r31", teacher_style_size=96), progress=False)
    h_off = json.loads((tmp_path / "off/history.json").read_text())
    h_on = json.loads((tmp_path / "on/history.json").read_text())
    assert all(np.isfinite(h["teacher"]) and h["teacher"] > 0 for h in h_on)
    assert (h_on[0]["content"], h_on[0]["style"]) == pytest.approx((h_off[0]["content"], h_off[0]["style"]))
    assert create_model(f"msgnet:{on}").spec.extra["teacher"]["model"] == "linear.r31"
    assert create_model(f"msgnet:{off}").spec.extra["teacher"] is None

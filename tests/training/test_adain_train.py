"""The AdaIN decoder trainer: a few real steps on real photos and styles, resume, held-out styles,
the decoder file it writes (loads, records the encoder's checksum) and the CLI's bad-input case."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from helpers import small_training_folders

from rtstyle.models.vgg_adain import EncoderMismatchError, load_decoder_file, load_pair, load_vgg16_encoder
from rtstyle.training.adain import AdaINTrainConfig, train_adain

STYLES = ("candy", "starry_night", "the_scream")


@pytest.fixture()
def data(shared: Path, tmp_path: Path) -> tuple[Path, Path]:
    return small_training_folders(shared, tmp_path, styles=STYLES)


def _cfg(data: tuple[Path, Path], out: Path, vgg: Path, **kw) -> AdaINTrainConfig:
    base = dict(content=str(data[0]), styles=str(data[1]), out=str(out), name="adain.tiny", vgg=str(vgg), steps=3,
                batch=2, size=32, base=4, checkpoint_every=2, preview_every=0, command="test")
    return AdaINTrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_train_writes_a_loadable_decoder_and_resumes(data: tuple[Path, Path], vgg16_path: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    cfg = _cfg(data, out, vgg16_path)
    path = train_adain(cfg, progress=False)
    assert path == out / "adain_tiny.safetensors" and path.is_file()
    sha = load_vgg16_encoder(vgg16_path).sha256

    dec, meta = load_decoder_file(path)
    assert dec.base == 4 and meta["encoder_sha256"] == sha
    spec = json.loads(meta["spec"])
    assert spec["name"] == "adain.tiny" and spec["family"] == "adain" and spec["size_multiple"] == 8
    assert spec["extra"]["steps"] == 3 and spec["extra"]["encoder_sha256"] == sha
    assert spec["extra"]["held_out_styles"] == [] and spec["extra"]["decoder_base"] == 4
    enc, dec2, _ = load_pair(path, vgg16_path)  # the checksum matches: no refusal
    with torch.no_grad():
        y = dec2(enc(torch.rand(1, 3, 32, 48)))
    assert y.shape == (1, 3, 32, 48) and torch.isfinite(y).all()

    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [1, 2, 3]
    assert all(math.isfinite(h["content"]) and math.isfinite(h["style"]) and h["style"] > 0 for h in hist)
    ck = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ck["step"] == 3 and ck["encoder_sha256"] == sha
    assert list((out).glob("preview_*.jpg")), "a final preview is written"

    # resume: one more step continues from the step-3 checkpoint, keeping the history
    cfg.steps = 4
    with caplog.at_level(logging.INFO, logger="rtstyle.training"):
        path2 = train_adain(cfg, progress=False)
    assert any("resumed from" in r.getMessage() and "step 3" in r.getMessage() for r in caplog.records)
    hist2 = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist2] == [1, 2, 3, 4]
    assert hist2[:3] == hist, "the first three steps must be those of the first run"
    assert torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["step"] == 4
    dec4, meta4 = load_decoder_file(path2)
    assert json.loads(meta4["spec"])["extra"]["steps"] == 4
    # the fourth step started from the trained weights: they moved by one small Adam step only
    diff = max(float((a - b).abs().max()) for a, b in zip(dec.state_dict().values(), dec4.state_dict().values()))
    assert 0 < diff < 0.01

    # an architecture change is refused on resume rather than silently restarting
    with pytest.raises(ValueError, match="base"):
        train_adain(_cfg(data, out, vgg16_path, steps=5, base=8), progress=False)
    # so is another encoder: the decoder would be half trained against each, labelled with the second
    sd = torch.load(vgg16_path, map_location="cpu", weights_only=True)
    other = tmp_path / "other_vgg16.pth"
    torch.save({k: v for k, v in sd.items() if int(k.split(".")[1]) <= 17}, other)  # same net, other file
    with pytest.raises(EncoderMismatchError, match=sha[:16]):
        train_adain(_cfg(data, out, other, steps=5), progress=False)
    assert json.loads((out / "history.json").read_text()) == hist2


def test_exclude_holds_styles_out(data: tuple[Path, Path], vgg16_path: Path, tmp_path: Path,
                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="rtstyle.training"):
        path = train_adain(_cfg(data, tmp_path / "ex", vgg16_path, steps=1, exclude=("candy.jpg", "the_scream")),
                           progress=False)
    assert any("1 style images" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    _, meta = load_decoder_file(path)
    assert json.loads(meta["spec"])["extra"]["held_out_styles"] == ["candy.jpg", "the_scream"]
    with pytest.raises(FileNotFoundError, match="no images left"):
        train_adain(_cfg(data, tmp_path / "none", vgg16_path, steps=1, exclude=STYLES), progress=False)


def test_cli_train_adain_bad_folders(data: tuple[Path, Path], vgg16_path: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from rtstyle.cli import main

    content, styles = data
    missing = tmp_path / "missing"
    for argv, what in ((["--content", str(missing), "--styles", str(styles)], "content folder"),
                       (["--content", str(content), "--styles", str(missing)], "style folder")):
        rc = main(["-q", "train", "adain", *argv, "--out", str(tmp_path / "o"), "--vgg", str(vgg16_path),
                   "--steps", "1"])
        assert rc == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rtstyle: error:") and what in err[0] and str(missing) in err[0]
        assert "Traceback" not in err[0]
    assert not (tmp_path / "o" / "checkpoint.pt").exists()
    # an empty style folder is a clean error too, not a traceback
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["-q", "train", "adain", "--content", str(content), "--styles", str(empty), "--out",
                 str(tmp_path / "o2"), "--vgg", str(vgg16_path), "--steps", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rtstyle: error: no images")

"""The relu1_1 / relu2_1 decoder trainer: real steps on real photos and paintings improve the
reconstruction, a rerun resumes, held-out paintings stay out, the file loads as the level's decoder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import small_training_folders

from rtstyle.models.lst import load_decoder, load_encoder
from rtstyle.training.decoder import DecoderTrainConfig, init_from_r31, train_decoder


@pytest.fixture()
def data(shared: Path, tmp_path: Path) -> tuple[Path, Path]:
    return small_training_folders(shared, tmp_path, side=48)


def _psnr(dec: torch.nn.Module, enc: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        y = dec(enc(x)).clamp(0, 1)
    return float(10 * np.log10(1.0 / torch.mean((y - x) ** 2).item()))


def test_trains_resumes_and_loads(data: tuple[Path, Path], tmp_path: Path, shared_weights: Path,
                                  content_photo: np.ndarray) -> None:
    lst = shared_weights / "lst"
    content, styles = data
    cfg = DecoderTrainConfig(content=str(content), styles=str(styles), out=str(tmp_path / "run"), level=11,
                             encoder=str(lst / "vgg_r31.pth"), decoder31=str(lst / "dec_r31.pth"),
                             exclude=("the_scream",), steps=30, batch=4, size=32, lr=3e-3, checkpoint_every=10,
                             preview_every=0, device="cpu", amp="fp32")
    path = train_decoder(cfg, progress=False)
    dec = load_decoder(11, path)
    enc = load_encoder(11, lst / "vgg_r31.pth")
    from rtstyle.models.lst import LSTDecoder

    init = LSTDecoder(11)
    init_from_r31(init, load_decoder(31, lst / "dec_r31.pth"))
    x = torch.from_numpy(content_photo).permute(2, 0, 1)[None].float() / 255.0
    assert _psnr(dec, enc, x) > _psnr(init.eval(), enc, x) + 3.0  # 30 steps already help, on an unseen photo
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert (meta["steps"], meta["level"], meta["training_styles"], meta["held_out_styles"]) == ("30", "11", "2",
                                                                                               "the_scream")
    # a rerun with more steps resumes from the checkpoint
    cfg.steps = 34
    path = train_decoder(cfg, progress=False)
    with safe_open(str(path), "pt") as f:
        assert f.metadata()["steps"] == "34"


def test_level_31_is_refused(data: tuple[Path, Path], tmp_path: Path) -> None:
    content, styles = data
    with pytest.raises(ValueError, match="11 or 21"):
        train_decoder(DecoderTrainConfig(content=str(content), styles=str(styles), out=str(tmp_path / "r"), level=31),
                      progress=False)


def test_cli_flags() -> None:
    from rtstyle.cli import build_parser
    from rtstyle.cli.train import config_from_args

    args = build_parser().parse_args(["train", "decoder", "--content", "c", "--styles", "s", "--out", "o",
                                      "--level", "11", "--no-init-from-r31", "--exclude", "a"])
    cfg = config_from_args(DecoderTrainConfig, args)
    assert (cfg.level, cfg.init_from_r31, tuple(cfg.exclude), cfg.amp) == (11, False, ("a",), "fp32")

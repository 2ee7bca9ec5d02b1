"""Normalised-VGG19 encoders/decoders (LinearStyleTransfer layout)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.models.lst import LSTDecoder, LSTEncoder, LSTLayoutError, load_decoder, load_encoder
from rtstyle.weights import WeightNotFoundError


@pytest.mark.parametrize("level,channels,down", [(11, 64, 1), (21, 128, 2), (31, 256, 4)])
def test_shapes(level: int, channels: int, down: int) -> None:
    enc, dec = LSTEncoder(level).eval(), LSTDecoder(level).eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        f = enc(x)
        assert f.shape == (1, channels, 32 // down, 48 // down)
        assert dec(f).shape == x.shape
        assert list(enc.features(x)) == ["r11", "r21", "r31"][: (11, 21, 31).index(level) + 1]


def test_key_names_match_the_documented_layout() -> None:
    assert sorted(LSTEncoder(31).state_dict()) == sorted(f"conv{i}.{p}" for i in range(1, 7) for p in ("weight", "bias"))
    assert sorted(LSTDecoder(31).state_dict()) == sorted(f"conv{i}.{p}" for i in range(7, 12) for p in ("weight", "bias"))


def test_r31_reconstructs_a_real_photo(shared_weights: Path, content_photo: np.ndarray) -> None:
    enc = load_encoder(31, shared_weights / "lst" / "vgg_r31.pth")
    dec = load_decoder(31, shared_weights / "lst" / "dec_r31.pth")
    x = torch.from_numpy(content_photo).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        y = dec(enc(x)).clamp(0, 1)
    psnr = 10 * np.log10(1.0 / torch.mean((y - x) ** 2).item())
    assert psnr > 20.0, psnr
    assert not any(p.requires_grad for p in enc.parameters())


@pytest.mark.parametrize("level,min_psnr", [(21, 24.0), (11, 30.0)])
def test_shipped_shallow_decoders_reconstruct_a_real_photo(shared_weights: Path, content_photo: np.ndarray,
                                                           level: int, min_psnr: float) -> None:
    """rtstyle's own relu2_1 / relu1_1 decoders (the default for those levels) invert the prefix encoders."""
    from rtstyle.models.lst import shipped_decoder

    enc = load_encoder(level, shared_weights / "lst" / "vgg_r31.pth")
    dec = load_decoder(level)
    assert shipped_decoder(level).suffix == ".safetensors"
    x = torch.from_numpy(content_photo).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        y = dec(enc(x)).clamp(0, 1)
    psnr = 10 * np.log10(1.0 / torch.mean((y - x) ** 2).item())
    assert psnr > min_psnr, psnr


def test_decoder_round_trips_through_safetensors(tmp_path: Path) -> None:
    from rtstyle.models.lst import save_decoder

    dec = LSTDecoder(21)
    path = save_decoder(dec, tmp_path / "d.safetensors", {"steps": "3"})
    back = load_decoder(21, path)
    for k, v in dec.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v)
    with pytest.raises(LSTLayoutError, match="missing"):
        load_decoder(11, path)  # a relu2_1 decoder is not a relu1_1 one


def test_resolves_weights_from_env(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared_weights))
    enc = load_encoder(31)
    # A shallower encoder is a prefix of the r31 file, with identical activations.
    enc21 = load_encoder(21, shared_weights / "lst" / "vgg_r31.pth")
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(enc21(x), enc.features(x)["r21"])


def test_wrong_layout_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "bare.pth"
    torch.save({"weight": torch.zeros(64, 3, 3, 3), "bias": torch.zeros(64)}, p)
    with pytest.raises(LSTLayoutError, match="not a LinearStyleTransfer relu1_1 encoder"):
        load_encoder(11, p)
    sd = LSTDecoder(31).state_dict()
    sd["conv7.weight"] = torch.zeros(128, 512, 3, 3)
    torch.save(sd, tmp_path / "dec.pth")
    with pytest.raises(LSTLayoutError, match="shape"):
        load_decoder(31, tmp_path / "dec.pth")
    with pytest.raises(ValueError, match="level"):
        LSTEncoder(41)


def test_missing_weights_say_where_they_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(WeightNotFoundError, match="RTSTYLE_WEIGHTS"):
        load_decoder(31)

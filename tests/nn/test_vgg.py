"""rtstyle.nn.vgg on VGG16 files the tests write (no ../shared): key checks, taps, the Caffe activation
scale, deterministic loading, and the checksum check of files a model was trained with."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rtstyle.nn.vgg import (TAPS, VGG16Encoder, VGG16Features, VGGMismatchError, check_vgg16_file, file_sha256,
                            load_vgg16, load_vgg16_encoder, read_vgg16_state_dict, vgg16_features)


def _vgg_file(tmp_path: Path, last: int = 22, scale: float = 1.0, name: str = "vgg16.pth") -> Path:
    """A random VGG16 ``features[0..last]`` state dict with torchvision key names (``scale``: 255 mimics
    Caffe-converted weights, whose conv1_1 folds in the 0..255 input range)."""
    torch.manual_seed(last)
    sd = {f"features.{k}": v for k, v in vgg16_features(last).state_dict().items()}
    sd["features.0.weight"] = sd["features.0.weight"] * scale
    sd["features.0.bias"] = sd["features.0.bias"] * scale
    path = tmp_path / name
    torch.save(sd, path)
    return path


def test_taps_come_from_one_pass_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    net = load_vgg16(_vgg_file(tmp_path, last=8), taps=("relu2_2", "relu1_2"))
    assert net.taps == ("relu1_2", "relu2_2") and net.last == TAPS["relu2_2"]
    x = torch.rand(1, 3, 32, 48)
    out = net(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"relu1_2": (1, 64, 32, 48), "relu2_2": (1, 128, 16, 24)}
    assert all(bool((v >= 0).all()) for v in out.values())  # ReLU outputs
    with pytest.raises(ValueError, match="unknown VGG taps"):
        VGG16Features(("relu9_9",))
    with pytest.raises(ValueError, match="torchvision key names"):  # relu3_3 needs layers the file lacks
        load_vgg16(tmp_path / "vgg16.pth", taps=("relu3_3",))


def test_caffe_scaled_weights_give_torchvision_magnitude(tmp_path: Path) -> None:
    plain = load_vgg16(_vgg_file(tmp_path, last=3, name="a.pth"), taps=("relu1_2",))
    caffe = load_vgg16(_vgg_file(tmp_path, last=3, scale=255.0, name="b.pth"), taps=("relu1_2",))
    assert (plain.act_scale, caffe.act_scale) == (1.0, 255.0)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(plain.features[0](x) * 255.0, caffe.features[0](x), rtol=1e-4, atol=1e-3)


def test_every_layer_in_the_file_is_loaded_so_two_loads_are_identical(tmp_path: Path) -> None:
    f = _vgg_file(tmp_path)
    a = load_vgg16(f, taps=("relu1_2",)).state_dict()
    b = load_vgg16(f, taps=("relu1_2",)).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(read_vgg16_state_dict(f, 3)) == 4 and len(read_vgg16_state_dict(f, 3, keep=22)) == 20


def test_encoder_records_the_checksum_and_bad_files_are_plain_errors(tmp_path: Path) -> None:
    f = _vgg_file(tmp_path, last=18)
    enc = load_vgg16_encoder(f)
    assert isinstance(enc, VGG16Encoder) and enc.sha256 == file_sha256(f) and len(enc.sha256) == 64
    assert tuple(enc(torch.rand(1, 3, 32, 32)).shape) == (1, 512, 4, 4)
    assert list(enc.taps(torch.rand(1, 3, 32, 32))) == ["r11", "r21", "r31", "r41"]
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError):
        read_vgg16_state_dict(junk, 3)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="torchvision key names"):
        read_vgg16_state_dict(tmp_path / "other.pth", 3)


def test_a_model_trained_with_another_vgg16_file_is_refused(tmp_path: Path) -> None:
    a, b = _vgg_file(tmp_path, last=3, name="a.pth"), _vgg_file(tmp_path, last=1, name="b.pth")
    check_vgg16_file(a, file_sha256(a), "this decoder")  # the same file: accepted
    check_vgg16_file(b, None, "this decoder")  # nothing recorded: nothing to check
    with pytest.raises(VGGMismatchError, match="this decoder was trained with the VGG16 file with sha256"):
        check_vgg16_file(b, file_sha256(a), "this decoder")

"""Third-party weight resolution: explicit path > $RTSTYLE_WEIGHTS > user cache; import; list."""
from __future__ import annotations

from pathlib import Path

import pytest

from rtstyle.cli import main
from rtstyle.weights import WeightNotFoundError, import_weights, list_weights, resolve_weight


def _torch_file(path: Path) -> None:
    """A small real PyTorch file (resolution checks that a file is whole, see check_weight_file)."""
    import torch

    torch.save({"w": torch.zeros(1)}, path)


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "env"
    cache = tmp_path / "xdg"
    (env / "lst").mkdir(parents=True)
    _torch_file(env / "lst" / "vgg_r31.pth")
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(env))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert resolve_weight("lst/vgg_r31") == env / "lst" / "vgg_r31.pth"
    explicit = tmp_path / "mine.pth"
    _torch_file(explicit)
    assert resolve_weight("lst/vgg_r31", explicit=explicit) == explicit
    with pytest.raises(WeightNotFoundError, match="rtstyle weights import"):
        resolve_weight("vgg16")
    # torchvision's cache is the last resort for the VGG16
    tv = tmp_path / "torch" / "hub" / "checkpoints"
    tv.mkdir(parents=True)
    _torch_file(tv / "vgg16-397923af.pth")
    assert resolve_weight("vgg16").parent == tv


def test_import_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "w"
    (src / "onnx").mkdir(parents=True)
    (src / "onnx" / "multistyle26.onnx").write_bytes(b"onnx")
    monkeypatch.delenv("RTSTYLE_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    written = import_weights(src)
    assert written == [tmp_path / "xdg" / "rtstyle" / "weights" / "onnx" / "multistyle26.onnx"]
    info = {w.key: w for w in list_weights()}
    assert info["onnx/multistyle26"].origin == "cache" and info["vgg16"].path is None
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "onnx/multistyle26" in out and "[cache]" in out
    assert "lst_dec_r21.safetensors" in out and "lst_dec_r11.safetensors" in out  # the shipped decoders
    assert main(["weights", "import", str(tmp_path / "nothing")]) == 1
    with pytest.raises(ValueError):
        import_weights(tmp_path / "w" / "onnx")  # a folder without the expected layout

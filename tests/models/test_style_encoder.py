"""StyleEncoder: the frozen style pass on OpenVINO (when installed) gives eager's result."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rtstyle.models._style_encoder import StyleEncoder


class _Stats(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        return torch.cat([f.mean((2, 3)), f.std((2, 3))], 1)


def test_openvino_matches_eager_on_several_shapes() -> None:
    pytest.importorskip("openvino")
    m = _Stats().eval()
    enc = StyleEncoder(m, "openvino")
    for h, w in [(64, 48), (40, 72), (64, 48)]:  # dynamic height/width: one compiled model
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            ref = m(x)
        got = enc(x)
        assert enc.used == "openvino"
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_eager_runtime_and_input_checks() -> None:
    m = _Stats().eval()
    enc = StyleEncoder(m, "eager")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), m(x))
    assert enc.used == "eager"
    with pytest.raises(ValueError, match="one"):
        enc(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="runtime"):
        StyleEncoder(m, "tensorrt")


def test_copies_and_pickles_without_the_compiled_model() -> None:
    import copy
    import pickle

    pytest.importorskip("openvino")
    m = _Stats().eval()
    enc = StyleEncoder(m, "auto")
    x = torch.rand(1, 3, 32, 40)
    ref = enc(x)
    for other in (copy.deepcopy(enc), pickle.loads(pickle.dumps(enc))):
        assert other.module is not m and other._compiled is None
        torch.testing.assert_close(other(x), ref, rtol=1e-4, atol=1e-5)


def test_converted_model_is_cached_across_instances(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    ov = pytest.importorskip("openvino")
    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path))
    calls = []
    real = ov.convert_model
    monkeypatch.setattr(ov, "convert_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    m = _Stats().eval()
    x = torch.rand(1, 3, 40, 56)
    a = StyleEncoder(m, "openvino", name="cache probe")(x)
    b = StyleEncoder(m, "openvino", name="cache probe")(x)  # a new process would do the same
    assert len(calls) == 1 and list(tmp_path.glob("openvino-style-encoder/*/model.xml"))
    torch.testing.assert_close(a, b)
    StyleEncoder(m, "openvino", name="cache probe", version=2)(x)  # another version: converted anew
    assert len(calls) == 2

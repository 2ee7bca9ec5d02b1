"""Engine cache: weight hashes, keys, atomic entries, reuse without rebuilding."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from rtstyle.backends import cache as cache_mod
from rtstyle.backends.cache import EngineCache, EngineKey, ShapeLRU, device_name, engine_key, format_shapes, weights_hash
from rtstyle.models.johnson import TransformerNet


def _key(model: nn.Module, **over: object) -> EngineKey:
    kw: dict = dict(shapes=[[1, 3, (64, 1080), (64, 1920)]], precision="fp32", backend="onnx-export",
                    backend_version="torch-x", device="cpu", settings={"opset": 18})
    kw.update(over)
    return engine_key(model, **kw)


# --------------------------------------------------------------------------- weights hash

def test_weights_hash_is_content_based() -> None:
    torch.manual_seed(0)
    a = TransformerNet(4, 1)
    b = TransformerNet(4, 1)
    b.load_state_dict(a.state_dict())
    assert weights_hash(a) == weights_hash(b)
    assert len(weights_hash(a)) == 64
    assert weights_hash(a) != weights_hash(TransformerNet(4, 1))


def test_weights_hash_follows_in_place_changes() -> None:
    net = TransformerNet(4, 1)
    h0 = weights_hash(net)
    with torch.no_grad():
        net.conv1.conv2d.bias[0] += 1.0
    assert weights_hash(net) != h0
    net2 = TransformerNet(4, 1)
    net.load_state_dict(net2.state_dict())
    assert weights_hash(net) == weights_hash(net2)


def test_weights_hash_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    net = TransformerNet(4, 1)
    calls = []
    real = cache_mod.hashlib.sha256

    def counting(*a: object) -> object:
        calls.append(1)
        return real(*a)

    monkeypatch.setattr(cache_mod.hashlib, "sha256", counting)
    h = weights_hash(net)
    assert weights_hash(net) == h and weights_hash(net) == h
    assert len(calls) == 1


def test_weights_hash_bf16_and_empty() -> None:
    m = nn.Module()
    m.register_buffer("a", torch.ones(3, dtype=torch.bfloat16))
    m.register_buffer("e", torch.zeros(0))
    m2 = nn.Module()
    m2.register_buffer("a", torch.ones(3, dtype=torch.float16))  # same values, other dtype
    m2.register_buffer("e", torch.zeros(0))
    assert weights_hash(m) != weights_hash(m2)


# --------------------------------------------------------------------------- keys

def test_format_shapes() -> None:
    assert format_shapes([[1, 3, (64, 1080), None], [1, 512, 1, 1]]) == "1x3x[64..1080]x?;1x512x1x1"
    assert format_shapes([[1, 3, (64, None), (None, 99)]]) == "1x3x[64..]x[..99]"
    with pytest.raises(ValueError, match="min 9 > max 8"):
        format_shapes([[1, (9, 8)]])


def test_engine_key_fields_and_digest() -> None:
    net = TransformerNet(4, 1)
    k = _key(net)
    assert k == _key(net) and k.digest == _key(net).digest
    assert k.model == "TransformerNet" and k.weights == weights_hash(net)
    assert k.shapes == "1x3x[64..1080]x[64..1920]"
    assert k.device == device_name("cpu") and k.device != "cpu"
    assert k.dirname.startswith("TransformerNet-fp32-") and k.dirname.endswith(k.digest)
    assert k.to_dict()["settings"] == {"opset": "18"}


@pytest.mark.parametrize("change", [
    {"shapes": [[1, 3, (64, 720), (64, 1920)]]},
    {"shapes": [[1, 3, 96, 128]]},
    {"precision": "bf16"},
    {"backend": "openvino"},
    {"backend_version": "torch-y"},
    {"device": "any"},
    {"settings": {"opset": 19}},
])
def test_engine_key_changes_with_every_field(change: dict) -> None:
    net = TransformerNet(4, 1)
    assert _key(net, **change).digest != _key(net).digest


def test_engine_key_changes_with_weights_and_uses_spec_name() -> None:
    from rtstyle.models import ModelSpec

    net = TransformerNet(4, 1)
    k0 = _key(net)
    with torch.no_grad():
        net.in1.weight.mul_(2)
    assert _key(net).digest != k0.digest
    net.spec = ModelSpec(name="johnson.my style/v2", family="johnson")  # type: ignore[attr-defined]
    k = _key(net)
    assert k.model == "johnson.my style/v2"
    assert "/" not in k.dirname and " " not in k.dirname


def test_device_name() -> None:
    assert device_name("any") == "any"
    assert device_name("cpu") == device_name(torch.device("cpu"))
    assert device_name("Intel(R) Data Center GPU") == "Intel(R) Data Center GPU"  # already a name


# --------------------------------------------------------------------------- cache

def test_put_builds_once_and_get_reuses(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    key = _key(TransformerNet(4, 1))
    assert cache.get(key) is None
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "model.onnx").write_bytes(b"engine")

    p = cache.put(key, build)
    assert p == cache.path(key) == tmp_path / "onnx-export" / key.dirname
    assert (p / "model.onnx").read_bytes() == b"engine"
    assert cache.put(key, build) == p and cache.get(key) == p
    assert EngineCache(tmp_path).put(key, build) == p  # a new process finds it too
    assert len(calls) == 1
    manifest = json.loads((p / "manifest.json").read_text())
    assert manifest["key"] == key.to_dict() and manifest["digest"] == key.digest
    assert manifest["files"] == ["model.onnx"]
    assert [e["digest"] for e in cache.entries()] == [key.digest]


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    key = _key(TransformerNet(4, 1))

    def build(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="exporter crashed"):
        cache.put(key, build)
    assert cache.get(key) is None
    assert list((tmp_path / "onnx-export").iterdir()) == []  # no entry, no temp folder


def test_entry_without_matching_manifest_is_rebuilt(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    key = _key(TransformerNet(4, 1))
    p = cache.path(key)
    p.mkdir(parents=True)
    (p / "model.onnx").write_bytes(b"half-written by an old version")  # no manifest
    assert cache.get(key) is None
    p2 = cache.put(key, lambda f: (f / "model.onnx").write_bytes(b"good"))
    assert p2 == p and (p / "model.onnx").read_bytes() == b"good"
    (p / "manifest.json").write_text(json.dumps({"key": {"model": "other"}}))
    assert cache.get(key) is None


def test_different_keys_different_entries(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    net = TransformerNet(4, 1)
    calls = []
    build = lambda f: calls.append((f / "x").write_text("1"))  # noqa: E731
    a = cache.put(_key(net), build)
    b = cache.put(_key(net, shapes=[[1, 3, 96, 128]]), build)
    with torch.no_grad():
        net.in1.bias.add_(1)
    c = cache.put(_key(net), build)
    assert len({a, b, c}) == 3 and len(calls) == 3


def test_find_similar_ignores_weights(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    net = TransformerNet(4, 1)
    k_old = _key(net, backend="tensorrt")
    cache.put(k_old, lambda f: (f / "model.ep").write_text("old"))
    with torch.no_grad():
        net.in1.bias.add_(1)
    k_new = _key(net, backend="tensorrt")
    assert cache.get(k_new) is None
    assert cache.find_similar(k_new) == cache.path(k_old)
    assert cache.find_similar(_key(net, backend="tensorrt", precision="fp16")) is None


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RTSTYLE_ENGINES", raising=False)
    assert EngineCache().root == Path("engines")
    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path / "e"))
    assert EngineCache().root == tmp_path / "e"
    assert EngineCache(tmp_path / "explicit").root == tmp_path / "explicit"


def test_shape_lru() -> None:
    built = []
    lru = ShapeLRU(lambda s: built.append(s) or f"engine{s}", size=2)
    a, b, c = ((1, 3, 8, 8),), ((1, 3, 16, 16),), ((1, 3, 32, 32),)
    assert lru.get(a) == f"engine{a}"
    lru.get(b)
    lru.get(a)  # refreshes a
    lru.get(c)  # evicts b, the least recently used
    lru.get(a)
    assert built == [a, b, c] and len(lru) == 2 and lru.builds == 3
    lru.get(b)
    assert built == [a, b, c, b]
    with pytest.raises(ValueError):
        ShapeLRU(lambda s: s, size=0)

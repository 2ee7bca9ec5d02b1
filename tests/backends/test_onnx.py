"""ONNX export + onnxruntime backend, cross-validated against eager fp32 on real frames."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402

from rtstyle.backends import BackendOptions, BackendUnavailableError, create_backend  # noqa: E402
from rtstyle.backends import export as export_mod  # noqa: E402
from rtstyle.backends.export import export_key, export_onnx  # noqa: E402
from rtstyle.backends.onnxrt import OnnxRuntimeBackend, convert_fp16  # noqa: E402


def _onnx(cache: Path, **extra: object) -> OnnxRuntimeBackend:
    return create_backend("onnx", BackendOptions(cache_dir=str(cache), extra=dict(extra)))  # type: ignore[return-value]


@pytest.fixture
def count_exports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    calls: list[tuple[int, ...]] = []
    real = export_mod.export_onnx

    def counting(model, example_inputs, path, dynamic_hw=True, **kw):  # type: ignore[no-untyped-def]
        calls.append(tuple(example_inputs[0].shape))
        return real(model, example_inputs, path, dynamic_hw, **kw)

    monkeypatch.setattr(export_mod, "export_onnx", counting)
    return calls


def _check(runner, model, frames, reference, psnr_db, label: str, floor: float) -> None:  # type: ignore[no-untyped-def]
    for x in frames:
        y = runner(x)
        ref = reference(model, x)
        assert y.dtype == torch.float32 and y.shape == ref.shape and y.device.type == "cpu"
        db = psnr_db(y, ref)
        print(f"{label} {x.shape[-1]}x{x.shape[-2]}: {db:.1f} dB")
        assert db >= floor, f"{label}: {db:.1f} dB < {floor}"


def test_transformer_fp32_dynamic_shapes(tnet, frames, reference, psnr_db, session_cache) -> None:
    runner = _onnx(session_cache).prepare(tnet, (frames[0],))
    _check(runner, tnet, frames, reference, psnr_db, "onnx fp32 TransformerNet", 35)  # two sizes, one session
    m = onnx.load(str(runner.path))
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert m.graph.input[0].name == "image" and dims == [1, 3, "height", "width"]
    assert m.opset_import[0].version >= 17
    ops = {n.op_type for n in m.graph.node}
    assert {"InstanceNormalization", "Pad", "Resize", "Conv"} <= ops


def test_engstrom_fp32_static_per_shape(engstrom, frames, reference, psnr_db, session_cache) -> None:
    # dynamic=False: one static export per frame size; fast to export, exact for any size
    runner = _onnx(session_cache, dynamic=False).prepare(engstrom, (frames[0],))
    _check(runner, engstrom, frames[:1], reference, psnr_db, "onnx fp32 EngstromNet (static)", 35)
    assert runner.sessions.builds == 1


@pytest.mark.slow  # EngstromNet's dynamic-shape export takes 1-3 min (symbolic TF 'SAME' padding)
def test_engstrom_fp32_dynamic_shapes(engstrom, frames, reference, psnr_db, session_cache) -> None:
    runner = _onnx(session_cache).prepare(engstrom, (frames[0],))
    _check(runner, engstrom, frames, reference, psnr_db, "onnx fp32 EngstromNet", 35)


def test_static_mode_rebuilds_per_shape_only(tnet, frames, reference, psnr_db, tmp_path, count_exports) -> None:
    # an engine cache of this test's own: what is exported and opened here is counted here only
    backend = _onnx(tmp_path, dynamic=False, keep=2)
    runner = backend.prepare(tnet, (frames[0],))
    for x in (frames[0], frames[1], frames[0], frames[1]):
        assert psnr_db(runner(x), reference(tnet, x)) >= 35
    assert runner.sessions.builds == 2
    assert sorted(count_exports) == sorted({tuple(frames[0].shape), tuple(frames[1].shape)})  # one export per shape
    assert len(backend._sessions) == 2  # one session per shape, none opened twice


def test_export_is_cached_and_keyed(tnet_factory, frames, tmp_path, count_exports) -> None:
    net = tnet_factory(seed=3, width=4, n_res=1)
    b = _onnx(tmp_path)
    r1 = b.prepare(net, (frames[0],))
    r2 = b.prepare(net, (frames[1],))  # another example size: the same dynamic export
    assert r1.path == r2.path and len(count_exports) == 1
    assert _onnx(tmp_path).prepare(net, (frames[0],)).path == r1.path and len(count_exports) == 1
    with torch.no_grad():
        net.in1.bias.add_(1.0)  # new weights -> new entry
    r3 = b.prepare(net, (frames[0],))
    assert r3.path != r1.path and len(count_exports) == 2
    k = export_key(net, (frames[0],))
    assert export_key(net, (frames[1],)) == k  # dynamic: the example size is not part of the key
    assert export_key(net, (frames[0],), min_shape=(32, 32), max_shape=(512, 512)).digest != k.digest
    assert export_key(net, (frames[0],), dynamic_hw=False).digest != export_key(net, (frames[1],), dynamic_hw=False).digest
    assert export_key(net, (frames[0],), opset=19).digest != k.digest


class _TwoStyleInputs(nn.Module):
    """AdaIN-like: style statistics arrive as extra inputs."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.dec = nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        y = F.instance_norm(self.enc(x / 255.0)) * std + mean
        return torch.sigmoid(self.dec(F.relu(y))) * 255.0


def test_style_tensors_are_graph_inputs(frames, reference, psnr_db, tmp_path) -> None:
    net = _TwoStyleInputs().eval()
    mean, std = torch.rand(1, 8, 1, 1), torch.rand(1, 8, 1, 1) + 0.5
    runner = _onnx(tmp_path).prepare(net, (frames[0], mean, std))
    assert runner.input_names == ["image", "style0", "style1"]
    for x in frames:
        with torch.inference_mode():
            ref = net(x, mean, std)
        assert psnr_db(runner(x, mean, std), ref) >= 35
    mean2 = torch.rand(1, 8, 1, 1)  # another style of the same shape: no rebuild needed
    with torch.inference_mode():
        assert psnr_db(runner(frames[0], mean2, std), net(frames[0], mean2, std)) >= 35
    with pytest.raises(ValueError, match="style0 has shape"):
        runner(frames[0], torch.rand(1, 4, 1, 1), std)
    with pytest.raises(ValueError, match="expected 3 inputs"):
        runner(frames[0])


def test_fp16_conversion(tnet, frames, reference, psnr_db, session_cache, tmp_path) -> None:
    src = _onnx(session_cache).prepare(tnet, (frames[0],)).path
    dst = convert_fp16(src, tmp_path / "fp16.onnx")
    m = onnx.load(str(dst))
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp32 in and out
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in m.graph.initializer)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    y = torch.from_numpy(sess.run(None, {"image": frames[0].numpy()})[0])
    db = psnr_db(y, reference(tnet, frames[0]))
    print(f"onnx fp16 (converted, CPU EP) TransformerNet: {db:.1f} dB")
    assert db >= 30


def test_precision_and_input_checks(tnet, frames, tmp_path) -> None:
    with pytest.raises(ValueError, match="CUDA"):
        create_backend("onnx", BackendOptions(precision="fp16", cache_dir=str(tmp_path))).prepare(tnet, (frames[0],))
    with pytest.raises(ValueError, match="openvino"):
        create_backend("onnx", BackendOptions(precision="bf16", cache_dir=str(tmp_path))).prepare(tnet, (frames[0],))
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        _onnx(tmp_path).prepare(tnet, (frames[0][0],))
    with pytest.raises(TypeError, match="tuple"):
        _onnx(tmp_path).prepare(tnet, frames[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="opset"):
        export_onnx(tnet, (frames[0],), tmp_path / "x.onnx", opset=13)


@pytest.mark.parametrize("missing", ["onnxruntime", "onnxscript", "onnx"])
def test_missing_dependency_names_the_extra(missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` raise ImportError
    with pytest.raises(BackendUnavailableError, match=r"pip install 'rtstyle\[onnx\]'"):
        create_backend("onnx")
    from rtstyle.backends import available_backends

    assert "rtstyle[onnx]" in available_backends()["onnx"]


def test_session_shared_by_runners_of_the_same_network(tnet_factory, frames, reference, psnr_db, tmp_path) -> None:
    backend = _onnx(tmp_path)
    a, b = tnet_factory(seed=5, width=4, n_res=1), tnet_factory(seed=6, width=4, n_res=1)
    r1, r2, r3 = backend.prepare(a, (frames[0],)), backend.prepare(a, (frames[0],)), backend.prepare(b, (frames[0],))
    assert r1.session is r2.session and r3.session is not r1.session
    assert psnr_db(r3(frames[1]), reference(b, frames[1])) >= 35

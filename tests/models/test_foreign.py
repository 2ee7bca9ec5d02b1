"""Foreign ONNX models: sidecar specs, the two shared third-party models through the Stylizer on the
onnx and openvino backends, style-vector blending and hot swaps, and the clear errors."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rtstyle.models import create_model, get_spec, list_models  # noqa: E402
from rtstyle.models.foreign import (  # noqa: E402
    ForeignOnnxModel,
    ForeignVectorModel,
    SidecarError,
    parse_style_vector,
)
from rtstyle.stylizer import Stylizer  # noqa: E402
from rtstyle.weights import WeightNotFoundError  # noqa: E402

STYLE = "starry_night.jpg"
OTHER_STYLE = "the_scream.jpg"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _onehot(i: int, n: int = 26) -> list[float]:
    v = [0.0] * n
    v[i] = 1.0
    return v


@pytest.fixture(scope="module")
def onnx_dir(shared_weights: Path) -> Path:
    d = shared_weights / "onnx"
    for f in ("multistyle26.onnx", "arbitrary_predict.onnx", "arbitrary_transform.onnx"):
        if not (d / f).is_file():
            pytest.skip(f"needs {d / f}")
    return d


@pytest.fixture(scope="module")
def styles_dir(shared: Path) -> Path:
    d = shared / "media" / "styles"
    if not (d / STYLE).is_file():
        pytest.skip(f"needs {d / STYLE}")
    return d


@pytest.fixture
def weights_env(monkeypatch: pytest.MonkeyPatch, shared_weights: Path) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared_weights))


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="module")
def multistyle(onnx_dir: Path) -> ForeignVectorModel:
    m = create_model("onnx.multistyle26", path=onnx_dir / "multistyle26.onnx")
    assert isinstance(m, ForeignVectorModel)
    return m


@pytest.fixture(scope="module")
def ms_onnx(multistyle: ForeignVectorModel, engines: str) -> Iterator[Stylizer]:
    from rtstyle.backends import BackendOptions

    st = Stylizer(multistyle, backend="onnx", options=BackendOptions(cache_dir=engines), frame_size=(160, 120))
    yield st
    st.close()


# --------------------------------------------------------------------------- registry and specs

def test_registered_specs_need_no_weights() -> None:
    assert {"onnx.multistyle26", "onnx.arbitrary"} <= set(list_models("onnx.*"))
    ms = get_spec("onnx.multistyle26")
    assert ms.family == "onnx" and ms.input_range == (0.0, 1.0) and ms.output_range == (0.0, 1.0)
    assert len(ms.styles) == 26 and not ms.needs_style_image and "MIT" in ms.licence
    arb = get_spec("onnx.arbitrary")
    assert arb.needs_style_image and arb.size_multiple == 1 and "Apache-2.0" in arb.licence
    assert arb.extra["fixed_size"] == [384, 384] and arb.extra["layout"] == "NHWC"
    assert "fixed 384x384" in arb.description
    json.loads(arb.to_json())  # `rtstyle models --json` must be able to print it


def test_missing_third_party_weights_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(WeightNotFoundError, match=r"multistyle26\.onnx.*RTSTYLE_WEIGHTS"):
        create_model("onnx.multistyle26")
    with pytest.raises(WeightNotFoundError, match="arbitrary_transform"):
        create_model("onnx.arbitrary")


def test_module_contract(multistyle: ForeignVectorModel, onnx_dir: Path) -> None:
    assert isinstance(multistyle, torch.nn.Module) and multistyle.preferred_backend == "onnx"
    assert multistyle.supported_backends == ("onnx", "openvino")
    assert multistyle.onnx_path == onnx_dir / "multistyle26.onnx"
    assert multistyle.input_names == ("image", "style_weights") and multistyle.output_name == "stylized"
    assert multistyle.spec.sha256 and len(multistyle.spec.sha256) == 64
    with pytest.raises(RuntimeError, match="--backend onnx or openvino"):
        multistyle(torch.zeros(1, 3, 8, 8), torch.zeros(26))


# --------------------------------------------------------------------------- the shared models run

def test_multistyle26_stylizes_real_frames(ms_onnx: Stylizer, content_photo: np.ndarray) -> None:
    for img in (content_photo, content_photo[:101, :150]):  # also a size that is no multiple of 4
        out = ms_onnx.stylize(img)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert _mad(out, img) > 10, "output barely differs from the input: not stylised"


def test_arbitrary_stylizes_with_style_images(weights_env: None, content_photo: np.ndarray, styles_dir: Path,
                                              engines: str) -> None:
    from rtstyle.backends import BackendOptions

    st = Stylizer("onnx.arbitrary", backend="onnx", style_image=styles_dir / STYLE,
                  options=BackendOptions(cache_dir=engines))
    try:
        assert st.state.style_inputs[0].shape == (1, 1, 1, 100)
        out = st.stylize(content_photo)
        assert out.shape == content_photo.shape and out.dtype == np.uint8
        assert _mad(out, content_photo) > 10
        st.set_style(style_image=styles_dir / OTHER_STYLE, wait=True)  # a new style image: the vector changes
        other = st.stylize(content_photo)
        assert _mad(other, out) > 5
    finally:
        st.close()


def test_style_vector_blend_lies_between(ms_onnx: Stylizer, multistyle: ForeignVectorModel,
                                         content_photo: np.ndarray) -> None:
    outs = {}
    for key, vec in (("a", _onehot(0)), ("b", _onehot(1)), ("ab", [0.5, 0.5] + [0.0] * 24)):
        ms_onnx.activate(ms_onnx.prepare(multistyle, style_vector=vec), crossfade=0)
        outs[key] = ms_onnx.stylize(content_photo).astype(np.float64)
    a, b, ab = outs["a"], outs["b"], outs["ab"]
    d_ab = _mad(a, b)
    assert d_ab > 10, "styles 0 and 1 should look different"
    # conditional instance norm blends the norm parameters, not the pixels: the blend is no pixel
    # average, but it is nearer to each style than they are to each other, and nearer to their
    # midpoint than to either of them
    d_a, d_b, d_mid = _mad(ab, a), _mad(ab, b), _mad(ab, (a + b) / 2)
    assert max(d_a, d_b) < d_ab, (d_a, d_b, d_ab)
    assert d_mid < min(d_a, d_b), (d_mid, d_a, d_b)


def test_style_vector_swap_mid_stream(ms_onnx: Stylizer, multistyle: ForeignVectorModel,
                                      content_photo: np.ndarray) -> None:
    ms_onnx.activate(ms_onnx.prepare(multistyle, style_vector=_onehot(0)), crossfade=0)
    first = ms_onnx.stylize(content_photo)
    assert np.array_equal(ms_onnx.stylize(content_photo), first)
    fut = ms_onnx.set_style(style_vector=multistyle.parse_style_vector("3:0.5,7:0.5"), crossfade=0, wait=True)
    assert fut.result() is ms_onnx.state and "[" in ms_onnx.style_name
    swapped = ms_onnx.stylize(content_photo)
    assert _mad(swapped, first) > 5
    ms_onnx.set_style(style_vector=_onehot(0), crossfade=0, wait=True)  # back: the cached state, same output
    assert np.array_equal(ms_onnx.stylize(content_photo), first)


def test_onnx_and_openvino_agree(multistyle: ForeignVectorModel, ms_onnx: Stylizer, content_photo: np.ndarray,
                                 engines: str, weights_env: None, styles_dir: Path) -> None:
    pytest.importorskip("openvino")
    from rtstyle.backends import BackendOptions

    opts = BackendOptions(cache_dir=engines)
    ov = Stylizer(multistyle, backend="openvino", options=opts, frame_size=(160, 120))
    try:
        ms_onnx.activate(ms_onnx.prepare(multistyle, style_vector=_onehot(0)), crossfade=0)
        db = _psnr(ov.stylize(content_photo), ms_onnx.stylize(content_photo))
        assert db >= 35, f"multistyle26 onnx vs openvino: {db:.1f} dB"
    finally:
        ov.close()
    # the arbitrary transformer is int8 QDQ: the two runtimes round its int8 arithmetic differently
    # (measured 32-34 dB on real photos), so it gets a lower floor
    outs = []
    for backend in ("onnx", "openvino"):
        st = Stylizer("onnx.arbitrary", backend=backend, style_image=styles_dir / STYLE, options=opts)
        outs.append(st.stylize(content_photo))
        st.close()
    db = _psnr(*outs)
    assert db >= 28, f"arbitrary onnx vs openvino: {db:.1f} dB"


def test_runner_checks_style_input_size(ms_onnx: Stylizer) -> None:
    with pytest.raises(ValueError, match="needs 26 values"):
        ms_onnx.state.runner(torch.zeros(1, 3, 16, 16), torch.zeros(25))
    with pytest.raises(ValueError, match="takes 2 inputs"):
        ms_onnx.state.runner(torch.zeros(1, 3, 16, 16))


# --------------------------------------------------------------------------- style vectors

def test_parse_style_vector_forms() -> None:
    assert parse_style_vector(3, 26) == _onehot(3)
    assert parse_style_vector("3", 26) == _onehot(3)
    v = parse_style_vector("3:0.5, 7:1.5", 26)
    assert v[3] == pytest.approx(0.25) and v[7] == pytest.approx(0.75) and sum(v) == pytest.approx(1)
    assert parse_style_vector([2.0] * 4, 4) == [0.25] * 4  # normalised to sum 1
    assert parse_style_vector(np.array([0, 3.0, 1.0]), 3) == [0.0, 0.75, 0.25]
    assert parse_style_vector("0,0,2", 3) == [0.0, 0.0, 1.0]
    assert parse_style_vector("b:1,c:1", 3, styles=("a", "b", "c")) == [0.0, 0.5, 0.5]


@pytest.mark.parametrize("value, match", [
    ([1.0] * 25, "expected 26 weights, got 25"),
    ([1.0] * 27, "expected 26 weights, got 27"),
    ([-1.0] + [1.0] * 25, "non-negative"),
    ([0.0] * 26, "sum to 0"),
    (26, "out of range 0..25"),
    ("3:0.5,40:0.5", "out of range"),
    ("3:x", "not a number"),
    ("3:1,3:1", "appears twice"),
    ("starry", "cannot parse"),
    (2.5, "integer style index"),
    (True, "bool"),
])
def test_parse_style_vector_errors(value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_style_vector(value, 26)


def test_model_vector_api(multistyle: ForeignVectorModel) -> None:
    assert multistyle.default_style_vector() == _onehot(0)
    (t,) = multistyle.encode_style_vector("1:1,2:3")
    assert t.shape == (26,) and t.dtype == torch.float32 and float(t.sum()) == pytest.approx(1)
    with pytest.raises(ValueError, match="onnx.multistyle26 style vector: expected 26 weights, got 3"):
        multistyle.encode_style_vector([1, 2, 3])


# --------------------------------------------------------------------------- sidecar specs

def _link(src: Path, folder: Path, name: str | None = None) -> Path:
    dst = folder / (name or src.name)
    dst.symlink_to(src)
    return dst


def test_no_sidecar_names_the_missing_fields(onnx_dir: Path, tmp_path: Path) -> None:
    p = _link(onnx_dir / "multistyle26.onnx", tmp_path)
    with pytest.raises(SidecarError) as e:
        create_model(f"onnx:{p}")
    msg = str(e.value)
    assert "\n" not in msg and "multistyle26.onnx.json" in msg and "input_range" in msg
    assert "layout=NCHW" in msg and "output_range" not in msg.split("with ")[1].split("(")[0]  # Sigmoid: inferred
    t = _link(onnx_dir / "arbitrary_transform.onnx", tmp_path)
    with pytest.raises(SidecarError, match=r"inputs\[mobilenet_conv/Conv/BiasAdd\[1,1,1,100\]\]\.kind") as e2:
        create_model(str(t))  # a plain .onnx path reaches the onnx loader too
    assert "layout=NHWC" in str(e2.value) and "fixed_size=(384, 384)" in str(e2.value)


def test_minimal_sidecar_and_inference(onnx_dir: Path, tmp_path: Path, content_photo: np.ndarray,
                                       engines: str) -> None:
    from rtstyle.backends import BackendOptions

    p = _link(onnx_dir / "multistyle26.onnx", tmp_path, "mine.onnx")
    (tmp_path / "mine.onnx.json").write_text(json.dumps({"input_range": [0, 1], "default_size": 256}))
    m = create_model(str(p))
    assert isinstance(m, ForeignVectorModel)
    s = m.spec
    assert s.name == "onnx.mine" and s.output_range == (0.0, 1.0) and s.extra["layout"] == "NCHW"
    assert s.styles[0] == "style00" and len(s.styles) == 26 and s.default_size == 256
    assert m.default_style_vector() == _onehot(0)
    st = Stylizer(m, backend="onnx", options=BackendOptions(cache_dir=engines))
    assert st.stylize(content_photo).shape == content_photo.shape
    st.close()


def test_full_sidecar_with_style_image_net(onnx_dir: Path, tmp_path: Path, content_photo: np.ndarray,
                                           styles_dir: Path, engines: str) -> None:
    from rtstyle.backends import BackendOptions

    t = _link(onnx_dir / "arbitrary_transform.onnx", tmp_path, "transfer.onnx")
    (tmp_path / "nets").mkdir()
    _link(onnx_dir / "arbitrary_predict.onnx", tmp_path / "nets", "predict.onnx")
    (tmp_path / "transfer.onnx.rtstyle.json").write_text(json.dumps({
        "name": "onnx.my_arbitrary",
        "input_range": [0, 1],
        "output_range": [0, 1],
        "inputs": [{"name": "mobilenet_conv/Conv/BiasAdd", "kind": "style_image_net", "net": "nets/predict.onnx"}],
    }))
    m = create_model(f"onnx:{t}")
    assert isinstance(m, ForeignOnnxModel) and not isinstance(m, ForeignVectorModel)
    s = m.spec
    assert s.name == "onnx.my_arbitrary" and s.needs_style_image and s.size_multiple == 1
    assert s.extra["fixed_size"] == [384, 384] and s.extra["inputs"][0]["size"] == [256, 256]
    st = Stylizer(m, backend="onnx", style_image=styles_dir / STYLE, options=BackendOptions(cache_dir=engines))
    out = st.stylize(content_photo)
    st.close()
    assert out.shape == content_photo.shape and _mad(out, content_photo) > 10


@pytest.mark.parametrize("sidecar, match", [
    ({"input_range": [0, 1], "layuot": "NCHW"}, "unknown key.*layuot"),
    ({"input_range": [0, 1], "layout": "NCWH"}, "layout must be one of NCHW, NHWC"),
    ({"input_range": [1, 0]}, "low < high"),
    ({"input_range": [0, 1], "image_input": "img"}, "image_input 'img' is not a graph input"),
    ({"input_range": [0, 1], "fixed_size": "1x2", "image_input": "image"}, None),  # allowed: dynamic graph
    ({"input_range": [0, 1], "inputs": [{"name": "style_weights", "kind": "style_vector", "size": 10}]},
     "size is 10 but the graph input has 26"),
    ({"input_range": [0, 1], "inputs": [{"name": "style_weights", "kind": "embedding"}]}, "kind must be one of"),
    ({"input_range": [0, 1], "styles": ["a", "b"]}, "2 style names for a style vector of size 26"),
    ({"input_range": [0, 1], "mean": [0.5, 0.5, 0.5]}, "both mean and std"),
    ({"input_range": [0, 1], "inputs": [{"name": "style_weights", "kind": "style_vector", "default": 30}]},
     "out of range 0..25"),
])
def test_bad_sidecars(onnx_dir: Path, tmp_path: Path, sidecar: dict, match: str | None) -> None:
    p = _link(onnx_dir / "multistyle26.onnx", tmp_path, "m.onnx")
    (tmp_path / "m.onnx.json").write_text(json.dumps(sidecar))
    if match is None:
        assert create_model(str(p)).spec.extra["fixed_size"] == [2, 1]
        return
    with pytest.raises(SidecarError, match=match) as e:
        create_model(str(p))
    assert "\n" not in str(e.value)


def test_invalid_json_sidecar(onnx_dir: Path, tmp_path: Path) -> None:
    p = _link(onnx_dir / "multistyle26.onnx", tmp_path, "m.onnx")
    (tmp_path / "m.onnx.json").write_text("{input_range: [0, 1]}")
    with pytest.raises(SidecarError, match=r"m\.onnx\.json: not valid JSON"):
        create_model(str(p))


# --------------------------------------------------------------------------- files, loaders and layering

def _sigmoid_onnx(path: Path, layout: str = "NCHW") -> Path:
    """A real one-op ONNX file: y = sigmoid(x), x float32 (1, 3, H, W) with dynamic H and W."""
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 3, "h", "w"] if layout == "NCHW" else [1, "h", "w", 3]
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "sigmoid",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class _FileModel(nn.Module):
    """Not a foreign model: any module that declares it is an ONNX file is run from the file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.onnx_path = path
        self.output_name = "y"
        self.input_names = ("x",)
        self.spec = get_spec("onnx.multistyle26")  # any spec: the backends read only its name and hash

    def graph_feeds(self, inputs):  # type: ignore[no-untyped-def]
        return {"x": inputs[0].detach().cpu().numpy()}

    def graph_output(self, y, hw):  # type: ignore[no-untyped-def]
        return torch.from_numpy(np.asarray(y))


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_any_model_declaring_an_onnx_file_runs_from_it(backend: str, tmp_path: Path) -> None:
    from rtstyle.backends import BackendOptions, create_backend
    from rtstyle.backends.graph_file import GraphFileRunner
    from rtstyle.models._graph_runtime import RunsOnnxFile

    if backend == "openvino":
        pytest.importorskip("openvino")
    model = _FileModel(_sigmoid_onnx(tmp_path / "sig.onnx"))
    assert isinstance(model, RunsOnnxFile) and not isinstance(model, ForeignOnnxModel)
    x = torch.linspace(-4, 4, 3 * 20 * 28).reshape(1, 3, 20, 28)
    runner = create_backend(backend, BackendOptions(cache_dir=str(tmp_path / "engines"))).prepare(model, (x,))
    assert isinstance(runner, GraphFileRunner)
    torch.testing.assert_close(runner(x), torch.sigmoid(x), rtol=1e-5, atol=1e-6)
    x2 = torch.rand(1, 3, 12, 16) * 6 - 3  # another size, the same session
    torch.testing.assert_close(runner(x2), torch.sigmoid(x2), rtol=1e-5, atol=1e-6)


def test_models_load_a_file_without_the_backends_and_run_it_through_their_runtime(tmp_path: Path) -> None:
    """The model side reaches the graph runtime only through its own interface: loading an ONNX model
    imports no backend; without a provider a graph run says what to import; with the package's
    default provider (rtstyle.plugins) the first graph run loads the backends' runtime, which runs the file."""
    import subprocess
    import sys

    path = _sigmoid_onnx(tmp_path / "sig.onnx")
    code = f"""
import sys
import numpy as np
from rtstyle.models import create_model, list_models
from rtstyle.models._graph_runtime import BackendUnavailableError, graph_runtime, has_graph_runtime
list_models()
m = create_model({str(path)!r}, sidecar={{"input_range": [0, 1], "output_range": [0, 1]}})
assert m.spec.name == "onnx.sig" and m.input_names == ("x",), m.input_names
assert not [k for k in sys.modules if k.startswith("rtstyle.backends")], sorted(sys.modules)
import rtstyle.plugins
rtstyle.plugins.GRAPH_RUNTIME_PROVIDER = None  # no default provider: a clear error
assert not has_graph_runtime()
try:
    graph_runtime()
except BackendUnavailableError as e:
    assert "import rtstyle.backends" in str(e), e
else:
    raise AssertionError("no error without a runtime")
rtstyle.plugins.GRAPH_RUNTIME_PROVIDER = "rtstyle.backends"  # the package's default, loaded on first use
assert has_graph_runtime()
assert "rtstyle.backends" in sys.modules
run = graph_runtime().open_file(m.onnx_path, "y")
x = np.linspace(-3, 3, 3 * 8 * 8, dtype=np.float32).reshape(1, 3, 8, 8)
assert np.allclose(run({{"x": x}}), 1 / (1 + np.exp(-x)), atol=1e-6)
assert graph_runtime().open_file(m.onnx_path, "y") is run  # cached per file
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_path_loaders_are_tried_by_priority(tmp_path: Path) -> None:
    from rtstyle.models import _registry
    from rtstyle.models._registry import register_path_loader

    list_models()  # the built-in families are registered
    before = _registry._path_loaders()
    assert before[0] == "onnx" and {"johnson", "msgnet", "metanet"} <= set(before)
    seen: list[str] = []
    found = _FileModel(_sigmoid_onnx(tmp_path / "sig.onnx"))

    def loader(tag: str, result: nn.Module | None):  # type: ignore[no-untyped-def]
        def load(path: Path, **_: object) -> nn.Module | None:
            seen.append(tag)
            return result  # None declines: the next loader is tried
        return load

    ckpt = tmp_path / "net.pth"
    torch.save({"w": torch.zeros(1)}, ckpt)
    try:
        register_path_loader("zz_low", loader("low", found), priority=-5)
        register_path_loader("zz_high", loader("high", None), priority=20)
        register_path_loader("zz_mid", loader("mid", found), priority=10)  # ties with onnx: registered later, tried later
        order = _registry._path_loaders()
        assert order[:3] == ["zz_high", "onnx", "zz_mid"] and order[-1] == "zz_low"
        assert create_model(str(ckpt)) is found and seen == ["high", "mid"]  # onnx declined a .pth silently
    finally:
        for fam in ("zz_low", "zz_high", "zz_mid"):
            _registry._PATH_LOADERS.pop(fam, None)
    assert _registry._path_loaders() == before

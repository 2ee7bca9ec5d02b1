"""StyleEncoder: the frozen style pass on OpenVINO (when installed) gives eager's result."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import rtstyle.backends  # noqa: F401 - registers the graph runtime the encoders compile through
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
    enc = StyleEncoder(m, "openvino", precision="fp32")  # auto would be bf16 on an AMX host
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


def test_int8_encoder_is_quantised_cached_and_close(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """int8: built once (engine cache) from the bundled clip's frames, marked as int8, close to fp32."""
    from rtstyle.models._style_encoder import int8_available, sample_frames

    if not int8_available():
        pytest.skip("OpenVINO + NNCF not installed")
    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path))
    frames = sample_frames(64)
    assert len(frames) == 10 and max(frames[0].shape[2:]) == 64 and 0.0 <= float(frames[0].min()) <= float(frames[0].max()) <= 1.0
    m = _Stats().eval()
    x = sample_frames(96, every=50)[1]  # a real frame not in the calibration set
    m.forward = lambda t: _Stats.forward(m, t).clamp_min(0).add(1e-5).sqrt()  # a sqrt, like the real encoders
    enc = StyleEncoder(m, "auto", name="int8 probe", precision="int8", calibration=lambda: sample_frames(64))
    got = enc(x)
    assert enc.used == "openvino-int8"
    assert list(tmp_path.glob("openvino-style-encoder/*int8*/model.xml"))
    with torch.no_grad():
        ref = m(x)
    assert not torch.equal(got, ref)  # really quantised
    assert float((got - ref).norm() / ref.norm()) < 0.1
    with pytest.raises(ValueError, match="int8"):
        StyleEncoder(m, "eager", precision="int8")
    with pytest.raises(ValueError, match="precision"):
        StyleEncoder(m, "auto", precision="fp16")


def test_int8_encoder_never_returns_non_finite_values(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A quantised std of a dead channel can come out NaN; the encoder then computes that image in fp32."""
    from rtstyle.models._style_encoder import int8_available, sample_frames

    if not int8_available():
        pytest.skip("OpenVINO + NNCF not installed")
    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path))
    m = _Stats().eval()  # torch.std: NaN under int8 for channels that are all zero
    enc = StyleEncoder(m, "auto", name="nan probe", precision="int8", calibration=lambda: sample_frames(64))
    x = sample_frames(96, every=50)[1]
    got = enc(x)
    assert enc.used == "openvino-int8" and bool(torch.isfinite(got).all())
    if "non-finite" in caplog.text:  # the case seen with NNCF 3.4: that image computed in fp32
        with torch.no_grad():
            torch.testing.assert_close(got, m(x))


def test_encoder_compiles_through_the_registered_graph_runtime(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder asks the graph runtime the model side declares (registered by the backends) to
    compile it; a runtime that cannot compile leaves ``auto`` on eager and refuses ``openvino``."""
    pytest.importorskip("openvino")
    from rtstyle.backends.graph_file import FileRuntime
    from rtstyle.models import _graph_runtime
    from rtstyle.models._graph_runtime import BackendUnavailableError

    calls = []

    class Recording(FileRuntime):
        def compile_module(self, module, example, **kw):  # type: ignore[no-untyped-def]
            calls.append(kw)
            return super().compile_module(module, example, **kw)

    class CannotCompile(FileRuntime):
        def can_compile_module(self) -> bool:
            return False

    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path))
    monkeypatch.setattr(_graph_runtime, "_RUNTIME", Recording())
    m = _Stats().eval()
    x = torch.rand(1, 3, 40, 56)
    enc = StyleEncoder(m, "openvino", name="hook probe", version=3, precision="fp32")
    got = enc(x)
    assert calls == [{"name": "hook probe", "version": 3, "calibration": None, "precision": "fp32"}]
    assert enc.used == "openvino"
    with torch.no_grad():
        torch.testing.assert_close(got, m(x), rtol=1e-4, atol=1e-5)
    monkeypatch.setattr(_graph_runtime, "_RUNTIME", CannotCompile())
    auto = StyleEncoder(m, "auto")
    with torch.no_grad():
        torch.testing.assert_close(auto(x), m(x))
    assert auto.used == "eager"
    with pytest.raises(BackendUnavailableError, match="openvino"):
        StyleEncoder(m, "openvino")(x)
    import rtstyle.plugins

    monkeypatch.setattr(rtstyle.plugins, "GRAPH_RUNTIME_PROVIDER", None)
    monkeypatch.setattr(_graph_runtime, "_RUNTIME", None)  # nothing registered: auto is eager, openvino says why
    unregistered = StyleEncoder(m, "auto")
    with torch.no_grad():
        torch.testing.assert_close(unregistered(x), m(x))
    assert unregistered.used == "eager"
    with pytest.raises(BackendUnavailableError, match="import rtstyle.backends"):
        StyleEncoder(m, "openvino")(x)


def test_auto_precision_is_bf16_where_the_host_has_bf16_in_hardware() -> None:
    from rtstyle.host import HostISA, use_host
    from rtstyle.models._style_encoder import resolve_precision

    # AMX, or AVX512_BF16 (an AMX CPU whose kernel denies the tiles still has it): bf16; else fp32
    for kind, want in [("amx", "bf16"), ("amx_denied", "bf16"), ("avx512_bf16", "bf16"), ("avx512", "fp32"),
                       ("avx2", "fp32")]:
        with use_host(HostISA.mock(kind)):
            assert resolve_precision("auto") == want, kind
            assert resolve_precision("int8") == "int8" and resolve_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16")
    with pytest.raises(ValueError, match="OpenVINO"):
        StyleEncoder(_Stats(), "eager", precision="bf16")


def test_bf16_encoder_runs_what_openvino_compiled_and_stays_close(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An explicit bf16 encoder says what OpenVINO really runs (f32 on a CPU without bf16) and its
    statistics stay within bf16 rounding of eager's."""
    pytest.importorskip("openvino")
    from rtstyle.host import detect_host

    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path))
    m = _Stats().eval()
    x = torch.rand(1, 3, 48, 64)
    enc = StyleEncoder(m, "openvino", precision="bf16")
    got = enc(x)
    with torch.no_grad():
        ref = m(x)
    if not detect_host().native_bf16:
        assert enc.used == "openvino"
    assert enc.used in ("openvino", "openvino-bf16")
    assert float((got - ref).abs().mean() / ref.abs().mean()) < 0.02


def test_auto_keeps_bf16_only_when_it_matches_f32_on_the_first_image(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On an AMX host ``auto`` compiles bf16, compares it once with f32 on the first image and falls
    back to f32 past the tolerance (a runtime standing in for bf16 scales the output)."""
    pytest.importorskip("openvino")
    import numpy as np

    from rtstyle.backends.graph_file import FileRuntime
    from rtstyle.host import HostISA, use_host
    from rtstyle.models import _graph_runtime
    from rtstyle.models._style_encoder import BF16_TOLERANCE

    class Skewed(FileRuntime):
        def __init__(self, scale: float) -> None:
            super().__init__()
            self.scale, self.asked = scale, []

        def compile_module(self, module, example, **kw):  # type: ignore[no-untyped-def]
            self.asked.append(kw["precision"])
            call, ran = super().compile_module(module, example, **dict(kw, precision="fp32"))
            if kw["precision"] != "bf16":
                return call, ran
            return (lambda feeds: np.asarray(call(feeds)) * self.scale), "bf16"

    monkeypatch.setenv("RTSTYLE_ENGINES", str(tmp_path))
    m = _Stats().eval()
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        ref = m(x)
    for scale, used in [(1 + BF16_TOLERANCE / 4, "openvino-bf16"), (1 + 4 * BF16_TOLERANCE, "openvino")]:
        runtime = Skewed(scale)
        monkeypatch.setattr(_graph_runtime, "_RUNTIME", runtime)
        with use_host(HostISA.mock("amx")):
            enc = StyleEncoder(m, "auto")
            got = enc(x)
        assert runtime.asked == ["bf16", "fp32"] and enc.used == used
        want = ref * (scale if used == "openvino-bf16" else 1.0)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(enc(x), want, rtol=1e-4, atol=1e-5)  # the choice sticks
    with use_host(HostISA.mock("avx512")):  # no AMX: auto is f32, compiled once
        runtime = Skewed(2.0)
        monkeypatch.setattr(_graph_runtime, "_RUNTIME", runtime)
        enc = StyleEncoder(m, "auto")
        enc(x)
    assert runtime.asked == ["fp32"] and enc.used == "openvino"

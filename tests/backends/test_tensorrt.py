"""TensorRT backend: everything that can be checked without TensorRT, and a GPU run that skips here.

The GPU tests need torch-tensorrt and CUDA (``pytest -m cuda tests/backends/test_tensorrt.py`` on a
GPU machine); on a CPU-only machine they skip cleanly.
"""
from __future__ import annotations

import sys

import pytest
import torch

from rtstyle.backends import BackendOptions, BackendUnavailableError, available_backends, create_backend
from rtstyle.backends.tensorrt import (
    UNAVAILABLE,
    ShapeProfile,
    TensorRTBackend,
    compile_settings,
    shape_profile,
    tensorrt_key,
)

MSG = "TensorRT backend needs torch-tensorrt and a CUDA GPU: pip install 'rtstyle[tensorrt]'"


# --------------------------------------------------------------------------- availability

def test_create_works_and_prepare_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tnet_factory) -> None:
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)  # as on a machine without it
    b = create_backend("tensorrt", BackendOptions(device="cuda"))
    assert isinstance(b, TensorRTBackend) and b.name == "tensorrt"
    assert UNAVAILABLE == MSG
    with pytest.raises(BackendUnavailableError) as info:
        b.check_available()
    assert str(info.value) == MSG
    with pytest.raises(BackendUnavailableError) as info:
        b.prepare(tnet_factory(width=4, n_res=1), (torch.zeros(1, 3, 64, 64),))
    assert str(info.value) == MSG
    assert available_backends()["tensorrt"] == MSG


def test_no_gpu_is_unavailable_even_with_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    monkeypatch.setitem(sys.modules, "torch_tensorrt", types.ModuleType("torch_tensorrt"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="CUDA GPU"):
        create_backend("tensorrt").check_available()


# --------------------------------------------------------------------------- shape profile

def test_shape_profile_defaults_half_to_double() -> None:
    p = shape_profile((480, 640))
    assert p == ShapeProfile((240, 320), (480, 640), (960, 1280))
    assert p.image_shapes() == ((1, 3, 240, 320), (1, 3, 480, 640), (1, 3, 960, 1280))
    assert p.contains(480, 640) and p.contains(240, 1280) and not p.contains(239, 640) and not p.contains(480, 1281)
    assert str(p) == "HxW 240x320..960x1280 (opt 480x640)"


def test_shape_profile_explicit_and_rounded_to_multiple() -> None:
    p = shape_profile((96, 128), min_shape=(33, 50), max_shape=(1083, 1921), multiple=4)
    assert p == ShapeProfile((36, 52), (96, 128), (1080, 1920))
    assert shape_profile((6, 6), multiple=4).min == (4, 4)  # never below one multiple


@pytest.mark.parametrize("kw", [
    {"min_shape": (100, 100)},                  # min above the example
    {"max_shape": (64, 64)},                    # max below the example
    {"min_shape": (0, 10)},                     # not positive
    {"max_shape": (10,)},                       # not (H, W)
])
def test_shape_profile_rejects_bad_ranges(kw: dict) -> None:
    with pytest.raises(ValueError):
        shape_profile((96, 128), **kw)


# --------------------------------------------------------------------------- settings

NEW = {"immutable_weights", "use_explicit_typing", "enable_autocast", "autocast_low_precision_type",
       "enabled_precisions", "min_block_size"}
OLDER = {"make_refittable", "enabled_precisions", "min_block_size"}
OLDEST = {"refit", "enabled_precisions", "min_block_size"}


def test_compile_settings_current_names() -> None:
    assert compile_settings(NEW, "fp32") == {"min_block_size": 1, "immutable_weights": False}
    kw = compile_settings(NEW, "fp16")
    assert kw["enable_autocast"] and kw["use_explicit_typing"]
    assert kw["autocast_low_precision_type"] is torch.float16 and "enabled_precisions" not in kw
    assert compile_settings(NEW, "bf16")["autocast_low_precision_type"] is torch.bfloat16
    assert "immutable_weights" not in compile_settings(NEW, "fp32", refittable=False)


def test_compile_settings_older_names() -> None:
    kw = compile_settings(OLDER, "fp16")
    assert kw == {"min_block_size": 1, "make_refittable": True, "enabled_precisions": {torch.float32, torch.float16}}
    assert compile_settings(OLDEST, "fp32") == {"min_block_size": 1, "refit": True, "enabled_precisions": {torch.float32}}
    with pytest.raises(ValueError, match="precision"):
        compile_settings(NEW, "int8")


# --------------------------------------------------------------------------- keys and validation

def test_key_changes_with_profile_precision_weights(tnet_factory) -> None:
    net = tnet_factory(width=4, n_res=1)
    ex = (torch.zeros(1, 3, 96, 128),)
    p = shape_profile((96, 128))
    k = tensorrt_key(net, ex, p, "fp16", "torch_tensorrt-2.x", "cpu")
    assert k == tensorrt_key(net, ex, p, "fp16", "torch_tensorrt-2.x", "cpu")
    assert k.shapes == "1x3x[48..192]x[64..256]" and k.backend == "tensorrt"
    others = [
        tensorrt_key(net, ex, shape_profile((96, 128), max_shape=(480, 640)), "fp16", "torch_tensorrt-2.x", "cpu"),
        tensorrt_key(net, ex, shape_profile((100, 128), min_shape=(48, 64), max_shape=(192, 256)), "fp16",
                     "torch_tensorrt-2.x", "cpu"),  # same range, other opt
        tensorrt_key(net, ex, p, "fp32", "torch_tensorrt-2.x", "cpu"),
        tensorrt_key(net, ex, p, "fp16", "torch_tensorrt-2.y", "cpu"),
        tensorrt_key(net, ex, p, "fp16", "torch_tensorrt-2.x", "cpu", refittable=False),
        tensorrt_key(tnet_factory(seed=9, width=4, n_res=1), ex, p, "fp16", "torch_tensorrt-2.x", "cpu"),
    ]
    assert len({k.digest, *(o.digest for o in others)}) == 1 + len(others)


def test_validate(tnet_factory) -> None:
    net = tnet_factory(width=4, n_res=1)
    ex = (torch.zeros(1, 3, 96, 128),)
    b = TensorRTBackend(BackendOptions(device="cuda", precision="fp16", max_shape=(720, 1280)))
    assert b.validate(net, ex) == ShapeProfile((48, 64), (96, 128), (720, 1280))
    with pytest.raises(ValueError, match="CUDA device"):
        TensorRTBackend(BackendOptions(device="cpu")).validate(net, ex)
    with pytest.raises(ValueError, match="precision"):
        TensorRTBackend(BackendOptions(device="cuda", precision="int8")).validate(net, ex)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        b.validate(net, (torch.zeros(3, 96, 128),))
    with pytest.raises(ValueError, match="min <= example <= max"):
        TensorRTBackend(BackendOptions(device="cuda", max_shape=(64, 64))).validate(net, ex)


# --------------------------------------------------------------------------- on a GPU with TensorRT

@pytest.mark.cuda
@pytest.mark.parametrize("precision,floor", [("fp32", 35), ("fp16", 30)])
def test_gpu_engine_matches_eager(precision, floor, tnet, frames, reference, psnr_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch_tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    opts = BackendOptions(device="cuda", precision=precision, cache_dir=str(tmp_path), min_shape=(64, 64),
                          max_shape=(256, 256))
    runner = create_backend("tensorrt", opts).prepare(tnet, (frames[0].cuda(),))
    for x in frames:  # two sizes inside the profile, one engine
        y = runner(x.cuda())
        assert y.device.type == "cuda" and y.dtype == torch.float32
        db = psnr_db(y, reference(tnet, x))
        print(f"tensorrt {precision} TransformerNet {x.shape[-1]}x{x.shape[-2]}: {db:.1f} dB")
        assert db >= floor
    with pytest.raises(ValueError, match="outside"):
        runner(torch.zeros(1, 3, 32, 32, device="cuda"))
    # cached: a second prepare loads the saved program
    entries = list((tmp_path / "tensorrt").glob("*/model.ep"))
    assert len(entries) == 1
    create_backend("tensorrt", opts).prepare(tnet, (frames[0].cuda(),))
    assert list((tmp_path / "tensorrt").glob("*/model.ep")) == entries


@pytest.mark.cuda
def test_gpu_refit(tnet_factory, frames, reference, psnr_db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch_tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    a, b = tnet_factory(seed=1), tnet_factory(seed=2)
    opts = BackendOptions(device="cuda", cache_dir=str(tmp_path))
    runner = create_backend("tensorrt", opts).prepare(a, (frames[0].cuda(),))
    assert runner.refit(b)
    assert psnr_db(runner(frames[0].cuda()), reference(b, frames[0])) >= 35

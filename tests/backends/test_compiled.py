"""torch.compile backend, cross-validated against eager fp32 on real frames.

Compiling takes 15-30 s per graph on a busy 2-core CPU, so the default run compiles one small
TransformerNet once (two sizes = two graphs); bf16 and EngstromNet are ``slow``.
"""
from __future__ import annotations

import pytest
import torch

from rtstyle.backends import BackendOptions, BackendUnavailableError, create_backend
from rtstyle.backends import compiled as compiled_mod


@pytest.fixture(scope="module")
def tnet_runner(tnet_factory, frames):  # type: ignore[no-untyped-def]
    net = tnet_factory(seed=0, width=4, n_res=1)
    b = create_backend("compiled")
    try:
        b.check_available()
    except BackendUnavailableError as e:
        pytest.skip(str(e))
    return net, b.prepare(net, (frames[0],))


def test_transformer_fp32_two_sizes(tnet_runner, frames, reference, psnr_db) -> None:
    net, runner = tnet_runner
    for x in frames:
        y = runner(x)
        ref = reference(net, x)
        assert y.dtype == torch.float32 and y.shape == ref.shape
        db = psnr_db(y, ref)
        print(f"compiled fp32 TransformerNet {x.shape[-1]}x{x.shape[-2]}: {db:.1f} dB")
        assert db >= 35, db


def test_refit_without_recompiling(tnet_runner, tnet_factory, frames, reference, psnr_db, monkeypatch) -> None:
    net, runner = tnet_runner
    other = tnet_factory(seed=7, width=4, n_res=1)
    assert runner.refit(other)
    try:
        y = runner(frames[0])  # compiled for this shape already: no new compilation
        assert psnr_db(y, reference(other, frames[0])) >= 35
        assert psnr_db(y, reference(net, frames[0])) < 35  # really the new weights
    finally:
        assert runner.refit(net)  # the module-scoped runner goes back to its weights
    assert not runner.refit(tnet_factory(seed=7, width=8, n_res=1))


@pytest.mark.slow
@pytest.mark.parametrize("which,precision,floor", [("tnet", "bf16", 30), ("engstrom", "fp32", 35), ("engstrom", "bf16", 30)])
def test_more_models_and_bf16(which, precision, floor, request, frames, reference, psnr_db) -> None:  # type: ignore[no-untyped-def]
    model = request.getfixturevalue(which)
    runner = create_backend("compiled", BackendOptions(precision=precision)).prepare(model, (frames[0],))
    for x in frames:
        db = psnr_db(runner(x), reference(model, x))
        print(f"compiled {precision} {which} {x.shape[-1]}x{x.shape[-2]}: {db:.1f} dB")
        assert db >= floor, db


def test_no_cxx_compiler_is_unavailable(monkeypatch: pytest.MonkeyPatch, tnet, frames) -> None:
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiled_mod.shutil, "which", lambda name: None)
    b = create_backend("compiled")
    with pytest.raises(BackendUnavailableError, match="C\\+\\+ compiler"):
        b.check_available()
    with pytest.raises(BackendUnavailableError, match="C\\+\\+ compiler"):
        b.prepare(tnet, (frames[0],))


def test_compile_failure_is_reported_not_hidden(monkeypatch: pytest.MonkeyPatch, tnet, frames) -> None:
    def broken_compile(fn, **kw):  # type: ignore[no-untyped-def]
        def run(*a):  # type: ignore[no-untyped-def]
            raise RuntimeError("CppCompileError: C++ compile error\nmore detail")

        return run

    monkeypatch.setattr(compiled_mod.torch, "compile", broken_compile)
    with pytest.raises(BackendUnavailableError, match="torch.compile failed.*CppCompileError") as info:
        create_backend("compiled").prepare(tnet, (frames[0],))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_bad_precision(tnet, frames) -> None:
    with pytest.raises(ValueError, match="CUDA"):
        create_backend("compiled", BackendOptions(precision="fp16")).prepare(tnet, (frames[0],))
    with pytest.raises(ValueError, match="precision"):
        create_backend("compiled", BackendOptions(precision="int8")).prepare(tnet, (frames[0],))

"""Eager backend: the reference every other backend is checked against, on real frames."""
from __future__ import annotations

import pytest
import torch

from rtstyle.backends import BackendOptions, create_backend


@pytest.mark.parametrize("which", ["tnet", "engstrom"])
def test_fp32_matches_module_on_two_sizes(which: str, request: pytest.FixtureRequest, frames, reference, psnr_db) -> None:
    model = request.getfixturevalue(which)
    runner = create_backend("eager").prepare(model, (frames[0],))
    for x in frames:
        h, w = x.shape[-2:]
        y = runner(x)
        assert y.dtype == torch.float32 and y.shape == (1, 3, h, w)
        db = psnr_db(y, reference(model, x))
        print(f"eager fp32 {which} {w}x{h}: {db:.1f} dB")
        assert db >= 60, db  # the same kernels up to channels-last reordering


@pytest.mark.parametrize("which", ["tnet", "engstrom"])
def test_bf16_close_to_fp32(which: str, request: pytest.FixtureRequest, frames, reference, psnr_db) -> None:
    model = request.getfixturevalue(which)
    runner = create_backend("eager", BackendOptions(precision="bf16")).prepare(model, (frames[0],))
    for x in frames:
        db = psnr_db(runner(x), reference(model, x))
        print(f"eager bf16 {which} {x.shape[-1]}x{x.shape[-2]}: {db:.1f} dB")
        assert db >= 30, db


def test_refit_and_bad_precision(frames, reference, psnr_db, tnet_factory) -> None:
    a, b = tnet_factory(seed=1), tnet_factory(seed=2)
    runner = create_backend("eager").prepare(a, (frames[0],))
    assert runner.refit(b)
    assert psnr_db(runner(frames[0]), reference(b, frames[0])) >= 60
    assert not runner.refit(tnet_factory(seed=3, width=4))  # other architecture: prepare anew
    with pytest.raises(ValueError, match="precision"):
        create_backend("eager", BackendOptions(precision="int8")).prepare(a, (frames[0],))
    with pytest.raises(ValueError, match="CUDA"):
        create_backend("eager", BackendOptions(precision="fp16")).prepare(a, (frames[0],))


def test_cpu_runner_shares_an_eval_module_and_refit_copies_first(frames, reference, psnr_db, tnet_factory) -> None:
    a, b = tnet_factory(seed=1), tnet_factory(seed=2)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    runner = create_backend("eager").prepare(a, (frames[0],))
    assert runner.model is a and runner.shared  # nothing to change on the CPU: no copy per style change
    assert runner.refit(b)
    assert runner.model is not a and not runner.shared
    assert all(torch.equal(a.state_dict()[k], v) for k, v in before.items()), "refit wrote into the caller's module"
    assert psnr_db(runner(frames[0]), reference(b, frames[0])) >= 60
    trainee = tnet_factory(seed=3).train()  # a module in training mode is copied, not switched to eval
    create_backend("eager").prepare(trainee, (frames[0],))
    assert trainee.training


def test_cpu_prepare_checks_a_model_by_running_it_unless_prechecked(frames, reference, psnr_db, tnet_factory) -> None:
    """On the CPU prepare runs the model once on a small input (a broken model fails there, before it
    goes live); a model its builder marked ``prechecked`` (MetaNet's generated nets) is not run."""
    calls: list[tuple[int, ...]] = []
    net = tnet_factory(seed=4)
    net.register_forward_pre_hook(lambda m, args: calls.append(tuple(args[0].shape)))
    runner = create_backend("eager").prepare(net, (frames[0],))
    assert len(calls) == 1 and min(calls[0][-2:]) <= 64 < min(frames[0].shape[-2:])
    net.prechecked = True
    calls.clear()
    runner = create_backend("eager").prepare(net, (frames[0],))
    assert calls == []
    assert psnr_db(runner(frames[0]), reference(net, frames[0])) >= 60

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        create_backend("eager").prepare(Broken(), (frames[0],))

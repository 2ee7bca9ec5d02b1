"""The shared training loop: SIGTERM stops like Ctrl-C, with the checkpoint saved at the step reached."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from rtstyle.training._loop import Checkpointer, run_steps


@dataclass
class _Cfg:
    steps: int = 50
    checkpoint_every: int = 1000
    preview_every: int = 0
    width: int = 3


def test_sigterm_saves_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    cfg = _Cfg()
    net = torch.nn.Linear(cfg.width, 1)
    ck = Checkpointer(tmp_path, cfg, ("width",))

    def step(i: int) -> dict[str, float]:
        if i == 7:
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` does to a background training job
        return {"content": float(i), "style": 0.0}

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        run_steps(cfg, step, start=0, ck=ck, modules={"model": net}, preview=lambda s: None, desc="t", progress=False)
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is removed again
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 7  # the signal interrupted step 7: steps 0..6 are in the checkpoint
    ck2 = Checkpointer(tmp_path, cfg, ("width",))
    assert ck2.resume({"model": torch.nn.Linear(cfg.width, 1)}, torch.device("cpu")) == 7
    with pytest.raises(ValueError, match="width"):
        Checkpointer(tmp_path, _Cfg(width=4), ("width",)).resume({"model": torch.nn.Linear(4, 1)}, torch.device("cpu"))

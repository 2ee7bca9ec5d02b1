"""The shared training loop: SIGTERM stops like Ctrl-C, with the checkpoint saved at the step reached."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from rtstyle.training._loop import Checkpointer

_JOB = textwrap.dedent('''
    import os, signal, sys
    from dataclasses import dataclass
    import torch
    from rtstyle.training._loop import Checkpointer, run_steps

    @dataclass
    class Cfg:
        steps: int = 50
        checkpoint_every: int = 1000
        preview_every: int = 0
        width: int = 3

    def step(i):
        if i == 7:
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` does to a background training job
        return {"content": float(i), "style": 0.0}

    before = signal.getsignal(signal.SIGTERM)
    try:
        run_steps(Cfg(), step, start=0, ck=Checkpointer(sys.argv[1], Cfg(), ("width",)),
                  modules={"model": torch.nn.Linear(3, 1)}, preview=lambda s: None, desc="t", progress=False)
    except KeyboardInterrupt:
        assert signal.getsignal(signal.SIGTERM) == before, "handler not restored"
        sys.exit(3)
    sys.exit(0)
''')


@dataclass
class _Cfg:
    steps: int = 50
    checkpoint_every: int = 1000
    preview_every: int = 0
    width: int = 3


def test_sigterm_saves_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    # its own process: the signal goes to a real training process, not to the test runner
    res = subprocess.run([sys.executable, "-c", _JOB, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, res.stderr[-2000:]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 7  # the signal interrupted step 7: steps 0..6 are in the checkpoint
    ck = Checkpointer(tmp_path, _Cfg(), ("width",))
    assert ck.resume({"model": torch.nn.Linear(3, 1)}, torch.device("cpu")) == 7
    with pytest.raises(ValueError, match="width"):
        Checkpointer(tmp_path, _Cfg(width=4), ("width",)).resume({"model": torch.nn.Linear(4, 1)}, torch.device("cpu"))

"""The shared training loop: SIGTERM stops like Ctrl-C, with the checkpoint saved at the step reached."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

# Runs in its own process: the signal goes to a real training process, not to the test runner.
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

    out = sys.argv[1]
    before = signal.getsignal(signal.SIGTERM)
    try:
        run_steps(Cfg(), step, start=0, ck=Checkpointer(out, Cfg(), ("width",)),
                  modules={"model": torch.nn.Linear(3, 1)}, preview=lambda s: None, desc="t", progress=False)
    except KeyboardInterrupt:
        assert signal.getsignal(signal.SIGTERM) == before, "handler not restored"
        # a rerun resumes at the step reached; a checkpoint of another architecture is refused
        resumed = Checkpointer(out, Cfg(), ("width",)).resume({"model": torch.nn.Linear(3, 1)}, torch.device("cpu"))
        assert resumed == 7, resumed
        try:
            Checkpointer(out, Cfg(width=4), ("width",)).resume({"model": torch.nn.Linear(4, 1)}, torch.device("cpu"))
        except ValueError as e:
            assert "width" in str(e), e
        else:
            raise AssertionError("a checkpoint of another width was resumed")
        sys.exit(3)
    sys.exit(0)
''')


def test_sigterm_saves_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", _JOB, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, res.stderr[-2000:]
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 7  # the signal interrupted step 7: steps 0..6 are in the checkpoint


def test_resume_keeps_the_optimiser_state_but_takes_the_command_lines_settings(tmp_path: Path) -> None:
    """A resumed run keeps Adam's moments and step counts, but a changed --lr / weight decay takes effect."""
    from dataclasses import dataclass

    from rtstyle.training._loop import Checkpointer

    @dataclass
    class Cfg:
        width: int = 3

    def setup(lr: float, wd: float) -> tuple[torch.nn.Linear, torch.optim.AdamW]:
        torch.manual_seed(0)
        m = torch.nn.Linear(3, 1)
        return m, torch.optim.AdamW([{"params": [m.weight], "weight_decay": wd}, {"params": [m.bias]}], lr=lr)

    m, opt = setup(1e-3, 0.1)
    for _ in range(3):
        opt.zero_grad()
        m(torch.ones(1, 3)).sum().backward()
        opt.step()
    Checkpointer(tmp_path, Cfg(), ("width",)).save({"model": m, "optim": opt}, 3)
    m2, opt2 = setup(5e-4, 0.0)
    assert Checkpointer(tmp_path, Cfg(), ("width",)).resume({"model": m2, "optim": opt2}, torch.device("cpu")) == 3
    assert [g["lr"] for g in opt2.param_groups] == [5e-4, 5e-4]
    assert opt2.param_groups[0]["weight_decay"] == 0.0
    torch.testing.assert_close(opt2.state[m2.weight]["exp_avg"], opt.state[m.weight]["exp_avg"])
    assert float(opt2.state[m2.weight]["step"]) == 3
    torch.testing.assert_close(m2.weight, m.weight)


def test_command_line_names_python_m_rtstyle_as_rtstyle(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtstyle
    from rtstyle.training._loop import command_line

    main = str(Path(rtstyle.__file__).with_name("__main__.py"))
    monkeypatch.setattr("sys.argv", [main, "train", "johnson", "--style", "a b.jpg"])
    assert command_line() == "rtstyle train johnson --style 'a b.jpg'"
    monkeypatch.setattr("sys.argv", ["/usr/bin/rtstyle", "train", "msgnet"])
    assert command_line() == "/usr/bin/rtstyle train msgnet"

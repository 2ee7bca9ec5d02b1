"""Pieces every trainer shares: device choice, resumable checkpoints with loss history, previews,
the optimiser step that skips non-finite losses and the step loop itself (:func:`run_steps`)."""
from __future__ import annotations

import json
import logging
import math
import shlex
import sys
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import numpy as np
import torch

__all__ = [
    "Checkpointer",
    "command_line",
    "loss_postfix",
    "optimise",
    "pick_device",
    "run_steps",
    "save_preview_row",
    "to_tensor",
]

log = logging.getLogger(__name__)


def command_line() -> str:
    """This process's command line, shell-quoted: the default of every trainer config's ``command``."""
    return " ".join(shlex.quote(a) for a in sys.argv)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_tensor(img: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` -> ``(1, 3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(255.0).to(device)


def save_preview_row(path: Path, images: list[torch.Tensor], height: int = 256) -> None:
    """Write ``(1, 3, H, W)`` tensors in [0, 1] side by side (each resized to ``height``) as a JPEG."""
    import cv2

    row = []
    for t in images:
        a = (t[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        h, w = a.shape[:2]
        row.append(cv2.resize(a, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(row, axis=1), cv2.COLOR_RGB2BGR))


class Checkpointer:
    """``<out>/checkpoint.pt`` + ``<out>/history.json``, written atomically; resume by re-running.

    Args:
        out: run folder.
        config: the run's config dataclass (stored; ``arch_keys`` must match on resume).
        arch_keys: config fields that fix the architecture: a checkpoint with other values is refused.
        arch_error: the refusal's message (``{path}`` is replaced by the checkpoint's path); by default
            it names the first field that differs.
    """

    def __init__(self, out: Path, config: Any, arch_keys: tuple[str, ...], arch_error: str | None = None) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / "checkpoint.pt"
        self.hist_path = self.out / "history.json"
        self.config = config
        self.arch_keys = arch_keys
        self.arch_error = arch_error
        self.history: list[dict[str, float]] = []

    def resume(self, modules: dict[str, Any], device: torch.device) -> int:
        """Load the state of ``modules`` (name -> module/optimiser) if a checkpoint exists; the step."""
        if not self.path.exists():
            return 0
        state = torch.load(self.path, map_location=device, weights_only=False)
        cfg = asdict(self.config)
        # a setting added after the checkpoint was written counts as its default there
        defaults = {f.name: f.default for f in fields(self.config) if f.default is not MISSING}
        for k in self.arch_keys:
            if state["config"].get(k, defaults.get(k)) != cfg.get(k):
                if self.arch_error is not None:
                    raise ValueError(self.arch_error.format(path=self.path))
                raise ValueError(f"{self.path} was trained with {k}={state['config'].get(k)!r}, not {cfg.get(k)!r}; "
                                 "use a new --out or the same settings")
        for name, m in modules.items():
            if isinstance(m, torch.optim.Optimizer):
                # the command line's hyperparameters win over the saved ones (a resume with another
                # --lr / decay changes them; the moments and step counts are kept)
                wanted = [{k: v for k, v in g.items() if k != "params"} for g in m.param_groups]
                m.load_state_dict(state[name])
                for g, w in zip(m.param_groups, wanted):
                    changed = {k: (g.get(k), v) for k, v in w.items() if isinstance(v, (int, float)) and g.get(k) != v}
                    if changed:
                        log.info("resume: optimiser settings from the command line: %s",
                                 ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
                    g.update(w)
            else:
                m.load_state_dict(state[name])
        step = int(state["step"])
        if self.hist_path.exists():
            self.history = [h for h in json.loads(self.hist_path.read_text()) if h.get("step", 0) <= step]
        log.info("resumed from %s at step %d", self.path, step)
        return step

    def save(self, modules: dict[str, Any], step: int, **extra: Any) -> None:
        tmp = self.path.with_suffix(".tmp")
        state = {name: m.state_dict() for name, m in modules.items()}
        torch.save(dict(state, step=step, config=asdict(self.config), **extra), tmp)
        tmp.replace(self.path)
        self.save_history()

    def log(self, step: int, **values: float) -> None:
        self.history.append({"step": step, **{k: float(v) for k, v in values.items()}})

    def save_history(self) -> None:
        tmp = self.hist_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.history))
        tmp.replace(self.hist_path)


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor) -> bool:
    """One optimiser step on ``loss``; ``False`` (gradients cleared, no step) if the loss is not finite."""
    opt.zero_grad(set_to_none=True)
    if not math.isfinite(loss.item()):
        return False
    loss.backward()
    opt.step()
    return True


def loss_postfix(values: Mapping[str, float], keys: tuple[str, ...] = ("content", "style")) -> dict[str, str]:
    """The progress bar's postfix: ``keys`` of a step's logged values, 3 significant digits."""
    return {k: f"{values[k]:.3g}" for k in keys}


class LoopSettings(Protocol):
    """The fields of a trainer config that :func:`run_steps` reads."""

    steps: int
    checkpoint_every: int
    preview_every: int


def _stop_on_sigterm() -> Callable[[], None]:
    """SIGTERM (``kill``, ``docker stop``, a scheduler's time limit) -> ``KeyboardInterrupt`` in the
    main thread, so the checkpoint is saved as on Ctrl-C. (A job started in the background by a
    non-interactive shell ignores SIGINT, so SIGTERM is the way to stop it.) Returns the undo."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, old)


def run_steps(
    cfg: LoopSettings,
    step_fn: Callable[[int], Mapping[str, float] | None],
    *,
    start: int,
    ck: Checkpointer,
    modules: Mapping[str, Any],
    preview: Callable[[int], None],
    desc: str,
    save_extra: Mapping[str, Any] | None = None,
    progress: bool = True,
    postfix: Callable[[Mapping[str, float]], dict[str, str]] = loss_postfix,
    advance_bar_on_skip: bool = False,
    logger: logging.Logger = log,
) -> int:
    """Run training steps ``start .. cfg.steps - 1`` with a progress bar; the step reached.

    ``step_fn(step)`` trains on one batch and returns the values to log in the history (at
    ``step + 1``, via ``ck.log``), or ``None`` when it skipped the batch (a skipped step is counted
    but logs nothing, and moves the bar only if ``advance_bar_on_skip``). After a trained step the
    bar shows ``postfix(values)``, the checkpoint (``modules`` and ``save_extra``, see
    :meth:`Checkpointer.save`) is saved every ``cfg.checkpoint_every`` steps and a preview written
    (``preview(step)``) every ``cfg.preview_every`` steps (0: none until the end). On Ctrl-C the
    checkpoint is saved and the ``KeyboardInterrupt`` re-raised (rerunning the command resumes);
    at the end the checkpoint is saved and a final preview written.
    """
    from tqdm import tqdm

    def save(step: int) -> None:
        ck.save(dict(modules), step, **(save_extra or {}))

    step = start
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, unit="step", disable=not progress, dynamic_ncols=True)
    restore = _stop_on_sigterm()
    try:
        while step < cfg.steps:
            values = step_fn(step)
            step += 1
            if values is None:
                if advance_bar_on_skip:
                    bar.update(1)
                continue
            ck.log(step, **values)
            bar.set_postfix(**postfix(values))
            bar.update(1)
            if step % cfg.checkpoint_every == 0:
                save(step)
            if cfg.preview_every and step % cfg.preview_every == 0:
                preview(step)
    except KeyboardInterrupt:
        save(step)
        bar.close()
        logger.warning("interrupted at step %d; checkpoint saved to %s (run again to resume)", step, ck.path)
        raise
    finally:
        restore()
    bar.close()
    save(step)
    preview(step)
    return step

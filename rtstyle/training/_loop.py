"""Pieces every trainer shares: device choice, resumable checkpoints with loss history, previews,
the optimiser step that skips non-finite losses and the step loop itself (:func:`run_steps`)."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import shlex
import statistics
import sys
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import numpy as np
import torch

from ..image import to_image
from ..image import to_tensor as image_to_tensor

__all__ = [
    "Amp",
    "Checkpointer",
    "StepTimer",
    "command_line",
    "loss_postfix",
    "optimise",
    "pick_device",
    "resolve_amp",
    "run_steps",
    "save_preview_row",
    "to_tensor",
    "write_train_report",
]

log = logging.getLogger(__name__)


def command_line() -> str:
    """This process's command line, shell-quoted: the default of every trainer config's ``command``.

    ``python -m rtstyle ...`` (whose ``argv[0]`` is the package's ``__main__.py``) is written as the
    ``rtstyle ...`` it is the same as, so the recorded command runs on another machine."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "rtstyle":
        argv[0] = "rtstyle"
    return " ".join(shlex.quote(a) for a in argv)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


AMP_CHOICES = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Amp:
    """A training run's mixed precision: the autocast dtype and the memory layout.

    Attributes:
        mode: ``fp32`` (no autocast), ``bf16`` or ``fp16``.
        channels_last: modules and batches in NHWC (what AMX's and tensor cores' kernels want).
        device_type: ``cpu`` or ``cuda``.
        reason: why, for the run report.
    """

    mode: str
    channels_last: bool
    device_type: str
    reason: str = ""
    scaler: Any = field(default=None, compare=False, repr=False)

    def autocast(self) -> Any:
        """The context for forward passes (losses stay outside it, in fp32)."""
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16 if self.mode == "bf16" else torch.float16)

    def module(self, m: torch.nn.Module) -> torch.nn.Module:
        return m.to(memory_format=torch.channels_last) if self.channels_last else m

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, opt: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            opt.step()
        else:
            self.scaler.step(opt)
            self.scaler.update()

    def to_dict(self) -> dict[str, Any]:
        return {"amp": self.mode, "channels_last": self.channels_last, "device": self.device_type,
                "amp_reason": self.reason}


def resolve_amp(amp: str, device: torch.device | str, host: Any = None, *, channels_last: bool | None = None) -> Amp:
    """``--amp``: ``auto`` is bf16 autocast with channels-last on a CPU with bf16 in hardware (AMX tiles
    the OS lets this process use, or AVX512_BF16), fp32 on other CPUs (bf16 is emulated there, and
    measured slower than fp32; docs/benchmarks.md has the step times per host kind),
    bf16 on a CUDA GPU that has it, else fp16 (with a gradient scaler). By default autocast runs
    channels-last and fp32 on the CPU NCHW; ``channels_last`` True/False is the trainer's own choice. ``fp32``/``bf16``/``fp16`` force
    a mode (``off`` is ``fp32``, for configs written before the choice existed).

    Raises:
        ValueError: an unknown mode, or fp16 on the CPU.
    """
    dev = torch.device(device)
    mode = "fp32" if amp == "off" else amp
    if mode not in AMP_CHOICES:
        raise ValueError(f"--amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    if mode == "auto":
        if dev.type == "cuda":
            mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            reason = f"auto on CUDA: {mode}"
        else:
            from ..host import detect_host

            h = host or detect_host()
            mode = "bf16" if h.native_bf16 else "fp32"
            how = "bf16 with AMX" if h.amx_bf16 else "bf16 with AVX512_BF16"
            reason = f"auto on {h.describe().split(' (')[0]}: " + (
                how if mode == "bf16" else "fp32 (bf16 without AMX or AVX512_BF16 is emulated and slower)")
    else:
        reason = "as requested"
    if mode == "fp16" and dev.type != "cuda":
        raise ValueError("--amp fp16 needs a CUDA device; use bf16 on the CPU")
    # autocast runs channels-last by default: the NHWC bf16/fp16 kernels (AMX brgemm, tensor cores) want it.
    # Trainers override it where measured: the Johnson step ran faster with it in fp32 too (README,
    # tools/bench_amp.py); MSG-Net's backward aborted inside the CPU kernels with it, in fp32 and in bf16
    if channels_last is None:
        channels_last = mode != "fp32" or dev.type == "cuda"
    scaler = torch.amp.GradScaler(dev.type) if mode == "fp16" else None
    return Amp(mode, bool(channels_last), dev.type, reason, scaler)


class StepTimer:
    """Wall-clock seconds of each training step (:func:`run_steps` fills it)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.t0 = time.perf_counter()

    def median_after_warmup(self, warmup: int = 2) -> float | None:
        """Median step time without the first ``warmup`` steps (kernel selection, allocator growth);
        fewer are dropped when the run is that short."""
        ts = self.times[min(warmup, max(0, len(self.times) - 1)):]
        return statistics.median(ts) if ts else None


def write_train_report(path: str | Path, *, family: str, amp: Amp, timer: StepTimer, start: int, end: int,
                       **extra: Any) -> dict[str, Any]:
    """``--report``: the run's steps, wall time, median step time after warm-up and mixed precision, as JSON."""
    rep: dict[str, Any] = {
        "family": family,
        "steps": end - start,
        "start_step": start,
        "end_step": end,
        "wall_s": round(time.perf_counter() - timer.t0, 3),
        "step_s_median": timer.median_after_warmup(),
        **amp.to_dict(),
        **extra,
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(rep, indent=2) + "\n")
    tmp.replace(p)
    return rep


def to_tensor(img: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` -> ``(1, 3, H, W)`` float in [0, 1] on ``device`` (:func:`rtstyle.image.to_tensor`)."""
    return image_to_tensor(img, device=device)


def save_preview_row(path: Path, images: list[torch.Tensor], height: int = 256) -> None:
    """Write ``(1, 3, H, W)`` tensors in [0, 1] side by side (each resized to ``height``) as a JPEG."""
    import cv2

    row = []
    for t in images:
        a = to_image(t[:1])
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


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor, amp: Amp | None = None) -> bool:
    """One optimiser step on ``loss`` (through ``amp``'s gradient scaler for fp16); ``False``
    (gradients cleared, no step) if the loss is not finite."""
    opt.zero_grad(set_to_none=True)
    if not math.isfinite(loss.item()):
        return False
    if amp is None:
        loss.backward()
        opt.step()
    else:
        amp.backward(loss)
        amp.step(opt)
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
    timer: StepTimer | None = None,
) -> int:
    """Run training steps ``start .. cfg.steps - 1`` with a progress bar; the step reached.

    ``step_fn(step)`` trains on one batch and returns the values to log in the history (at
    ``step + 1``, via ``ck.log``), or ``None`` when it skipped the batch (a skipped step is counted
    but logs nothing, and moves the bar only if ``advance_bar_on_skip``). After a trained step the
    bar shows ``postfix(values)``, the checkpoint (``modules`` and ``save_extra``, see
    :meth:`Checkpointer.save`) is saved every ``cfg.checkpoint_every`` steps and a preview written
    (``preview(step)``) every ``cfg.preview_every`` steps (0: none until the end). On Ctrl-C the
    checkpoint is saved and the ``KeyboardInterrupt`` re-raised (rerunning the command resumes);
    at the end the checkpoint is saved and a final preview written. ``timer`` records each step's time.
    """
    from tqdm import tqdm

    def save(step: int) -> None:
        ck.save(dict(modules), step, **(save_extra or {}))

    step = start
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, unit="step", disable=not progress, dynamic_ncols=True)
    restore = _stop_on_sigterm()
    try:
        while step < cfg.steps:
            t = time.perf_counter()
            values = step_fn(step)
            if timer is not None:
                timer.times.append(time.perf_counter() - t)
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

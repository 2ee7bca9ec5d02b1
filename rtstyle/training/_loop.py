"""Pieces every trainer shares: device choice, resumable checkpoints with loss history, previews."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Checkpointer", "pick_device", "save_preview_row", "to_tensor"]

log = logging.getLogger(__name__)


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
    """

    def __init__(self, out: Path, config: Any, arch_keys: tuple[str, ...]) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / "checkpoint.pt"
        self.hist_path = self.out / "history.json"
        self.config = config
        self.arch_keys = arch_keys
        self.history: list[dict[str, float]] = []

    def resume(self, modules: dict[str, Any], device: torch.device) -> int:
        """Load the state of ``modules`` (name -> module/optimiser) if a checkpoint exists; the step."""
        if not self.path.exists():
            return 0
        state = torch.load(self.path, map_location=device, weights_only=False)
        cfg = asdict(self.config)
        for k in self.arch_keys:
            if state["config"].get(k) != cfg.get(k):
                raise ValueError(f"{self.path} was trained with {k}={state['config'].get(k)!r}, not {cfg.get(k)!r}; "
                                 "use a new --out or the same settings")
        for name, m in modules.items():
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

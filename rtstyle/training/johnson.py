"""Train a Johnson transform net against one style image with a VGG16 perceptual loss."""
from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models._spec import ModelSpec
from ..models.johnson import TransformerNet, save_rtstyle_weights
from .data import ImageFolder, load_rgb
from .losses import content_loss, gram, gram_style_loss, tv_loss
from .vgg import load_vgg16

__all__ = ["JohnsonTrainConfig", "train_johnson"]

log = logging.getLogger(__name__)


@dataclass
class JohnsonTrainConfig:
    """Settings of ``rtstyle train johnson``; every field is a CLI flag."""

    style: str
    data: str
    out: str
    name: str | None = None
    vgg: str | None = None
    steps: int = 2000
    batch: int = 4
    size: int = 256
    style_size: int = 384
    width: int = 32
    n_res: int = 5
    lr: float = 1e-3
    content_weight: float = 1e5
    style_weight: float = 1e10
    tv_weight: float = 0.0
    checkpoint_every: int = 100
    preview_every: int = 200
    preview: str | None = None
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU), bf16, fp16, off
    licence: str = "CC0-1.0 (weights); style image public domain"
    command: str = field(default_factory=lambda: " ".join(shlex.quote(a) for a in sys.argv))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255.0).to(device)


def train_johnson(cfg: JohnsonTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) and write ``<out>/<name>.safetensors``.

    A checkpoint ``<out>/checkpoint.pt`` is written every ``checkpoint_every`` steps and on
    Ctrl-C; running the same command again resumes from it. A preview of the net on
    ``cfg.preview`` (or the first training image) is written every ``preview_every`` steps.

    Returns:
        Path of the trained safetensors file.
    """
    from tqdm import tqdm

    dev = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    name = cfg.name or f"johnson.{Path(cfg.style).stem}"

    vgg = load_vgg16(cfg.vgg).to(dev)
    data = ImageFolder(cfg.data, cfg.size, seed=cfg.seed)
    style_img = _to_tensor(load_rgb(cfg.style, max_side=cfg.style_size), dev)
    # bf16 autocast was measured slower than fp32 for this workload on the 2-core AVX-512 dev
    # CPU (1.0 s vs 0.65 s per batch-2 192px step), so "auto" keeps fp32 on CPU.
    amp_mode = cfg.amp if cfg.amp != "auto" else ("fp16" if dev.type == "cuda" else "off")
    if amp_mode not in ("bf16", "fp16", "off"):
        raise ValueError(f"--amp must be auto, bf16, fp16 or off, got {cfg.amp!r}")
    amp = (torch.autocast(dev.type, dtype=torch.bfloat16 if amp_mode == "bf16" else torch.float16)
           if amp_mode != "off" else nullcontext())
    vgg = vgg.to(memory_format=torch.channels_last)
    with torch.no_grad(), amp:
        style_grams = {k: gram(v) for k, v in vgg(style_img).items()}

    net = TransformerNet(cfg.width, cfg.n_res).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    step = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=dev, weights_only=False)
        if state["config"]["width"] != cfg.width or state["config"]["n_res"] != cfg.n_res:
            raise ValueError(f"{ckpt} was trained with another architecture; use a new --out")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        step = int(state["step"])
        data.rng = np.random.default_rng(cfg.seed + step)
        log.info("resumed from %s at step %d", ckpt, step)

    preview_src = load_rgb(cfg.preview, max_side=512) if cfg.preview else data.images[0]
    preview_t = torch.from_numpy(preview_src[: preview_src.shape[0] // 4 * 4, : preview_src.shape[1] // 4 * 4].copy())
    preview_t = preview_t.permute(2, 0, 1)[None].float().to(dev)

    # the loss history survives resumes: earlier runs' entries up to the checkpoint are kept
    hist_path = out / "history.json"
    history: list[dict[str, float]] = []
    if step and hist_path.exists():
        history = [h for h in json.loads(hist_path.read_text()) if h.get("step", 0) <= step]

    def save_history() -> None:
        tmp = hist_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(history))
        tmp.replace(hist_path)

    def save_ckpt() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": net.state_dict(), "optim": opt.state_dict(), "step": step, "config": asdict(cfg)}, tmp)
        tmp.replace(ckpt)
        save_history()

    def save_preview() -> None:
        import cv2

        net.eval()
        with torch.no_grad():
            y = net(preview_t).clamp(0, 255)[0].permute(1, 2, 0).byte().cpu().numpy()
        net.train()
        both = np.concatenate([preview_t[0].permute(1, 2, 0).byte().cpu().numpy(), y], axis=1)
        cv2.imwrite(str(out / f"preview_{step:06d}.jpg"), cv2.cvtColor(both, cv2.COLOR_RGB2BGR))

    net.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {name}", unit="step", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    try:
        while step < cfg.steps:
            x = data.batch(cfg.batch).to(dev, memory_format=torch.channels_last)
            with amp:
                y = net(x * 255.0) / 255.0
                fy = vgg(y)
                with torch.no_grad():
                    fx = vgg(x)
            lc = cfg.content_weight * content_loss(fy["relu2_2"], fx["relu2_2"])
            ls = cfg.style_weight * gram_style_loss(fy, style_grams)
            lt = cfg.tv_weight * tv_loss(y.float() * 255.0)
            loss = lc + ls + lt
            if not torch.isfinite(loss):
                log.warning("non-finite loss at step %d: skipped", step)
                opt.zero_grad(set_to_none=True)
                step += 1
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            history.append({"step": step, "content": lc.item(), "style": ls.item(), "tv": lt.item()})
            bar.set_postfix(content=f"{lc.item():.3g}", style=f"{ls.item():.3g}")
            bar.update(1)
            if step % cfg.checkpoint_every == 0:
                save_ckpt()
            if cfg.preview_every and step % cfg.preview_every == 0:
                save_preview()
    except KeyboardInterrupt:
        save_ckpt()
        bar.close()
        log.warning("interrupted at step %d; checkpoint saved to %s (run again to resume)", step, ckpt)
        raise
    bar.close()
    save_ckpt()
    save_preview()

    weights_name = f"{name.replace('.', '_')}.safetensors"
    spec = ModelSpec(
        name=name,
        family="johnson",
        description=f"Johnson net (width {cfg.width}, {cfg.n_res} res blocks) trained on {Path(cfg.style).name}",
        styles=(Path(cfg.style).stem,),
        size_multiple=4,
        licence=cfg.licence,
        weights=weights_name,
        extra={
            "architecture": {"width": cfg.width, "n_res": cfg.n_res},
            "style_image": Path(cfg.style).name,
            "training_command": cfg.command,
            "steps": step,
            "batch": cfg.batch,
            "size": cfg.size,
            "style_size": cfg.style_size,
            "weights": {"content": cfg.content_weight, "style": cfg.style_weight, "tv": cfg.tv_weight},
            "train_seconds_this_run": round(time.perf_counter() - t0, 1),
        },
    )
    path = save_rtstyle_weights(net.cpu(), spec, out / weights_name)
    save_history()
    log.info("wrote %s", path)
    return path

"""Train a Johnson transform net against one style image with a VGG16 perceptual loss."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models._spec import ModelSpec
from ..models.johnson import TransformerNet, save_rtstyle_weights
from ._loop import (Checkpointer, StepTimer, command_line, optimise, pick_device, resolve_amp, run_steps, to_tensor,
                    write_train_report)
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
    amp: str = "auto"  # auto | fp32 | bf16 | fp16, see resolve_amp
    report: str | None = None  # JSON run report (steps, wall_s, step_s_median, amp)
    licence: str = "CC0-1.0 (weights); style image public domain"
    command: str = field(default_factory=command_line)


def train_johnson(cfg: JohnsonTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) and write ``<out>/<name>.safetensors``.

    A checkpoint ``<out>/checkpoint.pt`` is written every ``checkpoint_every`` steps and on
    Ctrl-C; running the same command again resumes from it. A preview of the net on
    ``cfg.preview`` (or the first training image) is written every ``preview_every`` steps.

    Returns:
        Path of the trained safetensors file.
    """
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    ck = Checkpointer(out, cfg, ("width", "n_res"),
                      arch_error="{path} was trained with another architecture; use a new --out")
    name = cfg.name or f"johnson.{Path(cfg.style).stem}"

    vgg = load_vgg16(cfg.vgg).to(dev)
    data = ImageFolder(cfg.data, cfg.size, seed=cfg.seed)
    style_img = to_tensor(load_rgb(cfg.style, max_side=cfg.style_size), dev)
    amp = resolve_amp(cfg.amp, dev, channels_last=True)  # measured faster for this net (tools/bench_amp.py)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    vgg = amp.module(vgg)
    with torch.no_grad():
        with amp.autocast():
            style_feats = vgg(amp.batch(style_img))
        style_grams = {k: gram(v) for k, v in style_feats.items()}  # Gram in fp32, as the loss takes it

    net = amp.module(TransformerNet(cfg.width, cfg.n_res).to(dev))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    step = ck.resume({"model": net, "optim": opt}, dev)
    if step:
        data.rng = np.random.default_rng(cfg.seed + step)

    preview_src = load_rgb(cfg.preview, max_side=512) if cfg.preview else data.images[0]
    preview_t = torch.from_numpy(preview_src[: preview_src.shape[0] // 4 * 4, : preview_src.shape[1] // 4 * 4].copy())
    preview_t = preview_t.permute(2, 0, 1)[None].float().to(dev)

    def save_preview(step: int) -> None:
        import cv2

        net.eval()
        with torch.no_grad():
            y = net(preview_t).clamp(0, 255)[0].permute(1, 2, 0).byte().cpu().numpy()
        net.train()
        both = np.concatenate([preview_t[0].permute(1, 2, 0).byte().cpu().numpy(), y], axis=1)
        cv2.imwrite(str(out / f"preview_{step:06d}.jpg"), cv2.cvtColor(both, cv2.COLOR_RGB2BGR))

    def train_step(step: int) -> dict[str, float] | None:
        x = amp.batch(data.batch(cfg.batch).to(dev))
        with amp.autocast():
            y = net(x * 255.0) / 255.0
            fy = vgg(y)
            with torch.no_grad():
                fx = vgg(x)
        lc = cfg.content_weight * content_loss(fy["relu2_2"], fx["relu2_2"])
        ls = cfg.style_weight * gram_style_loss(fy, style_grams)
        lt = cfg.tv_weight * tv_loss(y.float() * 255.0)
        if not optimise(opt, lc + ls + lt, amp):
            log.warning("non-finite loss at step %d: skipped", step)
            return None
        return {"content": lc.item(), "style": ls.item(), "tv": lt.item()}

    net.train()
    t0 = time.perf_counter()
    start, timer = step, StepTimer()
    step = run_steps(cfg, train_step, start=step, ck=ck, modules={"model": net, "optim": opt}, preview=save_preview,
                     desc=f"train {name}", progress=progress, logger=log, timer=timer)
    if cfg.report:
        write_train_report(cfg.report, family="johnson", amp=amp, timer=timer, start=start, end=step,
                           batch=cfg.batch, size=cfg.size, width=cfg.width)

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
    ck.save_history()
    log.info("wrote %s", path)
    return path

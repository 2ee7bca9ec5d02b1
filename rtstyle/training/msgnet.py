"""Train an MSG-Net on many styles at once (Zhang & Dana 2017).

Every step takes the next style of the list (cycling), resizes its image to a random size from
``style_sizes`` (so that at run time the style image's size sets the brush-stroke size), passes it
through the Siamese encoder to get the CoMatch Gram (gradients flow through it), stylises a batch
of content crops and trains with the VGG16 perceptual loss (content at relu2_2, Gram style loss at
relu1_2, relu2_2, relu3_3, relu4_3 against that style image at that size).

The written file holds the weights and a *style bank*: each training style's CoMatch Gram at
several sizes, so the shipped model selects styles and brush sizes without the images.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..models._spec import ModelSpec
from ..models.msgnet import MSGNet, MSGNetArch, gram_matrix, save_msgnet
from ._loop import (Checkpointer, StepTimer, command_line, optimise, pick_device, resolve_amp, run_steps,
                    save_preview_row, to_tensor, write_train_report)
from .data import ImageFolder, list_images, load_rgb
from .losses import content_loss, gram
from .vgg import load_vgg16

__all__ = ["MSGNetTrainConfig", "train_msgnet"]

log = logging.getLogger(__name__)


@dataclass
class MSGNetTrainConfig:
    """Settings of ``rtstyle train msgnet``; every field is a CLI flag."""

    styles: str
    data: str
    out: str
    name: str = "msgnet.lite"
    vgg: str | None = None
    steps: int = 8000
    batch: int = 2
    size: int = 128
    style_sizes: tuple[int, ...] = (128, 256, 384)
    bank_sizes: tuple[int, ...] = (128, 192, 256, 320, 384)
    ngf: int = 32
    n_blocks: int = 5
    stem: int = 32
    down1: int = 16
    up1: int = 16
    up2: int = 8
    lr: float = 1e-3
    content_weight: float = 1e5
    style_weight: float = 1e10
    checkpoint_every: int = 200
    preview_every: int = 500
    preview: str | None = None
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto | fp32 | bf16 | fp16, see resolve_amp
    report: str | None = None  # JSON run report (steps, wall_s, step_s_median, amp)
    licence: str = "Apache-2.0 (weights, trained by the rtstyle project); styles: public-domain paintings"
    command: str = field(default_factory=command_line)

    @property
    def arch(self) -> MSGNetArch:
        return MSGNetArch(self.ngf, self.n_blocks, self.stem, self.down1, self.up1, self.up2)


def _resize_long(img: torch.Tensor, side: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    s = side / max(h, w)
    size = (max(16, round(h * s)), max(16, round(w * s)))
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=s < 1)


def train_msgnet(cfg: MSGNetTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) and write ``<out>/<name>.safetensors`` (fp16 weights + style bank)."""
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    style_files = list_images(cfg.styles)
    names = [p.stem for p in style_files]
    if len(set(names)) != len(names):
        raise ValueError("style images must have distinct file names (they name the styles)")
    styles = [to_tensor(load_rgb(p, max_side=max(cfg.style_sizes + cfg.bank_sizes)), dev) for p in style_files]
    # NCHW always: with channels-last the backward pass aborted in the CPU kernels (fp32 and bf16, dev CPU)
    amp = resolve_amp(cfg.amp, dev, channels_last=False)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    vgg = amp.module(load_vgg16(cfg.vgg).to(dev))
    data = ImageFolder(cfg.data, cfg.size, seed=cfg.seed)
    log.info("MSG-Net: %d styles, %d content images", len(styles), len(data))

    # VGG Gram targets per (style, size): computed once
    targets: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        for i, s in enumerate(styles):
            for size in cfg.style_sizes:
                with amp.autocast():
                    feats = vgg(amp.batch(_resize_long(s, size)))
                targets[i, size] = {k: gram(v) for k, v in feats.items()}  # Gram in fp32, as the loss takes it

    net = amp.module(MSGNet(cfg.arch).to(dev))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ck = Checkpointer(out, cfg, ("ngf", "n_blocks", "stem", "down1", "up1", "up2"))
    step = ck.resume({"model": net, "optim": opt}, dev)
    rng = np.random.default_rng(cfg.seed + step)
    if step:
        data.rng = np.random.default_rng(cfg.seed + 7 + step)

    prev = load_rgb(cfg.preview, max_side=256) if cfg.preview else data.images[0]
    prev_t = to_tensor(prev[: prev.shape[0] // 4 * 4, : prev.shape[1] // 4 * 4], dev)
    show = sorted({0, len(styles) // 3, 2 * len(styles) // 3, len(styles) - 1})

    def preview(step: int) -> None:
        net.eval()
        with torch.no_grad():
            ys = [net(prev_t * 255, net.style_gram(_resize_long(styles[k], cfg.style_sizes[len(cfg.style_sizes) // 2]) * 255))
                  .div(255) for k in show]
        net.train()
        save_preview_row(out / f"preview_{step:06d}.jpg", [prev_t] + ys)

    skipped = 0

    def train_step(step: int) -> dict[str, float] | None:
        nonlocal skipped
        k = step % len(styles)
        size = int(rng.choice(cfg.style_sizes))
        x = amp.batch(data.batch(cfg.batch).to(dev))
        with amp.autocast():
            g = net.style_gram(amp.batch(_resize_long(styles[k], size)) * 255.0)
            y = net(x * 255.0, g) / 255.0
            fy = vgg(y)
            with torch.no_grad():
                fx = vgg(x)
        lc = cfg.content_weight * content_loss(fy["relu2_2"], fx["relu2_2"])
        ls = cfg.style_weight * sum(F.mse_loss(gram(fy[n]), t.expand(y.shape[0], -1, -1))
                                    for n, t in targets[k, size].items())
        if not optimise(opt, lc + ls, amp):
            skipped += 1
            log.warning("non-finite loss at step %d (style %s): batch skipped", step, names[k])
            return None
        return {"content": lc.item(), "style": ls.item(), "style_index": k, "style_size": size}

    t0 = time.perf_counter()
    net.train()
    start, timer = step, StepTimer()
    step = run_steps(cfg, train_step, start=step, ck=ck, modules={"model": net, "optim": opt}, preview=preview,
                     desc=f"train {cfg.name}", progress=progress, logger=log, timer=timer)
    if cfg.report:
        write_train_report(cfg.report, family="msgnet", amp=amp, timer=timer, start=start, end=step,
                           batch=cfg.batch, size=cfg.size, ngf=cfg.ngf)

    net.eval()
    bank: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, s in zip(names, styles):
            for size in cfg.bank_sizes:
                bank[f"{name}.{size}"] = gram_matrix(net.model1(_resize_long(s, size) * 255.0))
    spec = ModelSpec(
        name=cfg.name,
        family="msgnet",
        description=f"MSG-Net (CoMatch, ngf {cfg.ngf}) trained on {len(names)} styles; --style NAME|INDEX|IMG, brush size",
        input_range=(0.0, 255.0),
        output_range=(0.0, 255.0),
        size_multiple=4,
        styles=tuple(names),
        default_size=240,
        licence=cfg.licence,
        weights=f"{cfg.name.replace('.', '_')}.safetensors",
        extra={
            "architecture": {"ngf": cfg.ngf, "n_blocks": cfg.n_blocks, "stem": cfg.stem, "down1": cfg.down1,
                             "up1": cfg.up1, "up2": cfg.up2},
            "training_command": cfg.command,
            "steps": step,
            "batch": cfg.batch,
            "size": cfg.size,
            "style_sizes": list(cfg.style_sizes),
            "bank_sizes": list(cfg.bank_sizes),
            "style_images": [p.name for p in style_files],
            "weights": {"content": cfg.content_weight, "style": cfg.style_weight},
            "skipped_batches": skipped,
            "train_seconds_this_run": round(time.perf_counter() - t0, 1),
        },
    )
    path = save_msgnet(net.cpu(), spec, out / str(spec.weights), bank)
    log.info("wrote %s", path)
    return path

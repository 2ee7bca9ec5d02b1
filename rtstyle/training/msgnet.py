"""Train an MSG-Net on many styles at once (Zhang & Dana 2017).

Every step takes the next style of the list (cycling), resizes its image to a random size from
``style_sizes`` (so that at run time the style image's size sets the brush-stroke size), passes it
through the Siamese encoder to get the CoMatch Gram (gradients flow through it), stylises a batch
of content crops and trains with the VGG16 perceptual loss (content at relu2_2, Gram style loss at
relu1_2, relu2_2, relu3_3, relu4_3 against that style image at that size). ``temporal_weight > 0``
adds the compound temporal regulariser (:mod:`.temporal`) of the net with that step's style target.

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

from ..image import images_under, read_image, resize_tensor_long
from ..models._spec import ModelSpec
from ..models.msgnet import MSGNet, MSGNetArch, gram_matrix, save_msgnet
from ..nn.losses import content_loss, gram
from ..nn.vgg import load_vgg16
from ._loop import (Checkpointer, StepTimer, command_line, optimise, pick_device, resolve_amp, run_steps,
                    save_preview_row, to_tensor, write_train_report)
from ._fields import (amp_field, checkpoint_every_field, device_field, preview_every_field, preview_field,
                      report_field, seed_field, vgg_field)
from .data import ImageFolder
from .temporal import TemporalOptions, TemporalTerm

__all__ = ["MSGNetTrainConfig", "train_msgnet"]

log = logging.getLogger(__name__)


@dataclass
class MSGNetTrainConfig(TemporalOptions):
    """Settings of ``rtstyle train msgnet``; every field is a CLI flag (the ``temporal_*`` ones from
    :class:`~rtstyle.training.temporal.TemporalOptions`)."""

    styles: str = field(metadata={
        "help": "folder of style images (file stems name the styles)", "must_exist": "dir", "what": "style folder"})
    data: str = field(metadata={"help": "folder of content photos", "must_exist": "dir", "what": "data folder"})
    out: str = field(metadata={"help": "run folder (checkpoint, previews, final .safetensors); rerun to resume"})
    name: str = field(default="msgnet.lite", metadata={"help": "registry name"})
    vgg: str | None = vgg_field()
    steps: int = field(default=8000, metadata={"help": "training steps"})
    batch: int = field(default=2, metadata={"help": "content crops per step"})
    size: int = field(default=128, metadata={"help": "content crop size"})
    style_sizes: tuple[int, ...] = field(default=(128, 256, 384), metadata={
        "help": "style image sizes drawn at random each step (brush-size range), e.g. 128,256,384"})
    bank_sizes: tuple[int, ...] = field(default=(128, 192, 256, 320, 384), metadata={
        "help": "sizes at which each style's Gram is stored in the shipped bank"})
    ngf: int = field(default=32, metadata={"help": "bottleneck width (128 = the paper; CoMatch has 4x channels)"})
    n_blocks: int = field(default=5, metadata={"help": "residual bottlenecks after CoMatch (6 = the paper)"})
    stem: int = field(default=32, metadata={"help": "output channels of the first 7x7 conv (64 = the paper)"})
    down1: int = field(default=16, metadata={"help": "planes of the first downsampling bottleneck (32 = the paper)"})
    up1: int = field(default=16, metadata={"help": "planes of the first upsampling bottleneck (32 = the paper)"})
    up2: int = field(default=8, metadata={"help": "planes of the second upsampling bottleneck (16 = the paper)"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    content_weight: float = field(default=1e5, metadata={"help": "content loss weight (relu2_2)"})
    style_weight: float = field(default=1e10, metadata={"help": "Gram style loss weight"})
    checkpoint_every: int = checkpoint_every_field(200)
    preview_every: int = preview_every_field(500)
    preview: str | None = preview_field()
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    report: str | None = report_field()
    licence: str = "Apache-2.0 (weights, trained by the rtstyle project); styles: public-domain paintings"
    command: str = field(default_factory=command_line)

    @property
    def arch(self) -> MSGNetArch:
        return MSGNetArch(self.ngf, self.n_blocks, self.stem, self.down1, self.up1, self.up2)


def train_msgnet(cfg: MSGNetTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) and write ``<out>/<name>.safetensors`` (fp16 weights + style bank)."""
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    style_files = images_under(cfg.styles)
    names = [p.stem for p in style_files]
    if len(set(names)) != len(names):
        raise ValueError("style images must have distinct file names (they name the styles)")
    styles = [to_tensor(read_image(p, max_side=max(cfg.style_sizes + cfg.bank_sizes)), dev) for p in style_files]
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
                    feats = vgg(amp.batch(resize_tensor_long(s, size)))
                targets[i, size] = {k: gram(v) for k, v in feats.items()}  # Gram in fp32, as the loss takes it

    net = amp.module(MSGNet(cfg.arch).to(dev))
    temporal = TemporalTerm(cfg, cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ck = Checkpointer(out, cfg, ("ngf", "n_blocks", "stem", "down1", "up1", "up2"))
    step = ck.resume({"model": net, "optim": opt}, dev)
    rng = np.random.default_rng(cfg.seed + step)
    if step:
        data.rng = np.random.default_rng(cfg.seed + 7 + step)

    prev = read_image(cfg.preview, max_side=256) if cfg.preview else data.images[0]
    prev_t = to_tensor(prev[: prev.shape[0] // 4 * 4, : prev.shape[1] // 4 * 4], dev)
    show = sorted({0, len(styles) // 3, 2 * len(styles) // 3, len(styles) - 1})

    def preview(step: int) -> None:
        net.eval()
        with torch.no_grad():
            ys = [net(prev_t * 255, net.style_gram(resize_tensor_long(styles[k], cfg.style_sizes[len(cfg.style_sizes) // 2]) * 255))
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
            g = net.style_gram(amp.batch(resize_tensor_long(styles[k], size)) * 255.0)
            y = net(x * 255.0, g) / 255.0
            fy = vgg(y)
            with torch.no_grad():
                fx = vgg(x)
        lc = cfg.content_weight * content_loss(fy["relu2_2"], fx["relu2_2"])
        ls = cfg.style_weight * sum(F.mse_loss(gram(fy[n]), t.expand(y.shape[0], -1, -1))
                                    for n, t in targets[k, size].items())
        losses: dict[str, float] = {}
        # the temporal term (if on): N = the net with this step's style target g, NCHW as amp.batch keeps it here
        total = temporal.add(lc + ls, losses, lambda z: net(z, g), x, y, amp)
        if not optimise(opt, total, amp):
            skipped += 1
            log.warning("non-finite loss at step %d (style %s): batch skipped", step, names[k])
            return None
        return {"content": lc.item(), "style": ls.item(), **losses, "style_index": k, "style_size": size}

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
                bank[f"{name}.{size}"] = gram_matrix(net.model1(resize_tensor_long(s, size) * 255.0))
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
        extra=cfg.record_temporal({
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
        }),
    )
    path = save_msgnet(net.cpu(), spec, out / str(spec.weights), bank)
    log.info("wrote %s", path)
    return path

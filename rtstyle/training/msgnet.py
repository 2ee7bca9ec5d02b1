"""Train an MSG-Net on many styles at once (Zhang & Dana 2017).

Every step takes the next style of the list (cycling), resizes its image to a random size from
``style_sizes`` (so that at run time the style image's size sets the brush-stroke size), passes it
through the Siamese encoder to get the CoMatch Gram (gradients flow through it), stylises a batch
of content crops and trains with the VGG16 perceptual loss (content at relu2_2, Gram style loss at
relu1_2, relu2_2, relu3_3, relu4_3 against that style image at that size). ``temporal_weight > 0``
adds the compound temporal regulariser (:mod:`.temporal`) of the net with that step's style target;
``teacher`` distils an arbitrary-style model's output for the step's content and style (:mod:`.distill`).

The written file holds the weights and a *style bank*: each style of ``styles``' CoMatch Gram at
several sizes, so the shipped model selects styles and brush sizes without the images.

New style images (not in the bank) work only as well as the net has learnt to read the CoMatch
Gram: the authors trained their generalising model on ~1,000 styles. ``extra_styles`` adds folders
trained on but left out of the bank (the bank stays the licence-clean paintings), ``style_hue``
rotates the hue of that share of the style images (more colour schemes than the folders hold),
``exclude`` holds paintings out by file stem (default: the held-out matrix's,
:data:`rtstyle.eval.arbitrary.HELD_OUT_STYLES`) and ``init_from`` starts from a trained MSG-Net of
the same architecture.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..eval.arbitrary import HELD_OUT_STYLES
from ..image import images_under, read_image, resize_tensor_long
from ..models._spec import ModelSpec
from ..models.msgnet import MSGNet, MSGNetArch, gram_matrix, save_msgnet
from ..nn.losses import content_loss, gram
from ..nn.vgg import load_vgg16
from ._loop import (Checkpointer, StepTimer, command_line, optimise, pick_device, resolve_amp, run_steps,
                    save_preview_row, to_tensor, write_train_report)
from ._fields import (amp_field, checkpoint_every_field, device_field, preview_every_field, preview_field,
                      report_field, seed_field, vgg_field)
from .data import ImageFolder, rotate_hue, split_held_out
from .distill import Teacher, TeacherOptions
from .temporal import TemporalOptions, TemporalTerm

__all__ = ["MSGNetTrainConfig", "train_msgnet"]

log = logging.getLogger(__name__)


@dataclass
class MSGNetTrainConfig(TemporalOptions, TeacherOptions):
    """Settings of ``rtstyle train msgnet``; every field is a CLI flag (the ``temporal_*`` ones from
    :class:`~rtstyle.training.temporal.TemporalOptions`, the ``teacher*`` ones from
    :class:`~rtstyle.training.distill.TeacherOptions`)."""

    styles: str = field(metadata={
        "help": "folder of the bank's style images (file stems name the styles)", "must_exist": "dir",
        "what": "style folder"})
    data: str = field(metadata={"help": "folder of content photos", "must_exist": "dir", "what": "data folder"})
    out: str = field(metadata={"help": "run folder (checkpoint, previews, final .safetensors); rerun to resume"})
    name: str = field(default="msgnet.lite", metadata={"help": "registry name"})
    vgg: str | None = vgg_field()
    extra_styles: tuple[str, ...] = field(default=(), metadata={
        "help": "folder of more style images, trained on but not stored in the bank (so that new images work); "
                "repeat", "action": "append", "metavar": "DIR"})
    exclude: tuple[str, ...] = field(default=HELD_OUT_STYLES, metadata={
        "help": "style file stem never trained on (a held-out painting); repeat (default: the held-out matrix's "
                "paintings)", "action": "append", "metavar": "STEM"})
    style_hue: float = field(default=0.0, metadata={
        "help": "rotate the hue of the step's style image by a random angle with probability P", "metavar": "P"})
    init_from: str | None = field(default=None, metadata={
        "help": "warm start (fresh runs only) from a trained MSG-Net of the same architecture (registry name, "
                "e.g. msgnet.lite, or an rtstyle MSG-Net file)", "metavar": "MODEL"})
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
    if not 0.0 <= cfg.style_hue <= 1.0:
        raise ValueError(f"style_hue is a probability in [0, 1], got {cfg.style_hue}")
    cfg.check_temporal(features=False)  # before the style targets, which take minutes for many styles
    bank_all = images_under(cfg.styles)
    kept, held = split_held_out(bank_all + [p for d in cfg.extra_styles for p in images_under(d)], cfg.exclude)
    in_bank = set(bank_all)
    bank_files = [p for p in kept if p in in_bank]
    extra_files = [p for p in kept if p not in in_bank]
    if not bank_files:
        raise FileNotFoundError(f"no style images left in {cfg.styles} after excluding {list(cfg.exclude)}")
    names = [p.stem for p in bank_files]
    if len(set(names)) != len(names):
        raise ValueError("style images must have distinct file names (they name the styles)")
    style_files = bank_files + extra_files  # the bank's first: style k < len(names) is bank style k
    styles = [to_tensor(read_image(p, max_side=max(cfg.style_sizes + cfg.bank_sizes)), dev) for p in style_files]
    # NCHW always: with channels-last the backward pass aborted in the CPU kernels (fp32 and bf16, dev CPU)
    amp = resolve_amp(cfg.amp, dev, channels_last=False)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    vgg = amp.module(load_vgg16(cfg.vgg).to(dev))
    data = ImageFolder(cfg.data, cfg.size, seed=cfg.seed)
    log.info("MSG-Net: %d bank styles, %d more trained on, %d held out by name, %d content images",
             len(bank_files), len(extra_files), len(held), len(data))

    # VGG Gram targets per (style, size): computed once
    targets: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        for i, s in enumerate(styles):
            for size in cfg.style_sizes:
                with amp.autocast():
                    feats = vgg(amp.batch(resize_tensor_long(s, size)))
                targets[i, size] = {k: gram(v) for k, v in feats.items()}  # Gram in fp32, as the loss takes it

    net = MSGNet(cfg.arch)
    if cfg.init_from and not (out / "checkpoint.pt").exists():
        net.load_state_dict(_init_weights(cfg.init_from, cfg.arch))
        log.info("MSG-Net: starts as %s", cfg.init_from)
    net = amp.module(net.to(dev))
    temporal = TemporalTerm(cfg, cfg.seed)
    teacher = Teacher(cfg, dev)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ck = Checkpointer(out, cfg, ("ngf", "n_blocks", "stem", "down1", "up1", "up2"))
    step = ck.resume({"model": net, "optim": opt}, dev)
    rng = np.random.default_rng(cfg.seed + step)
    if step:
        data.rng = np.random.default_rng(cfg.seed + 7 + step)

    prev = read_image(cfg.preview, max_side=256) if cfg.preview else data.images[0]
    prev_t = to_tensor(prev[: prev.shape[0] // 4 * 4, : prev.shape[1] // 4 * 4], dev)
    show = sorted({0, len(names) // 3, 2 * len(names) // 3, len(styles) - 1})

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
        style = resize_tensor_long(styles[k], size)
        big = resize_tensor_long(styles[k], cfg.teacher_style_size) if teacher.active else None
        target = targets[k, size]
        if cfg.style_hue > 0 and rng.random() < cfg.style_hue:
            angle = float(rng.uniform(-math.pi, math.pi))
            style = rotate_hue(style, angle)
            big = rotate_hue(big, angle) if big is not None else None
            with torch.no_grad(), amp.autocast():
                target = {n: gram(v) for n, v in vgg(amp.batch(style)).items()}
        if big is not None:
            teacher.set_style(big)
        with amp.autocast():
            g = net.style_gram(amp.batch(style) * 255.0)
            y = net(x * 255.0, g) / 255.0
            fy = vgg(y)
            with torch.no_grad():
                fx = vgg(x)
        lc = cfg.content_weight * content_loss(fy["relu2_2"], fx["relu2_2"])
        ls = cfg.style_weight * sum(F.mse_loss(gram(fy[n]), t.expand(y.shape[0], -1, -1))
                                    for n, t in target.items())
        losses: dict[str, float] = {}
        # the temporal term (if on): N = the net with this step's style target g, NCHW as amp.batch keeps it here
        total = teacher.add(lc + ls, losses, x, fy, vgg, amp)
        total = temporal.add(total, losses, lambda z: net(z, g), x, y, amp)
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
        for name, s in zip(names, styles):  # the bank's styles only (they come first)
            for size in cfg.bank_sizes:
                bank[f"{name}.{size}"] = gram_matrix(net.model1(resize_tensor_long(s, size) * 255.0))
    spec = ModelSpec(
        name=cfg.name,
        family="msgnet",
        description=(f"MSG-Net (CoMatch, ngf {cfg.ngf}), a bank of {len(names)} styles"
                     + (f", trained on {len(style_files)} style images" if extra_files else "")
                     + "; --style NAME|INDEX|IMG, brush size"),
        input_range=(0.0, 255.0),
        output_range=(0.0, 255.0),
        size_multiple=4,
        styles=tuple(names),
        default_size=240,
        licence=cfg.licence,
        weights=f"{cfg.name.replace('.', '_')}.safetensors",
        extra=cfg.record_teacher(cfg.record_temporal({
            "architecture": {"ngf": cfg.ngf, "n_blocks": cfg.n_blocks, "stem": cfg.stem, "down1": cfg.down1,
                             "up1": cfg.up1, "up2": cfg.up2},
            "training_command": cfg.command,
            "steps": step,
            "batch": cfg.batch,
            "size": cfg.size,
            "style_sizes": list(cfg.style_sizes),
            "bank_sizes": list(cfg.bank_sizes),
            "style_images": [p.name for p in bank_files],
            "extra_styles": {"folders": [Path(d).name for d in cfg.extra_styles], "images": len(extra_files)},
            "held_out_styles": sorted({Path(e).stem for e in cfg.exclude}),
            "style_hue": cfg.style_hue,
            "initialised_from": cfg.init_from,
            "weights": {"content": cfg.content_weight, "style": cfg.style_weight},
            "skipped_batches": skipped,
            "train_seconds_this_run": round(time.perf_counter() - t0, 1),
        })),
    )
    path = save_msgnet(net.cpu(), spec, out / str(spec.weights), bank)
    log.info("wrote %s", path)
    return path


def _init_weights(model: str, arch: MSGNetArch) -> dict[str, torch.Tensor]:
    """The weights of a trained MSG-Net (a registry name or a file) for ``--init-from``.

    Raises:
        ValueError: it is not an MSG-Net of ``arch``.
    """
    from ..models import create_model
    from ..models.msgnet import MSGStyled

    styled = create_model(model)  # a registry name, msgnet:FILE or a bare file
    if not isinstance(styled, MSGStyled):
        raise ValueError(f"--init-from {model}: not an MSG-Net ({type(styled).__name__})")
    if styled.net.arch != arch:
        raise ValueError(f"--init-from {model}: architecture {styled.net.arch} differs from this run's {arch}")
    return {k: v.float() for k, v in styled.net.state_dict().items()}

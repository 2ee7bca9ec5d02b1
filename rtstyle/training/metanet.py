"""Train a MetaNet (Shen et al. 2018): one network that generates a Johnson net for any style image.

Per step: a batch of content crops; the style (an image of the style folder, less ``exclude``: each
once per round in a shuffled order, as a random crop of at least ``style_crop`` of each side, resized
so its longer side is ``style_size``) changes every ``style_every`` steps, as in the paper. The
style's VGG16 mean/std features go through the meta network, the generated transform net stylises the
batch (differentiably, :meth:`~rtstyle.models.metanet.MetaNet.stylize`), and the loss is the VGG16
perceptual loss: content at relu2_2, Gram style loss at relu1_2, relu2_2, relu3_3, relu4_3 against
that style crop, optional total variation, optional compound temporal regulariser of the generated net
(``temporal_weight``, :mod:`.temporal`), optional distillation (``teacher``: the VGG16 relu2_2 + relu3_3
features of the generated net's output should match those of an arbitrary-style teacher's output, e.g.
``linear.r31``'s, for the same content and style crop). Adam (AdamW: decay on the heads only, see below);
resumable checkpoints (``<out>/checkpoint.pt``; rerun the command to resume).

Options beyond the paper: ``init_from`` a trained Johnson net (every generated net starts as it) or a
trained meta network (the run starts as it: more training, or adding the style-norm head);
``style_norms`` (per-style instance-norm affines and an output colour transform, see
:mod:`rtstyle.models.metanet`); ``style_hue`` (that fraction of the style crops get their hue rotated
by a random angle: more colour schemes to learn from than the style folder holds, which the generated
nets' colours need to follow unseen paintings).

Guards (detect, skip, report; never crash):

* flat content crops (per-image std below ``flat_std``: a blank sky, a black frame) are dropped from
  the batch before the loss: through the generated net's instance norms their near-zero variance turns
  into huge gradients. A batch left empty is skipped. Both are counted.
* a non-finite loss or gradient skips the batch (counted).
* the generated weights' raw norm (RMS of the heads' filter outputs before weight normalisation, in
  units of the He scale; about 1 at the start; the max over layers) is logged per step as
  ``gen_norm``; a step where it exceeds ``weight_norm_bound`` logs a warning and is counted. (The
  generated nets themselves are weight-normalised, so they stay bounded; a growing raw norm slows
  learning and hints at drift.) Adam with decoupled weight decay ``head_decay`` on the heads only
  (AdamW; 0 elsewhere) counters that growth without changing the generated nets.

The counts go to ``<out>/report.json`` and into the written model's spec (``extra.training_report``).
Writes ``<out>/<name with dots as underscores>.safetensors`` (fp16), e.g. ``metanet_lite.safetensors``.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..image import read_image
from ..models.metanet import MetaNet, MetaNetArch, metanet_spec, resize_long, save_metanet, style_features
from ..nn.losses import content_loss, gram, tv_loss
from ..nn.vgg import load_vgg16
from ..weights import resolve_weight
from ._loop import (Checkpointer, StepTimer, command_line, pick_device, resolve_amp, run_steps, save_preview_row,
                    to_tensor, write_train_report)
from ._fields import (amp_field, checkpoint_every_field, device_field, preview_every_field, preview_field,
                      report_field, seed_field, vgg_field)
from .data import ImageFolder, rotate_hue, training_files
from .distill import Teacher, TeacherOptions
from .temporal import TemporalOptions, TemporalTerm

__all__ = ["MetaNetTrainConfig", "flat_mask", "rotate_hue", "train_metanet"]

log = logging.getLogger(__name__)


@dataclass
class MetaNetTrainConfig(TemporalOptions, TeacherOptions):
    """Settings of ``rtstyle train metanet``; every field is a CLI flag (the ``temporal_*`` ones from
    :class:`~rtstyle.training.temporal.TemporalOptions`, the ``teacher*`` ones from
    :class:`~rtstyle.training.distill.TeacherOptions`)."""

    content: str = field(metadata={"help": "folder of content photos", "must_exist": "dir", "what": "content folder"})
    styles: str = field(metadata={
        "help": "folder of style images (searched recursively)", "must_exist": "dir", "what": "style folder"})
    out: str = field(metadata={
        "help": "run folder (checkpoint, previews, report, final .safetensors); rerun to resume"})
    name: str = field(default="metanet.lite", metadata={"help": "registry name"})
    vgg: str | None = vgg_field()
    exclude: tuple[str, ...] = field(default=(), metadata={
        "help": "style image (file name or stem) to hold out for evaluation (shown in previews); repeat",
        "action": "append", "metavar": "STEM"})
    steps: int = field(default=20000, metadata={"help": "training steps"})
    batch: int = field(default=4, metadata={"help": "content crops per step"})
    size: int = field(default=256, metadata={"help": "content crop size"})
    style_size: int = field(default=192, metadata={
        "help": "longer side of the style image (also at run time; 192 keeps the style change fast)"})
    style_every: int = field(default=20, metadata={"help": "steps between style changes (the paper: 20)"})
    style_crop: float = field(default=0.6, metadata={
        "help": "random style crops keep at least this fraction of each side (1 = whole image)"})
    width: int = field(default=8, metadata={
        "help": "base width of the generated Johnson net (8 = lite, real time on CPU)"})
    n_res: int = field(default=5, metadata={"help": "residual blocks of the generated net"})
    hidden: int = field(default=64, metadata={"help": "meta-network features per generated layer (128 = the paper)"})
    rank: int = field(default=0, metadata={
        "help": "low-rank heads of this rank (0 = full heads; e.g. 16 for --width 16)"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    content_weight: float = field(default=1e5, metadata={"help": "content loss weight (relu2_2)"})
    style_weight: float = field(default=1e10, metadata={"help": "Gram style loss weight"})
    tv_weight: float = field(default=0.0, metadata={"help": "total-variation loss weight"})
    head_decay: float = field(default=0.1, metadata={
        "help": "decoupled weight decay on the generator heads (holds the raw generated-weight norm down)"})
    init_from: str | None = field(default=None, metadata={
        "help": "warm start (fresh runs only): every generated net starts as this trained Johnson net of the same "
                "--width/--n-res (registry name, e.g. johnson.wave_lite, or a checkpoint file), or the run starts as "
                "this trained meta network (e.g. metanet.lite, or metanet:FILE) of the same "
                "--width/--n-res/--hidden/--rank/--style-size", "metavar": "MODEL"})
    init_style_gain: float = field(default=0.1, metadata={
        "help": "with --init-from: initial scale of the style-dependent head weights (default init: 0.5)"})
    style_norms: bool = field(default=False, metadata={
        "help": "also generate every instance norm's scale and shift and a colour transform of the output per style "
                "(+1.5 MB at the default size; starts at zero, so --init-from a meta network without them starts "
                "where it left off)"})
    style_hue: float = field(default=0.0, metadata={
        "help": "rotate the hue of a style crop by a random angle with probability P (more colour schemes to learn "
                "from than the style folder holds)", "metavar": "P"})
    flat_std: float = field(default=0.02, metadata={
        "help": "content crops with a pixel std below this (0..1 scale) are skipped as flat"})
    weight_norm_bound: float = field(default=10.0, metadata={
        "help": "warn when the generated weights' raw norm (x its initial scale) exceeds this"})
    checkpoint_every: int = checkpoint_every_field(200)
    preview_every: int = preview_every_field(500)
    preview: str | None = preview_field()
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    report: str | None = report_field()
    licence: str = "Apache-2.0 (meta network, trained by the rtstyle project)"
    command: str = field(default_factory=command_line)

    @property
    def arch(self) -> MetaNetArch:
        return MetaNetArch(self.width, self.n_res, self.hidden, self.rank or None, self.style_size, self.style_norms)


def flat_mask(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(N, 3, H, W)`` in [0, 1] -> ``(N,)`` bool: images whose pixel std is below ``threshold``."""
    return x.flatten(1).float().std(1) < threshold


class _Counters:
    """Guard counts, saved in the checkpoint (state_dict protocol, so Checkpointer handles it)."""

    KEYS = ("flat_images", "flat_batches", "nonfinite_batches", "weight_norm_warnings", "trained_steps")

    def __init__(self) -> None:
        self.values: dict[str, float] = {k: 0 for k in self.KEYS}
        self.values["max_gen_norm"] = 0.0

    def state_dict(self) -> dict[str, float]:
        return dict(self.values)

    def load_state_dict(self, sd: dict[str, float]) -> None:
        self.values.update(sd)

    def __getitem__(self, k: str) -> float:
        return self.values[k]

    def add(self, k: str, n: float = 1) -> None:
        self.values[k] += n


def _style_files(folder: str, exclude: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    return training_files(folder, exclude, "style images")  # held: as listed in exclude


def _crop(img: torch.Tensor, rng: np.random.Generator, min_frac: float) -> torch.Tensor:
    if min_frac >= 1.0:
        return img
    h, w = img.shape[-2:]
    fh, fw = rng.uniform(min_frac, 1.0, 2)
    ch, cw = max(16, round(h * fh)), max(16, round(w * fw))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return img[..., y : y + ch, x : x + cw]


def _load_init(name: str) -> torch.nn.Module:
    """A registry name (``johnson.wave_lite``, ``metanet.lite``) or a Johnson / meta network file -> its
    TransformerNet or MetaNet (CPU, fp32)."""
    from ..models import create_model
    from ..models.johnson import TransformerNet

    net = create_model(name)
    if not isinstance(net, (TransformerNet, MetaNet)):
        raise ValueError(f"--init-from {name}: neither a Johnson TransformerNet nor a MetaNet ({type(net).__name__})")
    return net.float().cpu()


def train_metanet(cfg: MetaNetTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) and write ``<out>/<name>.safetensors`` (dots of the name as underscores).

    Returns:
        Path of the trained meta network.
    """
    from ..nn.vgg import file_sha256

    if cfg.style_every < 1:
        raise ValueError(f"style_every must be >= 1, got {cfg.style_every}")
    if not 0.0 < cfg.style_crop <= 1.0:
        raise ValueError(f"style_crop must be in (0, 1], got {cfg.style_crop}")
    cfg.check_temporal(features=False)
    if not 0.0 <= cfg.style_hue <= 1.0:
        raise ValueError(f"style_hue is a probability in [0, 1], got {cfg.style_hue}")
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    train_files, held_files = _style_files(cfg.styles, tuple(cfg.exclude))
    names = [p.stem for p in train_files]
    # decoded once, a little larger than style_size so that crops keep detail
    styles = [to_tensor(read_image(p, max_side=2 * cfg.style_size), "cpu") for p in train_files]
    vgg_file = resolve_weight("vgg16", explicit=cfg.vgg)
    amp = resolve_amp(cfg.amp, dev)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    vgg = amp.module(load_vgg16(vgg_file).to(dev))
    vgg_sha = file_sha256(Path(vgg_file))
    data = ImageFolder(cfg.content, cfg.size, seed=cfg.seed)
    log.info("MetaNet: %d training styles (%d held out), %d content images", len(styles), len(held_files), len(data))

    meta = MetaNet(cfg.width, cfg.n_res, cfg.hidden, cfg.rank or None, cfg.style_size, cfg.style_norms).to(dev)
    init = _load_init(cfg.init_from) if cfg.init_from else None  # a resumed run then overwrites it
    if isinstance(init, MetaNet):
        if init.vgg_sha256 and init.vgg_sha256 != vgg_sha:
            raise ValueError(f"--init-from {cfg.init_from} was trained with another VGG16 file than {vgg_file}")
        meta.init_from_meta(init.to(dev))  # its feature centring and scaling too: its FC was trained on them
        log.info("MetaNet: starts as the meta network %s", cfg.init_from)
    else:
        if init is not None:
            meta.init_from(init, cfg.init_style_gain)
            log.info("MetaNet: every generated net starts as %s (style gain %g)", cfg.init_from, cfg.init_style_gain)
        with torch.no_grad():  # input centring and scaling from the whole styles (restored by a resume)
            all_feats = torch.cat([style_features(vgg, resize_long(s.to(dev), cfg.style_size)) for s in styles])
            meta.set_feature_stats(all_feats)
    meta.vgg_sha256 = vgg_sha
    meta.attach_vgg(vgg)
    head_params = list(meta.heads.parameters())
    ids = {id(p) for p in head_params}
    opt = torch.optim.AdamW([{"params": head_params, "weight_decay": cfg.head_decay},
                             {"params": [p for p in meta.parameters() if id(p) not in ids], "weight_decay": 0.0}],
                            lr=cfg.lr)
    counters = _Counters()
    temporal = TemporalTerm(cfg, cfg.seed)
    teacher = Teacher(cfg, dev)
    ck = Checkpointer(out, cfg, ("width", "n_res", "hidden", "rank", "style_norms"))
    modules: dict[str, Any] = {"model": meta, "optim": opt, "counters": counters}
    step = ck.resume(modules, dev)
    if step:
        data.rng = np.random.default_rng(cfg.seed + 7 + step)

    def style_of_block(block: int) -> tuple[int, torch.Tensor, torch.Tensor | None]:
        """The style (and crop, and hue rotation) of the block of ``style_every`` steps: every style once
        per round, in a shuffled order; a function of (seed, block) only, so a resumed run continues the
        same sequence. Also the same crop at ``teacher_style_size`` for the teacher (None without one)."""
        n = len(styles)
        k = int(np.random.default_rng([cfg.seed, block // n]).permutation(n)[block % n])
        rng = np.random.default_rng([cfg.seed, block, 1])
        crop = _crop(styles[k], rng, cfg.style_crop)
        img = resize_long(crop, cfg.style_size)
        big = resize_long(crop, cfg.teacher_style_size) if teacher.active else None
        if cfg.style_hue > 0 and rng.random() < cfg.style_hue:
            angle = float(rng.uniform(-math.pi, math.pi))
            img = rotate_hue(img, angle)
            big = rotate_hue(big, angle) if big is not None else None
        return k, img.to(dev), big.to(dev) if big is not None else None

    prev = read_image(cfg.preview, max_side=256) if cfg.preview else data.images[0]
    prev_t = to_tensor(prev[: prev.shape[0] // 4 * 4, : prev.shape[1] // 4 * 4], dev)
    show = [styles[i] for i in sorted({0, len(styles) // 2, len(styles) - 1})]
    show += [to_tensor(read_image(p, max_side=2 * cfg.style_size), "cpu") for p in held_files[:2]]  # first two excluded

    def preview(step: int) -> None:
        meta.eval()
        row = [prev_t]
        with torch.no_grad():
            for s in show:
                s = resize_long(s.to(dev), cfg.style_size)
                row += [s, meta.stylize(prev_t * 255.0, style_features(vgg, s)).div(255.0)]
        meta.train()
        save_preview_row(out / f"preview_{step:06d}.jpg", row)

    block = -1
    k, feats, targets = 0, torch.empty(0), {}

    def train_step(step: int) -> dict[str, float] | None:
        nonlocal block, k, feats, targets
        if step // cfg.style_every != block:
            block = step // cfg.style_every
            k, s, big = style_of_block(block)
            with torch.no_grad():
                with amp.autocast():
                    fs = vgg(amp.batch(s))
                targets = {n: gram(v) for n, v in fs.items()}  # Gram in fp32, as the loss takes it
                feats = style_features(vgg, s)
                if big is not None:
                    teacher.set_style(big)
        x = amp.batch(data.batch(cfg.batch).to(dev))
        flat = flat_mask(x, cfg.flat_std)
        if bool(flat.any()):
            counters.add("flat_images", int(flat.sum()))
            x = x[~flat]
            if x.shape[0] == 0:
                counters.add("flat_batches")
                log.warning("step %d: every content crop of the batch is flat: batch skipped", step)
                return None
        with amp.autocast():
            gen, norms = meta.generate_weights(feats, with_stats=True)  # type: ignore[misc]
            y = meta.run(x * 255.0, gen) / 255.0
            fy = vgg(y)
            with torch.no_grad():
                fx = vgg(x)
        y = y.float()
        lc = cfg.content_weight * content_loss(fy["relu2_2"], fx["relu2_2"])
        ls = cfg.style_weight * sum(F.mse_loss(gram(fy[n]), t.expand(y.shape[0], -1, -1)) for n, t in targets.items())
        lt = cfg.tv_weight * tv_loss(y * 255.0) if cfg.tv_weight else torch.zeros((), device=dev)
        losses: dict[str, float] = {}
        # the temporal term (if on): N = the net generated for this step's style
        loss = teacher.add(lc + ls + lt, losses, x, fy, vgg, amp)
        loss = temporal.add(loss, losses, lambda z: meta.run(z, gen), x, y, amp)
        opt.zero_grad(set_to_none=True)
        gn = float("nan")
        if math.isfinite(loss.item()):
            amp.backward(loss)
            if amp.scaler is not None:
                amp.scaler.unscale_(opt)  # the norm of the true gradients
            gn = float(torch.nn.utils.clip_grad_norm_(meta.parameters(), float("inf")))
        if not math.isfinite(gn):
            counters.add("nonfinite_batches")
            log.warning("non-finite loss or gradient at step %d (style %s): batch skipped", step, names[k])
            opt.zero_grad(set_to_none=True)
            if amp.scaler is not None:
                amp.scaler.update()  # fp16: lower the scale after an overflow
            return None
        amp.step(opt)
        counters.add("trained_steps")
        g = float(norms.max())
        counters.values["max_gen_norm"] = max(counters["max_gen_norm"], g)
        if g > cfg.weight_norm_bound:
            counters.add("weight_norm_warnings")
            n_warn = int(counters["weight_norm_warnings"])
            if n_warn == 1 or n_warn % 500 == 0:
                log.warning("step %d: generated weights' raw norm %.3g exceeds the bound %.3g "
                            "(%d steps so far; the generated nets stay weight-normalised)",
                            step + 1, g, cfg.weight_norm_bound, n_warn)
        return {"content": lc.item(), "style": ls.item(), "tv": lt.item(), **losses, "style_index": k, "gen_norm": g,
                "grad_norm": gn, "batch": x.shape[0]}

    def postfix(v: Mapping[str, float]) -> dict[str, str]:
        return {"content": f"{v['content']:.3g}", "style": f"{v['style']:.3g}", "gen": f"{v['gen_norm']:.2f}"}

    t0 = time.perf_counter()
    meta.train()
    start, timer = step, StepTimer()
    step = run_steps(cfg, train_step, start=step, ck=ck, modules=modules, preview=preview, desc=f"train {cfg.name}",
                     progress=progress, postfix=postfix, advance_bar_on_skip=True, logger=log, timer=timer)
    if cfg.report:
        write_train_report(cfg.report, family="metanet", amp=amp, timer=timer, start=start, end=step,
                           batch=cfg.batch, size=cfg.size, width=cfg.width)

    report = {k: (int(v) if k != "max_gen_norm" else round(float(v), 4)) for k, v in counters.values.items()}
    report["steps"] = step
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if any(report[k] for k in ("flat_images", "nonfinite_batches", "weight_norm_warnings")):
        log.warning("training report: %s", report)
    spec = metanet_spec(
        cfg.name, cfg.arch, licence=cfg.licence, weights=f"{cfg.name.replace('.', '_')}.safetensors",
        extra=cfg.record_teacher(cfg.record_temporal({
            "training_command": cfg.command,
            "steps": step,
            "batch": cfg.batch,
            "size": cfg.size,
            "style_every": cfg.style_every,
            "style_crop": cfg.style_crop,
            "style_images": [p.name for p in train_files],
            "held_out_styles": [p.name for p in held_files],
            "weights": {"content": cfg.content_weight, "style": cfg.style_weight, "tv": cfg.tv_weight},
            "lr": cfg.lr,
            "head_decay": cfg.head_decay,
            "style_hue": cfg.style_hue,
            "initialised_from": cfg.init_from,
            "vgg_sha256": vgg_sha,
            "training_report": report,
            "train_seconds_this_run": round(time.perf_counter() - t0, 1),
        })),
    )
    meta.eval()
    path = save_metanet(meta.cpu(), spec, out / str(spec.weights))
    log.info("wrote %s", path)
    return path

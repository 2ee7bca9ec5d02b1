"""Train the AdaIN decoder for the VGG16 relu4_1 encoder (Huang & Belongie 2017, section 6).

Per step: a batch of content crops and a batch of style crops are encoded; AdaIN gives the target
``t = AdaIN(f(c), f(s))`` at relu4_1; the decoder output ``g(t)`` is re-encoded and trained with

* content loss ``|| f(g(t)) - t ||^2`` at relu4_1 (the AdaIN target, not the content features);
* style loss ``sum_i || mu(phi_i(g(t))) - mu(phi_i(s)) ||^2 + || sigma(...) - sigma(...) ||^2``
  over relu1_1, relu2_1, relu3_1, relu4_1;
* an identity term ``|| g(f(c)) - c ||^2`` in pixels (weight ``identity_weight``; 0 gives the paper's
  loss exactly): decoding the content's own features must give the content back. Learning to
  invert the encoder through the relu4_1 loss alone is slow (after 1,300 steps of batch 4 the
  decoder's outputs still carried no content structure here); the pixel identity term, as in
  SANet's identity loss (Park & Lee 2019), teaches the inversion directly and also makes
  ``alpha = 0`` a faithful reconstruction.

The encoder stays frozen; its file's sha256 is written into the decoder, which then refuses any
other encoder (:func:`rtstyle.models.vgg_adain.load_pair`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..image import read_image
from ..models.adain import adain, channel_stats
from ..models.vgg_adain import AdaINDecoder, EncoderMismatchError, load_vgg16_encoder, save_decoder, vgg16_adain_spec
from ._loop import (Checkpointer, StepTimer, command_line, loss_postfix, optimise, pick_device, resolve_amp, run_steps,
                    save_preview_row, to_tensor, write_train_report)
from ._fields import (amp_field, checkpoint_every_field, device_field, preview_every_field, report_field,
                      seed_field, vgg_field)
from .data import ImageFolder

__all__ = ["AdaINTrainConfig", "train_adain"]

log = logging.getLogger(__name__)


@dataclass
class AdaINTrainConfig:
    """Settings of ``rtstyle train adain``; every field is a CLI flag."""

    content: str = field(metadata={"help": "folder of content photos", "must_exist": "dir", "what": "content folder"})
    styles: str = field(metadata={
        "help": "folder of style images (searched recursively)", "must_exist": "dir", "what": "style folder"})
    out: str = field(metadata={"help": "run folder (checkpoint, previews, final .safetensors); rerun to resume"})
    name: str = field(default="adain.vgg16", metadata={"help": "registry name"})
    vgg: str | None = vgg_field("VGG16 encoder weights")
    exclude: tuple[str, ...] = field(default=(), metadata={
        "help": "style image (file name or stem) to hold out for evaluation; repeat",
        "action": "append", "metavar": "STEM"})
    steps: int = field(default=8000, metadata={"help": "training steps"})
    batch: int = field(default=4, metadata={"help": "content/style pairs per step"})
    size: int = field(default=128, metadata={"help": "training crop size (images decoded at 2x)"})
    base: int = field(default=32, metadata={"help": "decoder base width (64 = the paper's decoder)"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate"})
    lr_decay: float = field(default=5e-5, metadata={
        "help": "inverse-time decay, the paper's: the rate at step t is lr / (1 + lr_decay * t)"})
    style_weight: float = field(default=10.0, metadata={
        "help": "mean/std style loss weight (relu1_1, relu2_1, relu3_1, relu4_1)"})
    content_weight: float = field(default=1.0, metadata={
        "help": "content loss weight (relu4_1, against the AdaIN target)"})
    identity_weight: float = field(default=0.0, metadata={
        "help": "pixel identity loss |dec(enc(c)) - c|^2 (SANet-style); speeds up learning to invert the encoder"})
    checkpoint_every: int = checkpoint_every_field(200)
    preview_every: int = preview_every_field(500)
    preview_content: str | None = field(default=None, metadata={
        "help": "content image of the previews (default: the first content photo)"})
    preview_style: str | None = field(default=None, metadata={
        "help": "style image of the previews (default: the first style image)"})
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    report: str | None = report_field()
    licence: str = "Apache-2.0 (decoder, trained by the rtstyle project)"
    command: str = field(default_factory=command_line)


def _meanstd_loss(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    ma, sa = channel_stats(a, eps)
    mb, sb = channel_stats(b, eps)
    return F.mse_loss(ma, mb) + F.mse_loss(sa, sb)


def train_adain(cfg: AdaINTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) the decoder and write ``<out>/<name>.safetensors`` (fp16).

    Returns:
        Path of the trained decoder.
    """
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    amp = resolve_amp(cfg.amp, dev)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    enc = amp.module(load_vgg16_encoder(cfg.vgg).to(dev))
    assert enc.sha256 is not None
    content = ImageFolder(cfg.content, cfg.size, short_side=2 * cfg.size, seed=cfg.seed)
    styles = ImageFolder(cfg.styles, cfg.size, short_side=2 * cfg.size, seed=cfg.seed + 1, exclude=cfg.exclude)
    log.info("training the AdaIN decoder on %d content and %d style images", len(content), len(styles))

    dec = amp.module(AdaINDecoder(cfg.base).to(dev))
    opt = torch.optim.Adam(dec.parameters(), lr=cfg.lr)
    ck = Checkpointer(out, cfg, ("base",))
    if ck.path.exists():  # a decoder only inverts one encoder: never resume against another
        prev = torch.load(ck.path, map_location="cpu", weights_only=False).get("encoder_sha256")
        if prev and prev != enc.sha256:
            raise EncoderMismatchError(
                f"{ck.path} was trained against the VGG16 with sha256 {prev[:16]}..., but the encoder found "
                f"({enc.sha256[:16]}...) is a different file: resume with that file (--vgg) or use a new --out")
    step = ck.resume({"model": dec, "optim": opt}, dev)
    if step:
        content.rng = np.random.default_rng(cfg.seed + step)
        styles.rng = np.random.default_rng(cfg.seed + 1 + step)

    def fixed(path: str | None, folder: ImageFolder) -> torch.Tensor:
        img = read_image(path, max_side=256) if path else folder.images[0]
        h, w = img.shape[0] // 8 * 8, img.shape[1] // 8 * 8
        return to_tensor(img[:h, :w], dev)

    pc, ps = fixed(cfg.preview_content, content), fixed(cfg.preview_style, styles)

    def preview(step: int) -> None:
        dec.eval()
        with torch.no_grad():
            m, s = channel_stats(enc(ps))
            y = dec(adain(enc(pc), m, s))
        dec.train()
        save_preview_row(out / f"preview_{step:06d}.jpg", [pc, ps, y])

    skipped = 0

    def train_step(step: int) -> dict[str, float] | None:
        nonlocal skipped
        for g in opt.param_groups:  # the paper's inverse-time decay
            g["lr"] = cfg.lr / (1.0 + cfg.lr_decay * step)
        c = amp.batch(content.batch(cfg.batch).to(dev))
        s = amp.batch(styles.batch(cfg.batch).to(dev))
        with amp.autocast():
            with torch.no_grad():
                s_taps = enc.taps(s)
                fc = enc(c)
            y_id = dec(fc) if cfg.identity_weight else None
        # the statistics and the losses in fp32 (variances of bf16 features lose too many digits)
        s_taps = {k: v.float() for k, v in s_taps.items()}
        m, sd = channel_stats(s_taps["r41"])
        t = adain(fc.float(), m, sd)
        with amp.autocast():
            y = dec(amp.batch(t))
            y_taps = enc.taps(y)
        y_taps = {k: v.float() for k, v in y_taps.items()}
        lc = cfg.content_weight * F.mse_loss(y_taps["r41"], t)
        ls = cfg.style_weight * sum(_meanstd_loss(y_taps[k], s_taps[k]) for k in ("r11", "r21", "r31", "r41"))
        li = cfg.identity_weight * F.mse_loss(y_id.float(), c) if y_id is not None else torch.zeros(())
        if not optimise(opt, lc + ls + li, amp):
            skipped += 1
            log.warning("non-finite loss at step %d: batch skipped (%d so far)", step, skipped)
            return None
        return {"content": lc.item(), "style": ls.item(), "identity": li.item()}

    t0 = time.perf_counter()
    dec.train()
    start, timer = step, StepTimer()
    step = run_steps(cfg, train_step, start=step, ck=ck, modules={"model": dec, "optim": opt}, preview=preview,
                     save_extra={"encoder_sha256": enc.sha256}, desc=f"train {cfg.name}", progress=progress,
                     postfix=lambda v: loss_postfix(v, ("content", "style", "identity")), logger=log, timer=timer)
    if cfg.report:
        write_train_report(cfg.report, family="adain", amp=amp, timer=timer, start=start, end=step,
                           batch=cfg.batch, size=cfg.size, base=cfg.base)

    spec = vgg16_adain_spec(cfg.name, cfg.base, enc.sha256, {
        "training_command": cfg.command,
        "steps": step,
        "batch": cfg.batch,
        "size": cfg.size,
        "held_out_styles": list(cfg.exclude),
        "weights": {"content": cfg.content_weight, "style": cfg.style_weight, "identity": cfg.identity_weight},
        "skipped_batches": skipped,
        "train_seconds_this_run": round(time.perf_counter() - t0, 1),
    })
    from dataclasses import replace

    spec = replace(spec, licence=cfg.licence, weights=f"{cfg.name.replace('.', '_')}.safetensors")
    path = save_decoder(dec.cpu(), spec, out / str(spec.weights), enc.sha256)
    log.info("wrote %s", path)
    return path

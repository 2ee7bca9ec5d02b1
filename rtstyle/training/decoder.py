"""Train a reconstruction decoder for the relu1_1 or relu2_1 level of the normalised-VGG19 encoder.

``../shared``'s ``dec_r11`` / ``dec_r21`` files do not reconstruct (another layout, <= 10 dB), so
the multi-level methods (the coarse-to-fine WCT cascade of Li et al. 2017, multi-level AdaIN) had
only the relu3_1 decoder. The relu1_1 and relu2_1 *encoders* are prefixes of the relu3_1 file
(:func:`rtstyle.models.lst.load_encoder`); this trainer fits the matching decoder
(:class:`~rtstyle.models.lst.LSTDecoder`, the LinearStyleTransfer layout) with the loss of the WCT
paper: pixel reconstruction plus ``feature_weight`` x feature reconstruction
(``|| enc(dec(f)) - f ||^2``, features divided by their mean square on a probe batch so the weight
does not depend on the level).

The decoder has to invert *transformed* features too (a cascade feeds it WCT/AdaIN outputs), so
every batch mixes content photos and style images; held-out paintings (``exclude``, default
:data:`rtstyle.eval.arbitrary.HELD_OUT_STYLES`) never enter it. Under ``--init-from-r31`` (default)
the layers start from the relu3_1 decoder's last layers of the same shape (conv9..conv11 for level
21, conv11 for level 11), which already turn 64/128-channel half- and full-resolution maps into RGB;
then (``--fit-last``, default) the last conv is set to its least-squares fit on a probe batch
(:func:`fit_last_layer`: the relu1_1 decoder is one linear conv, so that is its optimum up to the
feature term).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..eval.arbitrary import HELD_OUT_STYLES
from ..models.lst import (DECODER_FORMAT, LSTDecoder, load_decoder, load_encoder, save_decoder)
from ..weights import resolve_weight, sha256_file
from ._fields import checkpoint_every_field, device_field, preview_every_field, report_field, seed_field
from ._loop import (Checkpointer, StepTimer, command_line, loss_postfix, optimise, pick_device, resolve_amp,
                    run_steps, save_preview_row, write_train_report)
from .data import ImageFolder

__all__ = ["DecoderTrainConfig", "fit_last_layer", "init_from_r31", "train_decoder"]

log = logging.getLogger(__name__)

# the relu3_1 decoder's layers that a shallower decoder's layers start from (same shapes)
_FROM_R31 = {21: {"conv5": "conv9", "conv6": "conv10", "conv7": "conv11"}, 11: {"conv3": "conv11"}}


@dataclass
class DecoderTrainConfig:
    """Settings of ``rtstyle train decoder``; every field with ``help`` metadata is a flag."""

    content: str = field(metadata={"help": "folder of content photos (searched recursively)", "must_exist": "dir",
                                   "what": "content folder"})
    styles: str = field(metadata={"help": "folder of style images mixed into every batch (searched recursively)",
                                  "must_exist": "dir", "what": "style folder"})
    out: str = field(metadata={"help": "run folder (checkpoint, history, previews, the trained decoder)"})
    level: int = field(default=21, metadata={"help": "encoder level to invert: 11 (relu1_1) or 21 (relu2_1)",
                                             "choices": (11, 21)})
    encoder: str | None = field(default=None, metadata={"help": "relu3_1 encoder file (default: lst/vgg_r31)"})
    decoder31: str | None = field(default=None, metadata={
        "help": "relu3_1 decoder file the layers start from (default: lst/dec_r31)"})
    init_from_r31: bool = field(default=True, metadata={
        "help": "start from the relu3_1 decoder's last layers (--no-init-from-r31: random start)"})
    fit_last: bool = field(default=True, metadata={
        "help": "start the last conv at its least-squares fit on a probe batch (--no-fit-last: as initialised)"})
    fit_crops: int = field(default=32, metadata={"help": "crops (half content, half style) of the least-squares fit"})
    exclude: tuple[str, ...] = field(default=HELD_OUT_STYLES, metadata={
        "help": "style file stem never trained on (a held-out painting); repeat", "action": "append",
        "metavar": "STEM"})
    steps: int = field(default=2000, metadata={
        "help": "total training steps (a rerun resumes; 0: only the least-squares fit, enough for level 11)"})
    batch: int = field(default=8, metadata={"help": "crops per step (half content, half style)"})
    size: int = field(default=128, metadata={"help": "crop size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate (cosine decay to 5% of it)"})
    feature_weight: float = field(default=1.0, metadata={"help": "weight of the feature reconstruction loss"})
    checkpoint_every: int = checkpoint_every_field(200)
    preview_every: int = preview_every_field(500)
    seed: int = seed_field()
    device: str = device_field()
    amp: str = field(default="fp32", metadata={
        "help": "mixed precision (default fp32: a decoder's reconstruction is what it is for; auto/bf16 train faster)",
        "choices": ("auto", "fp32", "bf16", "fp16", "off")})
    report: str | None = report_field()
    command: str = field(default_factory=command_line)  # recorded in the weights; not a flag


def init_from_r31(dec: LSTDecoder, r31: LSTDecoder) -> None:
    """Copy the relu3_1 decoder's last layers into the same-shaped layers of ``dec`` (level 11 or 21)."""
    src = r31.state_dict()
    with torch.no_grad():
        for mine, theirs in _FROM_R31[dec.level].items():
            getattr(dec, mine).weight.copy_(src[f"{theirs}.weight"])
            getattr(dec, mine).bias.copy_(src[f"{theirs}.bias"])


@torch.no_grad()
def fit_last_layer(dec: LSTDecoder, enc: torch.nn.Module, images: torch.Tensor, ridge: float = 1e-6) -> float:
    """Set the decoder's last (linear) 3x3 conv to the least-squares fit of ``images`` from its input.

    The last conv is linear in its weights, so on fixed hidden features the pixel MSE has a closed-form
    minimum (ridge regression on the reflect-padded 3x3 neighbourhoods). For the relu1_1 decoder,
    a single conv, that is the whole decoder; deeper ones start training from it. The encoder's
    activations are ~255x the image scale, which Adam would take thousands of steps to undo.

    Returns:
        The fit's PSNR (dB) on ``images``.
    """
    last = len(dec._layers) - 1
    key, up = dec._layers[last]

    def design(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = enc(img[None]).float()
        for k, u in dec._layers[:last]:
            if u:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = F.relu(getattr(dec, k)(F.pad(h, (1, 1, 1, 1), mode="reflect")))
        if up:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        cols = F.unfold(F.pad(h, (1, 1, 1, 1), mode="reflect"), 3)[0].t().double()  # (H*W, C*9)
        x = torch.cat([cols, torch.ones(cols.shape[0], 1, dtype=cols.dtype, device=cols.device)], 1)
        return x, img.permute(1, 2, 0).reshape(-1, 3).double()

    xtx: torch.Tensor | None = None
    xty: torch.Tensor | None = None
    for img in images:  # one image at a time: the design matrix of a batch is hundreds of MB
        x, y = design(img)
        xtx = x.t() @ x if xtx is None else xtx + x.t() @ x
        xty = x.t() @ y if xty is None else xty + x.t() @ y
    assert xtx is not None and xty is not None
    lam = ridge * xtx.diagonal().mean()
    sol = torch.linalg.solve(xtx + lam * torch.eye(xtx.shape[0], dtype=xtx.dtype, device=xtx.device), xty)
    conv = getattr(dec, key)
    conv.weight.copy_(sol[:-1].t().reshape(conv.weight.shape).float())
    conv.bias.copy_(sol[-1].float())
    se = n = 0.0
    for img in images:
        x, y = design(img)
        se += float((x @ sol - y).pow(2).sum())
        n += y.numel()
    mse = se / max(n, 1.0)
    return float(-10 * np.log10(max(mse, 1e-12)))


def train_decoder(cfg: DecoderTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) the decoder and write ``<out>/lst_dec_r{level}.safetensors``.

    Returns:
        Path of the trained decoder.
    """
    if cfg.level not in _FROM_R31:
        raise ValueError(f"level must be 11 or 21 (the relu3_1 decoder is pretrained), got {cfg.level}")
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    enc_file = resolve_weight("lst/vgg_r31", explicit=cfg.encoder)
    amp = resolve_amp(cfg.amp, dev)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    enc = amp.module(load_encoder(cfg.level, enc_file).to(dev))
    dec = LSTDecoder(cfg.level)
    if cfg.init_from_r31:
        init_from_r31(dec, load_decoder(31, resolve_weight("lst/dec_r31", explicit=cfg.decoder31)))
    dec = amp.module(dec.to(dev))
    half = max(1, cfg.batch // 2)
    content = ImageFolder(cfg.content, cfg.size, seed=cfg.seed)
    styles = ImageFolder(cfg.styles, cfg.size, short_side=2 * cfg.size, seed=cfg.seed + 1, exclude=cfg.exclude)
    style_files = styles.files  # the training_styles() list: both come from training_files()
    log.info("training the relu%d_1 decoder on %d content and %d style images (%d held out)", cfg.level // 10,
             len(content), len(styles), len(cfg.exclude))

    probe_rng = np.random.default_rng(cfg.seed + 99)
    content.rng, styles.rng = probe_rng, probe_rng
    probe = torch.cat([content.batch(half), styles.batch(cfg.batch - half)]).to(dev)
    with torch.no_grad():
        feat_scale = float(enc(probe).pow(2).mean().clamp_min(1e-12))
    opt = torch.optim.Adam(dec.parameters(), lr=cfg.lr)
    ck = Checkpointer(out, cfg, ("level",))
    fit_psnr = None
    if cfg.fit_last and not ck.path.exists():  # a resume keeps the trained layer
        fit = torch.cat([content.batch(cfg.fit_crops // 2), styles.batch(cfg.fit_crops - cfg.fit_crops // 2)]).to(dev)
        fit_psnr = fit_last_layer(dec, enc, fit)
        log.info("last layer fitted by least squares: %.1f dB on %d crops", fit_psnr, fit.shape[0])
    step = ck.resume({"model": dec, "optim": opt}, dev)

    def set_lr(step: int) -> None:  # cosine from lr to 5% of it over the run (a resume continues the curve)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, step / max(1, cfg.steps)))))
    content.rng = np.random.default_rng(cfg.seed + step)
    styles.rng = np.random.default_rng(cfg.seed + 1 + step)

    def losses(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = amp.batch(x)
        with torch.no_grad(), amp.autocast():
            f = enc(x)
        with amp.autocast():
            y = dec(f)
            fy = enc(y)
        pix = F.mse_loss(y.float(), x.float())
        feat = F.mse_loss(fy.float(), f.float()) / feat_scale
        return pix, feat, y

    def preview(step: int) -> None:
        with torch.no_grad():
            _, _, y = losses(probe[:1])
            _, _, ys = losses(probe[half:half + 1])
        save_preview_row(out / f"preview_{step:06d}.jpg",
                         [probe[:1], y.float().clamp(0, 1).contiguous(), probe[half:half + 1],
                          ys.float().clamp(0, 1).contiguous()])

    skipped = 0

    def train_step(step: int) -> dict[str, float] | None:
        nonlocal skipped
        x = torch.cat([content.batch(half), styles.batch(cfg.batch - half)]).to(dev)
        pix, feat, _ = losses(x)
        total = pix + cfg.feature_weight * feat
        set_lr(step)
        if not optimise(opt, total, amp):
            skipped += 1
            log.warning("non-finite loss at step %d: batch skipped (%d so far)", step, skipped)
            return None
        return {"pixel": pix.item(), "feature": feat.item(), "psnr": float(-10 * torch.log10(pix.detach())),
                "total": total.item()}

    t0 = time.perf_counter()
    dec.train()
    start, timer = step, StepTimer()
    step = run_steps(cfg, train_step, start=step, ck=ck, modules={"model": dec, "optim": opt}, preview=preview,
                     desc=f"train dec r{cfg.level}", progress=progress,
                     postfix=lambda v: loss_postfix(v, ("psnr", "feature")), logger=log, timer=timer)
    if cfg.report:
        write_train_report(cfg.report, family="decoder", amp=amp, timer=timer, start=start, end=step,
                           batch=cfg.batch, size=cfg.size, level=cfg.level)
    meta = {
        "training_command": cfg.command,
        "steps": str(step),
        "held_out_styles": ",".join(cfg.exclude),
        "training_styles": str(len(style_files)),
        "encoder_sha256": sha256_file(enc_file),
        "step_s_median": f"{timer.median_after_warmup() or 0:.3f}",
        "train_seconds_this_run": f"{time.perf_counter() - t0:.1f}",
        "skipped_batches": str(skipped),
        "amp": amp.mode,
        "least_squares_fit_psnr": "" if fit_psnr is None else f"{fit_psnr:.2f}",
        "licence": "trained here (rtstyle, same licence as the package) against the BSD-2 LinearStyleTransfer encoder",
    }
    path = save_decoder(dec.cpu().eval().to(memory_format=torch.contiguous_format), out / f"lst_dec_r{cfg.level}.safetensors",
                        meta)
    log.info("wrote %s (format %s)", path, DECODER_FORMAT)
    return path

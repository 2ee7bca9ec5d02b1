"""Train the ``linear.r31`` transform (:class:`rtstyle.models.linear.LinearTransform`).

Per step a batch of content crops and a batch of style crops go through the frozen relu3_1 encoder;
the transform maps the content features to the style's statistics; the frozen decoder turns them
into an image, scored with the VGG16 loss network against the style crop (Gram and mean/std style
losses at relu1_2, relu2_2, relu3_3, relu4_3) and the content crop (content loss at relu4_1). Only
the transform's ``compress`` / ``unzip`` convolutions train; they start from the principal subspace
of real content and style features, so step 0 is already a working (low-rank) whitening/colouring.

Under ``--amp bf16`` (the default ``auto`` on a CPU with bf16 in hardware) the frozen encoder,
decoder and loss network run in bf16 autocast and channels-last; the transform (covariances and
Newton-Schulz square roots) always runs in fp32, outside autocast.

Each loss is divided by its value on a fixed probe batch before training (the VGG16 file's
activation scale then does not matter), and weighted by ``content_weight`` / ``gram_weight`` /
``meanstd_weight``.

Held-out paintings (``exclude``, by file stem; default :data:`rtstyle.eval.arbitrary.HELD_OUT_STYLES`)
never enter the style list, nor do renamed copies of them: :func:`rtstyle.training.data.training_files`
is the one place that builds it (the style :class:`~.data.ImageFolder` and :func:`training_styles` use it).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..eval.arbitrary import HELD_OUT_STYLES
from ..models.linear import LinearTransform, base_spec, save_transform
from ..models.lst import load_decoder, load_encoder
from ..weights import resolve_weight, sha256_file
from ._loop import (Amp, Checkpointer, StepTimer, command_line, loss_postfix, optimise, pick_device, resolve_amp,
                    run_steps, save_preview_row, write_train_report)
from .data import ImageFolder, training_files
from ..nn.losses import content_loss, gram, meanstd_style_loss
from ..nn.vgg import STYLE_LAYERS, load_vgg16
from ._fields import amp_field, device_field, report_field, seed_field

__all__ = ["LinearTrainConfig", "train_linear", "training_styles"]

log = logging.getLogger(__name__)

_CONTENT_TAP = "relu4_1"


@dataclass
class LinearTrainConfig:
    """Settings of ``rtstyle train linear``; every field with ``help`` metadata is a flag."""

    content: str = field(metadata={"help": "folder of content photos (searched recursively)", "must_exist": "dir",
                                   "what": "content folder"})
    styles: str = field(metadata={"help": "folder of style images (searched recursively: public_domain/, extra/ too)",
                                  "must_exist": "dir", "what": "style folder"})
    out: str = field(metadata={"help": "run folder (checkpoint, history, previews, the trained transform)"})
    name: str = field(default="linear.r31", metadata={"help": "model name written into the transform's spec"})
    vgg: str | None = field(default=None, metadata={"help": "VGG16 loss-network weights (default: resolved vgg16)"})
    encoder: str | None = field(default=None, metadata={"help": "relu3_1 encoder file (default: lst/vgg_r31)"})
    decoder: str | None = field(default=None, metadata={"help": "relu3_1 decoder file (default: lst/dec_r31)"})
    exclude: tuple[str, ...] = field(default=HELD_OUT_STYLES, metadata={
        "help": "style file stem never trained on (a held-out painting); repeat (default: the held-out matrix's paintings)",
        "action": "append", "metavar": "STEM"})
    k: int = field(default=32, metadata={"help": "compressed channels: size of the transform matrix"})
    iters: int = field(default=20, metadata={"help": "Newton-Schulz iterations for the matrix square roots"})
    ridge: float = field(default=1e-3, metadata={"help": "covariance regulariser relative to its mean eigenvalue"})
    steps: int = field(default=600, metadata={"help": "total training steps (a rerun resumes)"})
    batch: int = field(default=4, metadata={"help": "content/style pairs per step"})
    size: int = field(default=192, metadata={"help": "crop size of content and style"})
    lr: float = field(default=5e-4, metadata={"help": "Adam learning rate"})
    content_weight: float = field(default=1.0, metadata={"help": "weight of the relu4_1 content loss (normalised)"})
    gram_weight: float = field(default=1.0, metadata={"help": "weight of the Gram style loss (normalised)"})
    meanstd_weight: float = field(default=1.0, metadata={"help": "weight of the mean/std style loss (normalised)"})
    pca_images: int = field(default=16, metadata={"help": "content+style crops the starting subspace is computed from"})
    checkpoint_every: int = field(default=50, metadata={"help": "save the checkpoint every N steps"})
    preview_every: int = field(default=100, metadata={"help": "write a preview every N steps (0: only at the end)"})
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    report: str | None = report_field()
    command: str = field(default_factory=command_line)  # recorded in the weights; not a flag


def training_styles(folder: str | Path, exclude: tuple[str, ...]) -> list[Path]:
    """The style images trained on: every image under ``folder`` whose stem is not in ``exclude``.

    Raises:
        FileNotFoundError: nothing left after the exclusion.
    """
    return training_files(folder, exclude, "style images")[0]


def train_linear(cfg: LinearTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) the transform and write ``<out>/linear_r31.safetensors``.

    Returns:
        Path of the trained transform.
    """
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    enc_file = resolve_weight("lst/vgg_r31", explicit=cfg.encoder)
    dec_file = resolve_weight("lst/dec_r31", explicit=cfg.decoder)
    amp = resolve_amp(cfg.amp, dev)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    enc = amp.module(load_encoder(31, enc_file).to(dev))
    dec = amp.module(load_decoder(31, dec_file).to(dev))
    vgg = amp.module(load_vgg16(cfg.vgg, taps=(*STYLE_LAYERS, _CONTENT_TAP)).to(dev))
    content = ImageFolder(cfg.content, cfg.size, seed=cfg.seed)
    styles = ImageFolder(cfg.styles, cfg.size, short_side=2 * cfg.size, seed=cfg.seed + 1, exclude=cfg.exclude)
    style_files = styles.files  # the training_styles() list: both come from training_files()
    log.info("training linear.r31 on %d content and %d style images (%d held out)", len(content), len(styles),
             len(cfg.exclude))

    tr = LinearTransform(enc.out_channels, cfg.k, cfg.iters, cfg.ridge).to(dev)
    probe_rng = np.random.default_rng(cfg.seed + 99)
    content.rng, styles.rng = probe_rng, probe_rng
    with torch.no_grad():
        pc = content.batch(max(cfg.batch, cfg.pca_images // 2)).to(dev)
        ps = styles.batch(max(cfg.batch, cfg.pca_images // 2)).to(dev)
        with amp.autocast():
            feats = torch.cat([enc(amp.batch(pc)), enc(amp.batch(ps))])
        tr.init_pca(feats.float())
    opt = torch.optim.Adam(tr.parameters(), lr=cfg.lr)
    ck = Checkpointer(out, cfg, ("k", "iters", "ridge"))
    step = ck.resume({"model": tr, "optim": opt}, dev)
    content.rng = np.random.default_rng(cfg.seed + step)
    styles.rng = np.random.default_rng(cfg.seed + 1 + step)

    def losses(c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        c, s = amp.batch(c), amp.batch(s)
        with torch.no_grad(), amp.autocast():
            fc, fs = enc(c), enc(s)
            tc, ts = vgg(c), vgg(s)
        g_t = {k: gram(ts[k]) for k in STYLE_LAYERS}
        t = _transform(tr, amp, fc, fs)
        with amp.autocast():
            y = dec(amp.batch(t))
            ty = vgg(y.clamp(0.0, 1.0))
        lc = content_loss(ty[_CONTENT_TAP], tc[_CONTENT_TAP])
        lg = sum(_gram_pair_loss(ty[k], g_t[k]) for k in STYLE_LAYERS)
        lm = meanstd_style_loss({k: ty[k] for k in STYLE_LAYERS}, {k: ts[k] for k in STYLE_LAYERS})
        return lc, lg, lm, y  # type: ignore[return-value]

    # the scale of each loss on the probe batch: the weights then mean "relative to the start"
    with torch.no_grad():
        lc0, lg0, lm0, _ = losses(pc[: cfg.batch], ps[: cfg.batch])
    norm = {"content": max(float(lc0), 1e-12), "gram": max(float(lg0), 1e-12), "meanstd": max(float(lm0), 1e-12)}
    log.info("loss scales at the start: %s", norm)
    preview_c, preview_s = pc[:1], ps[:1]

    def preview(step: int) -> None:
        with torch.no_grad():
            with amp.autocast():
                fc, fs = enc(amp.batch(preview_c)), enc(amp.batch(preview_s))
            t = _transform(tr, amp, fc, fs)
            with amp.autocast():
                y = dec(amp.batch(t)).float().clamp(0, 1)
        save_preview_row(out / f"preview_{step:06d}.jpg", [preview_c, preview_s, y.contiguous()])

    skipped = 0

    def train_step(step: int) -> dict[str, float] | None:
        nonlocal skipped
        c = content.batch(cfg.batch).to(dev)
        s = styles.batch(cfg.batch).to(dev)
        lc, lg, lm, _ = losses(c, s)
        lc_n, lg_n, lm_n = lc / norm["content"], lg / norm["gram"], lm / norm["meanstd"]
        total = cfg.content_weight * lc_n + cfg.gram_weight * lg_n + cfg.meanstd_weight * lm_n
        if not optimise(opt, total, amp):
            skipped += 1
            log.warning("non-finite loss at step %d: batch skipped (%d so far)", step, skipped)
            return None
        return {"content": lc_n.item(), "gram": lg_n.item(), "meanstd": lm_n.item(), "total": total.item()}

    t0 = time.perf_counter()
    tr.train()
    start, timer = step, StepTimer()
    step = run_steps(cfg, train_step, start=step, ck=ck, modules={"model": tr, "optim": opt}, preview=preview,
                     desc=f"train {cfg.name}", progress=progress,
                     postfix=lambda v: loss_postfix(v, ("content", "gram", "meanstd")), logger=log, timer=timer)
    if cfg.report:
        write_train_report(cfg.report, family="linear", amp=amp, timer=timer, start=start, end=step,
                           batch=cfg.batch, size=cfg.size, k=cfg.k)
    spec = base_spec()
    meta = {
        "name": cfg.name,
        "training_command": cfg.command,
        "steps": str(step),
        "held_out_styles": ",".join(cfg.exclude),
        "training_styles": str(len(style_files)),
        "encoder_sha256": sha256_file(enc_file),
        "decoder_sha256": sha256_file(dec_file),
        "spec": spec.to_json(),
        "step_s_median": f"{timer.median_after_warmup() or 0:.3f}",
        "train_seconds_this_run": f"{time.perf_counter() - t0:.1f}",
        "skipped_batches": str(skipped),
        "amp": amp.mode,
    }
    path = save_transform(tr.cpu().eval(), out / "linear_r31.safetensors", meta)
    log.info("wrote %s", path)
    return path


def _transform(tr: LinearTransform, amp: Amp, fc: torch.Tensor, fs: torch.Tensor) -> torch.Tensor:
    """The transform on (possibly bf16) features, in fp32 outside autocast: the covariances and their
    Newton-Schulz square roots lose too much in bf16."""
    with torch.autocast(fc.device.type, enabled=False):
        mean, color = tr.style_side(fs.float())
        return tr(fc.float().contiguous(), mean, color)


def _gram_pair_loss(f: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between each output's Gram matrix and its own style's (one style per batch item, where
    :func:`~rtstyle.nn.losses.gram_style_loss` broadcasts one target over the batch)."""
    return torch.nn.functional.mse_loss(gram(f), target)

"""Train a Johnson transform net against one style image with a VGG16 perceptual loss."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..image import read_image, to_image
from ..image import to_tensor as image_to_tensor
from ..models._spec import ModelSpec
from ..models.johnson import TransformerNet, save_rtstyle_weights
from ..nn.losses import content_loss, gram, gram_style_loss, tv_loss
from ..nn.vgg import load_vgg16
from ._loop import (Checkpointer, StepTimer, command_line, optimise, pick_device, resolve_amp, run_steps, to_tensor,
                    write_train_report)
from ._fields import (amp_field, checkpoint_every_field, device_field, preview_every_field, preview_field,
                      report_field, seed_field, vgg_field)
from .data import ImageFolder
from .temporal import TemporalOptions, TemporalTerm

__all__ = ["JohnsonTrainConfig", "train_johnson"]

log = logging.getLogger(__name__)


@dataclass
class JohnsonTrainConfig(TemporalOptions):
    """Settings of ``rtstyle train johnson``; every field is a CLI flag (the ``temporal_*`` ones from
    :class:`~rtstyle.training.temporal.TemporalOptions`)."""

    style: str = field(metadata={"help": "style image to train on", "must_exist": "file", "what": "style image"})
    data: str = field(metadata={"help": "folder of content photos", "must_exist": "dir", "what": "data folder"})
    out: str = field(metadata={"help": "run folder (checkpoint, previews, final .safetensors); rerun to resume"})
    name: str | None = field(default=None, metadata={"help": "registry name, default johnson.<style stem>"})
    vgg: str | None = vgg_field()
    steps: int = field(default=2000, metadata={"help": "training steps"})
    batch: int = field(default=4, metadata={"help": "content crops per step"})
    size: int = field(default=256, metadata={"help": "training crop size"})
    style_size: int = field(default=384, metadata={"help": "longer side of the style image"})
    width: int = field(default=32, metadata={"help": "base channels (32 = paper; 8 = lite real-time)"})
    n_res: int = field(default=5, metadata={"help": "residual blocks"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    content_weight: float = field(default=1e5, metadata={"help": "content loss weight (relu2_2)"})
    style_weight: float = field(default=1e10, metadata={"help": "Gram style loss weight"})
    tv_weight: float = field(default=0.0, metadata={"help": "total-variation loss weight"})
    init_from: str | None = field(default=None, metadata={"help": "start from a trained Johnson net of the same "
                                  "--width/--n-res (registry name such as johnson.wave_lite, or a weights file); "
                                  "a checkpoint in --out still wins"})
    checkpoint_every: int = checkpoint_every_field(100)
    preview_every: int = preview_every_field(200)
    preview: str | None = preview_field()
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    report: str | None = report_field()
    licence: str = "CC0-1.0 (weights); style image public domain"
    command: str = field(default_factory=command_line)


def _split(net: TransformerNet) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``x -> (encoder features, output)`` of ``net`` in one pass (the feature-level temporal loss's input)."""
    def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = net.encode(x)
        return feats, net.decode(feats)

    return split


def train_johnson(cfg: JohnsonTrainConfig, progress: bool = True) -> Path:
    """Train (or resume) and write ``<out>/<name>.safetensors``.

    A checkpoint ``<out>/checkpoint.pt`` is written every ``checkpoint_every`` steps and on
    Ctrl-C; running the same command again resumes from it. A preview of the net on
    ``cfg.preview`` (or the first training image) is written every ``preview_every`` steps.
    ``temporal_weight > 0`` adds the compound temporal regulariser (:mod:`.temporal`); ``init_from``
    starts from a trained net's weights (fine-tuning) unless a checkpoint resumes the run.

    Returns:
        Path of the trained safetensors file.
    """
    dev = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    name = cfg.name or f"johnson.{Path(cfg.style).stem}"

    vgg = load_vgg16(cfg.vgg).to(dev)
    data = ImageFolder(cfg.data, cfg.size, seed=cfg.seed)
    style_img = to_tensor(read_image(cfg.style, max_side=cfg.style_size), dev)
    amp = resolve_amp(cfg.amp, dev, channels_last=True)  # measured faster for this net (tools/bench_amp.py)
    log.info("mixed precision: %s, channels-last %s (%s)", amp.mode, amp.channels_last, amp.reason)
    vgg = amp.module(vgg)
    with torch.no_grad():
        with amp.autocast():
            style_feats = vgg(amp.batch(style_img))
        style_grams = {k: gram(v) for k, v in style_feats.items()}  # Gram in fp32, as the loss takes it

    net = amp.module(TransformerNet(cfg.width, cfg.n_res).to(dev))
    if cfg.init_from:
        _init_from(net, cfg.init_from, cfg.width, cfg.n_res)
    temporal = TemporalTerm(cfg, cfg.seed, features=True)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    # the run folder is made once every input has loaded: a bad one leaves no empty folder behind
    ck = Checkpointer(out, cfg, ("width", "n_res"),
                      arch_error="{path} was trained with another architecture; use a new --out")
    step = ck.resume({"model": net, "optim": opt}, dev)
    if step:
        data.rng = np.random.default_rng(cfg.seed + step)

    preview_src = read_image(cfg.preview, max_side=512) if cfg.preview else data.images[0]
    preview_t = image_to_tensor(preview_src[: preview_src.shape[0] // 4 * 4, : preview_src.shape[1] // 4 * 4],
                                max_value=255.0, device=dev)

    def save_preview(step: int) -> None:
        import cv2

        net.eval()
        with torch.no_grad():
            y = to_image(net(preview_t), max_value=255.0)
        net.train()
        both = np.concatenate([to_image(preview_t, max_value=255.0), y], axis=1)
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
        losses: dict[str, float] = {}
        total = temporal.add(lc + ls + lt, losses, net, x, y, amp, split255=_split(net))
        if not optimise(opt, total, amp):
            log.warning("non-finite loss at step %d: skipped", step)
            return None
        return {"content": lc.item(), "style": ls.item(), "tv": lt.item(), **losses}

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
        extra=cfg.record_temporal({
            "architecture": {"width": cfg.width, "n_res": cfg.n_res},
            "style_image": Path(cfg.style).name,
            "training_command": cfg.command,
            "steps": step,
            "batch": cfg.batch,
            "size": cfg.size,
            "style_size": cfg.style_size,
            "weights": {"content": cfg.content_weight, "style": cfg.style_weight, "tv": cfg.tv_weight},
            "initialised_from": cfg.init_from,
            "train_seconds_this_run": round(time.perf_counter() - t0, 1),
        }),
    )
    path = save_rtstyle_weights(net.cpu(), spec, out / weights_name)
    ck.save_history()
    log.info("wrote %s", path)
    return path


def _init_from(net: torch.nn.Module, source: str, width: int, n_res: int) -> None:
    """``init_from``: copy a trained Johnson net's weights (registry name or file) into ``net``.

    Raises:
        ValueError: the source is not a TransformerNet of this ``width`` and ``n_res``.
    """
    from ..models import create_model

    src = create_model(source)
    if not isinstance(src, TransformerNet):
        raise ValueError(f"--init-from {source}: not a Johnson TransformerNet ({type(src).__name__})")
    arch = src.spec.extra.get("architecture", {}) if getattr(src, "spec", None) else {}
    sd = {k: v for k, v in src.state_dict().items()}
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise ValueError(f"--init-from {source} (architecture {arch or 'unknown'}) does not match "
                         f"--width {width} --n-res {n_res}: {str(e).splitlines()[0]}") from None
    log.info("starting from the weights of %s", source)

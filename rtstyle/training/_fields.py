"""Config fields every trainer shares, written once.

A training config's field is a flag of ``rtstyle train FAMILY`` when its metadata has a ``help``
(see :mod:`rtstyle.cli.train`); these factories give the same flag the same default and help in
every family.
"""
from __future__ import annotations

from dataclasses import field
from typing import Any

__all__ = ["amp_field", "checkpoint_every_field", "device_field", "preview_every_field", "preview_field", "report_field",
           "seed_field", "vgg_field"]

_AMP_HELP = ("mixed precision (default auto: bf16 + channels-last on a CPU with bf16 in hardware (AMX or "
             "AVX512_BF16), fp32 on other CPUs, "
             "bf16/fp16 on CUDA; off = fp32)")


def amp_field() -> Any:
    """``--amp``: auto | fp32 | bf16 | fp16 | off (off is fp32), see :func:`rtstyle.training._loop.resolve_amp`."""
    return field(default="auto", metadata={"help": _AMP_HELP, "choices": ("auto", "fp32", "bf16", "fp16", "off")})


def report_field() -> Any:
    """``--report PATH``: the JSON run report."""
    return field(default=None, metadata={
        "help": "write a JSON run report (steps, wall_s, step_s_median after warm-up, amp)", "metavar": "PATH"})


def vgg_field(what: str = "VGG16 weights") -> Any:
    """``--vgg``: the VGG16 file of the perceptual loss (or of the encoder)."""
    return field(default=None, metadata={
        "help": f"{what} (default: $RTSTYLE_WEIGHTS, the user cache, torchvision's cache)"})


def device_field() -> Any:
    """``--device``: where to train."""
    return field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N (default auto: CUDA when a GPU is present)"})


def seed_field() -> Any:
    """``--seed``: torch and data-order seed."""
    return field(default=0, metadata={"help": "random seed of the initial weights and the data order"})


def checkpoint_every_field(default: int) -> Any:
    """``--checkpoint-every N``: steps between checkpoints."""
    return field(default=default, metadata={"help": "steps between checkpoints (one is also written on Ctrl-C)"})


def preview_every_field(default: int) -> Any:
    """``--preview-every N``: steps between preview images."""
    return field(default=default, metadata={"help": "steps between preview images (0: only at the end)"})


def preview_field() -> Any:
    """``--preview IMG``: the image previews are made of."""
    return field(default=None, metadata={"help": "image to preview on"})

"""Distillation from an arbitrary-style teacher, for the trainers of multi-style nets (MetaNet, MSG-Net).

A net that writes or conditions a stylisation on a style image learns, from the Gram loss alone, to
match a painting's feature statistics; with a few hundred training paintings and a CPU's steps it tends
to drift towards an average style, so that new paintings come out alike. A teacher that already carries
any painting (``linear.r31``: accuracy 1.00 on the held-out matrix, without training per style) gives a
per-image target: the student's output for the step's content and style should have the teacher's
VGG16 features (relu2_2 and relu3_3: its strokes and their arrangement) for the same content and style.

The teacher sees only the step's style, which comes from the trainer's training list, so the held-out
paintings never reach it. :class:`TeacherOptions` is the config mixin of the ``--teacher*`` flags and
:class:`Teacher` the loss of one run.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ._loop import Amp

__all__ = ["TEACHER_LAYERS", "Teacher", "TeacherOptions", "load_teacher"]

log = logging.getLogger(__name__)

#: VGG16 layers of the distillation loss: the teacher's strokes and their arrangement.
TEACHER_LAYERS = ("relu2_2", "relu3_3")


@dataclass(kw_only=True)
class TeacherOptions:
    """The ``--teacher*`` flags of ``rtstyle train metanet|msgnet`` (keyword-only: a config inherits them)."""

    teacher: str | None = field(default=None, metadata={
        "help": "distillation: an arbitrary-style model (registry name, e.g. linear.r31) whose output for the step's "
                "content and style the student also learns to match (VGG16 relu2_2 + relu3_3 features); it sees "
                "only the training styles", "metavar": "MODEL"})
    teacher_weight: float = field(default=1e5, metadata={"help": "distillation loss weight (with --teacher)"})
    teacher_style_size: int = field(default=256, metadata={
        "help": "longer side of the style image the teacher encodes (with --teacher)"})

    def record_teacher(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Write the options into a spec's ``extra`` (in place; returned): ``teacher`` (None when off)."""
        extra["teacher"] = ({"model": self.teacher, "weight": self.teacher_weight, "layers": list(TEACHER_LAYERS),
                             "style_size": self.teacher_style_size} if self.teacher else None)
        return extra


def load_teacher(name: str, device: torch.device | str) -> torch.nn.Module:
    """``--teacher``: a model that encodes a style image and maps RGB [0, 1] content to RGB [0, 1].

    Raises:
        ValueError: the model takes no style image, or another input/output contract.
    """
    from ..models import create_model
    from ..models._abilities import EncodesStyleImage

    net = create_model(name)
    spec = net.spec
    if not isinstance(net, EncodesStyleImage):
        raise ValueError(f"--teacher {name}: it takes no style image to encode (an arbitrary-style model is needed)")
    contract = (tuple(spec.input_range), tuple(spec.output_range), spec.color_order, spec.mean)
    if contract != ((0.0, 1.0), (0.0, 1.0), "RGB", None):
        raise ValueError(f"--teacher {name}: needs RGB in [0, 1] in and out, it has {spec.color_order} "
                         f"{spec.input_range} -> {spec.output_range}")
    net = net.float().to(device).eval()
    for q in net.parameters():
        q.requires_grad_(False)
    return net


class Teacher:
    """The distillation loss of one run (inactive without ``options.teacher``).

    Args:
        options: the run's config (its ``teacher*`` fields).
        device: where the teacher runs (the trainer's device).
    """

    def __init__(self, options: TeacherOptions, device: torch.device | str) -> None:
        if options.teacher_weight < 0:
            raise ValueError(f"teacher weight must be >= 0, got {options.teacher_weight}")
        if options.teacher_style_size < 32:
            raise ValueError(f"teacher style size must be >= 32 pixels, got {options.teacher_style_size}")
        self.weight = float(options.teacher_weight)
        self.style_size = int(options.teacher_style_size)
        self.net = load_teacher(options.teacher, device) if options.teacher else None
        self._style: tuple[torch.Tensor, ...] = ()
        if self.net is not None:
            log.info("distilling %s (weight %g, %s)", options.teacher, self.weight, "+".join(TEACHER_LAYERS))

    @property
    def active(self) -> bool:
        return self.net is not None

    @torch.no_grad()
    def set_style(self, style: torch.Tensor) -> None:
        """Encode the step's style image, ``(1, 3, H, W)`` RGB in [0, 1] at about :attr:`style_size`."""
        assert self.net is not None
        self._style = tuple(self.net.encode_style(style.float()))  # type: ignore[operator]

    def add(self, loss: torch.Tensor, logged: dict[str, float], x: torch.Tensor, fy: dict[str, torch.Tensor],
            vgg: torch.nn.Module, amp: Amp) -> torch.Tensor:
        """``loss`` plus ``weight * sum over TEACHER_LAYERS of MSE(fy, VGG(teacher(x)))`` (logged as
        ``teacher``) when a teacher is set; ``loss`` itself otherwise.

        Args:
            x: the step's content batch, ``(N, 3, H, W)`` in [0, 1].
            fy: the VGG16 features of the student's output for ``x`` (gradients flow through them).
            vgg: the trainer's loss network; amp: its mixed precision.
        """
        if self.net is None:
            return loss
        from ..nn.losses import content_loss

        with torch.no_grad():
            xs = x.float().contiguous()  # one image at a time: arbitrary-style models take one frame
            ty = torch.cat([self.net(xs[i : i + 1], *self._style) for i in range(xs.shape[0])]).clamp(0, 1)
            with amp.autocast():
                ft = vgg(amp.batch(ty))
        term = self.weight * sum(content_loss(fy[n].float(), ft[n].float()) for n in TEACHER_LAYERS)
        logged["teacher"] = term.item()
        return loss + term

"""Training: VGG perceptual losses, data loading and trainers.

Imported only by ``rtstyle train`` and tools, never on the inference path.

Public here: :class:`Amp` and :func:`resolve_amp`, the mixed-precision setting every trainer and
``tools/bench_amp.py`` resolve (implemented in :mod:`rtstyle.training._loop`).
"""
from ._loop import Amp, resolve_amp

__all__ = ["Amp", "resolve_amp"]

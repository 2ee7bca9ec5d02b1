"""Style-transfer quality metrics measured with the VGG16 loss network.

:class:`QualityMeter` scores a stylised image against its content photo and its style image:

* ``style_meanstd`` - the AdaIN style metric (Huang & Belongie 2017): summed over the style layers,
  the MSE of the per-channel feature means plus the MSE of the per-channel feature standard
  deviations between the output and the style image;
* ``style_gram`` - the Gatys/Johnson style metric: summed over the style layers, the MSE between
  the Gram matrices (normalised by ``C*H*W``) of the output and the style image;
* ``content`` - the MSE between the output's and the content photo's features at one layer.

Lower is better for all three. The formulas are those of :mod:`rtstyle.nn.losses` (same
Gram normalisation, same ``sqrt(var + eps)`` standard deviation), so the numbers are comparable
with the training losses. Activations are at torchvision's magnitude whichever VGG16 weights are
loaded (see :class:`~rtstyle.nn.vgg.VGG16Features`).

Style statistics (means, standard deviations, size-normalised Gram matrices) do not depend on
the image size, so the style image may have another size than the output; the content metric
compares feature maps position by position and needs the output and the content at one size.

:func:`summarise` reduces per-image rows to a mean and a median per metric.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

from .image import to_tensor
from .nn.losses import channel_mean_std, gram
from .nn.vgg import STYLE_LAYERS, TAPS, VGG16Features, load_vgg16

__all__ = [
    "DEFAULT_CONTENT_LAYER",
    "DEFAULT_STYLE_LAYERS",
    "METRICS",
    "ImageLike",
    "ImageStats",
    "QualityMeter",
    "summarise",
    "to_tensor01",
]

log = logging.getLogger(__name__)

#: VGG16 layers of the style metrics: Johnson et al.'s style layers (:data:`rtstyle.nn.vgg.STYLE_LAYERS`),
#: from fine texture (relu1_2) to larger motifs (relu4_3). relu1_1..relu3_1 (the AdaIN paper's
#: choice) are not taps of the loss network.
DEFAULT_STYLE_LAYERS: tuple[str, ...] = STYLE_LAYERS
#: VGG16 layer of the content metric: relu4_1, the AdaIN paper's content layer. Deep enough to
#: measure layout and objects rather than texture and colour (which style transfer is supposed to
#: change), and not the layer the Gatys reference optimises (relu3_3), so the reference is not
#: scored on its own objective.
DEFAULT_CONTENT_LAYER: str = "relu4_1"
#: The metric names :meth:`QualityMeter.measure` returns.
METRICS: tuple[str, ...] = ("style_meanstd", "style_gram", "content")

ImageLike = Union[np.ndarray, torch.Tensor]

_RANGE_TOL = 1e-3


def to_tensor01(img: ImageLike, name: str = "image") -> torch.Tensor:
    """Validate an image and return it as a float32 ``(1, 3, H, W)`` tensor in [0, 1] (on CPU
    for arrays, on its own device for tensors).

    Args:
        img: RGB uint8 array ``(H, W, 3)``, or a float tensor ``(1, 3, H, W)`` (or ``(3, H, W)``)
            with values in [0, 1].
        name: what to call the image in error messages.

    Returns:
        ``(1, 3, H, W)`` float32 tensor.

    Raises:
        ValueError: wrong type, dtype, shape, an empty image, or values outside [0, 1].
    """
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{name} must be an RGB uint8 array (H, W, 3), got {img.dtype} {img.shape}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"{name} is empty: {img.shape}")
        return to_tensor(img)
    if isinstance(img, torch.Tensor):
        t = img.unsqueeze(0) if img.dim() == 3 else img
        if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
            raise ValueError(f"{name} must be a (1, 3, H, W) tensor, got shape {tuple(img.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} tensor must be floating point with values in [0, 1], got {t.dtype}")
        if t.shape[2] == 0 or t.shape[3] == 0:
            raise ValueError(f"{name} is empty: {tuple(img.shape)}")
        t = t.detach().float()
        lo, hi = float(t.min()), float(t.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
            raise ValueError(f"{name} tensor values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
        return t.clamp(0.0, 1.0)
    raise ValueError(f"{name} must be an RGB uint8 numpy array or a float torch tensor, got {type(img).__name__}")


@dataclass(frozen=True)
class ImageStats:
    """The VGG statistics of one image that the metrics compare.

    Attributes:
        size: ``(H, W)`` of the image.
        means: layer -> per-channel means ``(C,)``.
        stds: layer -> per-channel standard deviations ``(C,)``, ``sqrt(var + 1e-5)``.
        grams: layer -> Gram matrix ``(C, C)`` normalised by ``C*H*W``.
        content: the content-layer feature map ``(C, H', W')``.
    """

    size: tuple[int, int]
    means: Mapping[str, torch.Tensor]
    stds: Mapping[str, torch.Tensor]
    grams: Mapping[str, torch.Tensor]
    content: torch.Tensor


class QualityMeter:
    """Score stylised images (see the module docstring for the metrics).

    Args:
        vgg: a :class:`~rtstyle.nn.vgg.VGG16Features` returning at least the requested
            layers; default: :func:`~rtstyle.nn.vgg.load_vgg16` with exactly those taps
            (weights via ``$RTSTYLE_WEIGHTS``; raises
            :class:`~rtstyle.weights.WeightNotFoundError` when absent).
        style_layers: layers of the two style metrics (default :data:`DEFAULT_STYLE_LAYERS`).
        content_layer: layer of the content metric (default :data:`DEFAULT_CONTENT_LAYER`).

    The meter holds no state besides the network: :meth:`measure` is a pure function of its
    inputs (deterministic on CPU). Images are moved to the network's device.
    """

    def __init__(
        self,
        vgg: VGG16Features | None = None,
        style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
        content_layer: str = DEFAULT_CONTENT_LAYER,
    ) -> None:
        style_layers = tuple(style_layers)
        if not style_layers:
            raise ValueError("style_layers must name at least one VGG16 layer")
        wanted = set(style_layers) | {content_layer}
        unknown = wanted - set(TAPS)
        if unknown:
            raise ValueError(f"unknown VGG16 layers {sorted(unknown)}; available: {sorted(TAPS, key=TAPS.__getitem__)}")
        taps = tuple(sorted(wanted, key=TAPS.__getitem__))
        if vgg is None:
            vgg = load_vgg16(taps=taps)
        else:
            missing = wanted - set(vgg.taps)
            if missing:
                raise ValueError(f"the given VGG returns {list(vgg.taps)} but the meter needs {sorted(missing)} too")
        self.vgg = vgg.eval()
        self.style_layers = style_layers
        self.content_layer = content_layer

    @property
    def device(self) -> torch.device:
        return next(self.vgg.parameters()).device

    def stats(self, img: ImageLike, name: str = "image") -> ImageStats:
        """The VGG statistics of one image (reuse them to score many outputs against one pair).

        Args:
            img: RGB uint8 ``(H, W, 3)`` or float tensor ``(1, 3, H, W)`` in [0, 1].
            name: what to call the image in error messages.

        Returns:
            An :class:`ImageStats`.
        """
        x = to_tensor01(img, name).to(self.device)
        h, w = x.shape[-2:]
        if min(h, w) < 16:
            raise ValueError(f"{name} is too small for the VGG16 ({w}x{h}); need at least 16 px per side")
        with torch.inference_mode():
            feats = self.vgg(x)
            means, stds, grams = {}, {}, {}
            for k in self.style_layers:
                mean, std = channel_mean_std(feats[k])
                means[k], stds[k] = mean[0], std[0]
                grams[k] = gram(feats[k])[0]
            content = feats[self.content_layer].float()[0]
        return ImageStats((int(h), int(w)), means, stds, grams, content)

    def compare(self, output: ImageStats, content: ImageStats, style: ImageStats) -> dict[str, float]:
        """The metrics from precomputed statistics (see :meth:`measure`)."""
        _check_same_size(output.size, content.size)
        ms = gs = 0.0
        for k in self.style_layers:
            ms += float(F.mse_loss(output.means[k], style.means[k]) + F.mse_loss(output.stds[k], style.stds[k]))
            gs += float(F.mse_loss(output.grams[k], style.grams[k]))
        c = float(F.mse_loss(output.content, content.content))
        return {"style_meanstd": ms, "style_gram": gs, "content": c}

    def measure(self, output: ImageLike, content: ImageLike, style: ImageLike) -> dict[str, float]:
        """Score one stylised image.

        Args:
            output: the stylised image.
            content: the content photo, at the output's size.
            style: the style image, any size (its statistics are size-normalised).

        Each is an RGB uint8 array ``(H, W, 3)`` or a float tensor ``(1, 3, H, W)`` in [0, 1].

        Returns:
            ``{"style_meanstd": float, "style_gram": float, "content": float}`` (lower is better).

        Raises:
            ValueError: invalid images, or output and content of different sizes.
        """
        o_t = to_tensor01(output, "output")
        c_t = to_tensor01(content, "content")
        s_t = to_tensor01(style, "style")
        _check_same_size(tuple(o_t.shape[-2:]), tuple(c_t.shape[-2:]))
        return self.compare(self.stats(o_t, "output"), self.stats(c_t, "content"), self.stats(s_t, "style"))


def _check_same_size(out_hw: tuple[int, ...], content_hw: tuple[int, ...]) -> None:
    if tuple(out_hw) != tuple(content_hw):
        raise ValueError(f"output {out_hw[1]}x{out_hw[0]} and content {content_hw[1]}x{content_hw[0]} must have "
                         "the same size (the content metric compares feature maps position by position)")


def summarise(rows: Iterable[Mapping[str, object]], keys: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Mean and median of each metric over rows.

    Args:
        rows: dicts such as :meth:`QualityMeter.measure` returns (other keys are ignored).
        keys: the metrics to summarise; default: every key whose values are all real numbers
            (bools excluded) in the rows that have it.

    Returns:
        ``{metric: {"mean": float, "median": float, "n": int}}``; non-finite values are left out
        (``n`` counts the finite ones; mean and median are NaN when none is left).

    Raises:
        ValueError: no rows, or a requested key that no row has / that is not numeric.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("summarise() needs at least one row")

    def numeric(v: object) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))

    if keys is None:
        seen: dict[str, bool] = {}
        for r in rows:
            for k, v in r.items():
                seen[k] = seen.get(k, True) and numeric(v)
        keys = [k for k, ok in seen.items() if ok]
    out: dict[str, dict[str, float]] = {}
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        if not vals:
            raise ValueError(f"no row has the metric {k!r}")
        if not all(numeric(v) for v in vals):
            raise ValueError(f"metric {k!r} has non-numeric values")
        a = np.asarray(vals, dtype=np.float64)
        a = a[np.isfinite(a)]
        out[k] = {"mean": float(a.mean()) if a.size else float("nan"),
                  "median": float(np.median(a)) if a.size else float("nan"),
                  "n": int(a.size)}
    return out

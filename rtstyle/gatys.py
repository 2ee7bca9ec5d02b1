"""Gatys et al. (CVPR 2016) optimisation-based style transfer: the slow offline reference.

The output image's pixels are optimised so that its VGG16 Gram matrices match the style image's
and its deeper features match the content photo's. Minutes per image on a CPU, so it is a
quality reference for the feed-forward models (see ``tools/quality_study.py``), not a real-time
path.

Objective (all terms are *relative* errors, so the weights do not depend on the activation
scale of the loaded VGG16 weights nor on the image size)::

    L(x) = content_weight * |F(x) - F(c)|^2 / |F(c)|^2                    (F at CONTENT_LAYER)
         + style_weight   * sum_l |G_l(x) - G_l(s)|^2 / |G_l(s)|^2        (l in STYLE_LAYERS)
         + tv_weight      * TV(x)

with ``G`` the Gram matrix normalised by ``C*H*W`` (:func:`rtstyle.nn.losses.gram`) and TV
the mean absolute difference of neighbouring pixels (:func:`rtstyle.nn.losses.tv_loss`).
Dividing each layer's Gram error by the style Gram's energy makes the four layers contribute
comparably: with plain MSEs at torchvision's activation magnitude, relu4_3's term is ~1e-4 of
relu1_2's and the larger motifs of a style would be ignored.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import torch

from .image import check_image, read_image, resize_long, to_image, to_tensor
from .nn.losses import gram, tv_loss
from .nn.vgg import STYLE_LAYERS

if TYPE_CHECKING:
    from .nn.vgg import VGG16Features

__all__ = [
    "CONTENT_LAYER",
    "STYLE_LAYERS",
    "GatysObjective",
    "gatys",
    "prepare_pair",
]

log = logging.getLogger(__name__)

#: Content layer. relu3_3 rather than relu2_2: relu2_2 pins the output to the photo's fine
#: texture and colour edges, so the style shows mostly as a colour cast; relu3_3 keeps the
#: layout and contours while letting brush strokes replace the photo's texture (Gatys used the
#: still deeper conv4_2 of VGG19).
CONTENT_LAYER: str = "relu3_3"

ImageInput = Union[np.ndarray, str, Path]

_MIN_SIDE = 16
_INITS = ("content", "noise")
_OPTIMIZERS = ("lbfgs", "adam")


def _as_rgb(img: ImageInput, name: str) -> np.ndarray:
    if isinstance(img, (str, Path)):
        p = Path(img)
        if not p.is_file():
            raise ValueError(f"{name} image not found: {p}")
        return read_image(p)
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{name} must be an RGB uint8 array (H, W, 3) or an image path, got {type(img).__name__}")
    check_image(img, name)
    if min(img.shape[:2]) < _MIN_SIDE:
        raise ValueError(f"{name} is too small ({img.shape[1]}x{img.shape[0]}); need at least {_MIN_SIDE} px per side")
    return img


def prepare_pair(content: ImageInput, style: ImageInput, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load/validate a content and a style image and size them as :func:`gatys` does.

    Args:
        content: RGB uint8 ``(H, W, 3)`` array or image path.
        style: the same for the style image.
        size: the content's longer side after resizing; ``None`` keeps the content's size.

    Returns:
        ``(content, style)`` RGB uint8 arrays; the style's longer side equals the content's.
    """
    if size is not None and (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < _MIN_SIDE):
        raise ValueError(f"size must be an integer >= {_MIN_SIDE} (the content's longer side), got {size!r}")
    c = _as_rgb(content, "content")
    s = _as_rgb(style, "style")
    if size is not None:
        c = resize_long(c, int(size))
        if min(c.shape[:2]) < _MIN_SIDE:
            raise ValueError(f"content becomes {c.shape[1]}x{c.shape[0]} at size={size}; need >= {_MIN_SIDE} px per side")
    s = resize_long(s, max(c.shape[:2]))
    if min(s.shape[:2]) < _MIN_SIDE:
        raise ValueError(f"style becomes {s.shape[1]}x{s.shape[0]} at the content's size; need >= {_MIN_SIDE} px per side")
    return c, s


class GatysObjective:
    """The Gatys objective for one content/style pair (see the module docstring).

    Args:
        vgg: loss network returning at least :data:`STYLE_LAYERS` and ``content_layer``.
        content: ``(1, 3, H, W)`` float in [0, 1].
        style: ``(1, 3, H', W')`` float in [0, 1] (any size).
        content_weight, style_weight, tv_weight: term weights (>= 0).
        style_layers, content_layer: VGG16 taps used.

    Calling the objective on an image returns a dict of scalar tensors ``content``, ``style``,
    ``tv`` (unweighted) and ``total`` (weighted sum), differentiable w.r.t. the image.
    """

    def __init__(
        self,
        vgg: "VGG16Features",
        content: torch.Tensor,
        style: torch.Tensor,
        *,
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        style_layers: tuple[str, ...] = STYLE_LAYERS,
        content_layer: str = CONTENT_LAYER,
    ) -> None:
        missing = (set(style_layers) | {content_layer}) - set(vgg.taps)
        if missing:
            raise ValueError(f"the given VGG returns {list(vgg.taps)} but Gatys needs {sorted(missing)} too")
        self.vgg = vgg
        self.style_layers = tuple(style_layers)
        self.content_layer = content_layer
        self.weights = (float(content_weight), float(style_weight), float(tv_weight))
        with torch.no_grad():
            fc = vgg(content)[content_layer].float()
            fs = vgg(style)
            self.content_target = fc
            self.content_norm = fc.pow(2).mean().clamp_min(1e-12)
            self.gram_targets = {k: gram(fs[k]) for k in self.style_layers}
            self.gram_norms = {k: g.pow(2).mean().clamp_min(1e-12) for k, g in self.gram_targets.items()}

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.vgg(x)
        lc = (feats[self.content_layer].float() - self.content_target).pow(2).mean() / self.content_norm
        ls = torch.zeros((), device=x.device)
        for k in self.style_layers:
            ls = ls + (gram(feats[k]) - self.gram_targets[k]).pow(2).mean() / self.gram_norms[k]
        ltv = tv_loss(x)
        wc, ws, wt = self.weights
        return {"content": lc, "style": ls, "tv": ltv, "total": wc * lc + ws * ls + wt * ltv}


def gatys(
    content: ImageInput,
    style: ImageInput,
    *,
    vgg: "VGG16Features | None" = None,
    steps: int = 300,
    size: int | None = None,
    content_weight: float = 1.0,
    style_weight: float = 1.0,
    tv_weight: float = 1.0,
    init: str = "content",
    optimizer: str = "lbfgs",
    lr: float | None = None,
    seed: int = 0,
    progress: bool = False,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> np.ndarray:
    """Stylise ``content`` with ``style`` by optimising the output pixels (Gatys et al. 2016).

    Args:
        content: content photo, RGB uint8 ``(H, W, 3)`` array or image path.
        style: style image, the same.
        vgg: a loaded :class:`~rtstyle.nn.vgg.VGG16Features` returning at least
            :data:`STYLE_LAYERS` and :data:`CONTENT_LAYER` (reuse one across calls); default:
            :func:`~rtstyle.nn.vgg.load_vgg16` (``$RTSTYLE_WEIGHTS``; raises
            :class:`~rtstyle.weights.WeightNotFoundError` when absent). Runs on its device.
        steps: optimiser iterations (one VGG forward/backward each; the time per iteration is in
            docs/benchmarks.md). With L-BFGS the objective changes little after 100-150 iterations at
            256 px, so 200 is a safe reference; 0 returns the initial image.
        size: resize the content so its longer side is ``size`` px; ``None``: native size. The
            style is always resized so its longer side equals the content's.
        content_weight: weight of the relative content error at :data:`CONTENT_LAYER`.
        style_weight: weight of the summed relative Gram errors. The default 1 (equal to
            ``content_weight``: both terms are relative errors) gives the whole image the style's
            palette and strokes while the photo's main contours stay readable (checked on real
            pairs at 128-256 px: the Gram metric of :class:`~rtstyle.quality.QualityMeter` drops far
            below the content photo's, docs/benchmarks.md); 2-3 lets the style take over the layout
            of busy photos, 0.3-0.5 is a lighter touch.
        tv_weight: weight of the total-variation smoothness term. The default 1 damps the
            high-frequency colour noise of pixel optimisation at a small cost in style loss; 0
            disables it.
        init: ``"content"`` (start from the photo: faster, keeps the layout) or ``"noise"``
            (uniform noise from ``seed``: more style, looser layout, needs more steps).
        optimizer: ``"lbfgs"`` (``torch.optim.LBFGS``, history 50, fixed step; the classic choice)
            or ``"adam"``.
        lr: step size; default 1.0 for L-BFGS, 0.02 (pixel units of the [0, 1] image) for Adam.
        seed: seeds the noise initialisation. The run is deterministic for fixed inputs on CPU.
        progress: show a tqdm bar.
        callback: called after each iteration with ``(iteration, losses)``, ``losses`` holding
            the floats ``content``, ``style``, ``tv`` (unweighted) and ``total`` (weighted) of the
            image that iteration started from.

    Returns:
        The stylised image, RGB uint8 ``(H, W, 3)`` at the (resized) content's size. It is the
        iterate with the lowest objective seen (L-BFGS without line search can overshoot).

    Pixels are optimised directly and *projected* onto [0, 1] (clamped) after every iteration;
    for L-BFGS each ``optimizer.step`` does one iteration so the projection happens every time.
    A sigmoid parametrisation was avoided: started from the content, its gradient factor
    ``p(1-p)`` is ~0.004 at pixel values 1/255 or 254/255, which slows saturated (black/white)
    areas of the photo to a crawl.

    Raises:
        ValueError: invalid images, sizes, weights, steps, ``init`` or ``optimizer``.
    """
    from tqdm import tqdm

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    for name, w in (("content_weight", content_weight), ("style_weight", style_weight), ("tv_weight", tv_weight)):
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {w!r}")
    if content_weight == 0 and style_weight == 0:
        raise ValueError("content_weight and style_weight are both 0: nothing to optimise")
    if init not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {init!r}")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    c_img, s_img = prepare_pair(content, style, size)

    if vgg is None:
        from .nn.vgg import load_vgg16

        vgg = load_vgg16(taps=tuple(dict.fromkeys((*STYLE_LAYERS, CONTENT_LAYER))))
    vgg = vgg.eval()
    device = next(vgg.parameters()).device
    c_t, s_t = to_tensor(c_img, device=device), to_tensor(s_img, device=device)  # contiguous: L-BFGS views the gradient flat
    objective = GatysObjective(vgg, c_t, s_t, content_weight=content_weight, style_weight=style_weight,
                               tv_weight=tv_weight)

    if init == "content":
        x = c_t.clone().contiguous()
    else:
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.rand(c_t.shape, generator=gen).to(device)
    x.requires_grad_(True)
    if optimizer == "lbfgs":
        # max_iter=1: one iteration per step() so that the projection below runs every iteration
        # (the curvature history lives in the optimiser's state across step() calls).
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=1.0 if lr is None else lr, max_iter=1,
                                                       history_size=50, tolerance_grad=0.0, tolerance_change=0.0)
    else:
        opt = torch.optim.Adam([x], lr=0.02 if lr is None else lr)

    best_loss = float("inf")
    best = x.detach().clone()
    last: dict[str, float] = {}

    def closure() -> torch.Tensor:
        nonlocal best_loss, best, last
        opt.zero_grad(set_to_none=True)
        losses = objective(x)
        losses["total"].backward()
        last = {k: float(v.detach()) for k, v in losses.items()}
        if last["total"] < best_loss:
            best_loss = last["total"]
            best = x.detach().clone()
        return losses["total"]

    t0 = time.perf_counter()
    bar = tqdm(range(int(steps)), desc="gatys", unit="it", disable=not progress, dynamic_ncols=True)
    for it in bar:
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        if not np.isfinite(last.get("total", 0.0)):
            log.warning("gatys: the objective became %s at iteration %d; stopping", last["total"], it)
            break
        if progress:
            bar.set_postfix(total=f"{last['total']:.4g}", style=f"{last['style']:.3g}", content=f"{last['content']:.3g}")
        if callback is not None:
            callback(it, dict(last))
    bar.close()
    if steps > 0:
        with torch.no_grad():  # score the final iterate too (the loop scores each start point)
            final = {k: float(v) for k, v in objective(x).items()}
        if final["total"] < best_loss:
            best_loss, best = final["total"], x.detach().clone()
        log.info("gatys: %dx%d, %d %s iterations in %.1f s, objective %.4g", c_img.shape[1], c_img.shape[0],
                 steps, optimizer, time.perf_counter() - t0, best_loss)
    else:
        best = x.detach()
    return to_image(best)

"""Loss tables: models run through the Stylizer, scored with the loss they were trained with.

Every feed-forward family rtstyle trains (Johnson, MSG-Net, MetaNet) optimises one perceptual
loss on the VGG16: content = ``content_weight`` x the MSE of relu2_2, style = ``style_weight`` x the
sum over relu1_2, relu2_2, relu3_3 and relu4_3 of the MSE between the Gram matrices of the output
and of the style image. :class:`TrainingLoss` is that loss, with the weights taken from the
training configs' defaults, so a multi-style net, a meta network and a dedicated net per style are
compared on the objective they all optimised:

* :func:`loss_table` - mean content / style / total loss per (style, model) over photos;
* :func:`style_identification` - does the output made from a style image score best against that
  image, among all listed ones? (rank of the own style, per style).
"""
from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..nn import STYLE_LAYERS, gram
from ..quality import ImageLike, to_tensor01

__all__ = [
    "LossWeights",
    "ModelEntry",
    "StyleIdentification",
    "TrainingLoss",
    "loss_table",
    "markdown_table",
    "parse_model_entry",
    "read_photos",
    "style_identification",
]

log = logging.getLogger(__name__)

#: Long side of the style images the Gram targets are computed at (the tools' default).
STYLE_SIDE = 256


def _training_default(name: str) -> float:
    from ..training.johnson import JohnsonTrainConfig

    for f in fields(JohnsonTrainConfig):
        if f.name == name:
            return float(f.default)  # type: ignore[arg-type]
    raise KeyError(name)


@dataclass(frozen=True)
class LossWeights:
    """Weights and layers of the training loss (defaults: those of ``rtstyle train johnson``,
    which MSG-Net and MetaNet training share)."""

    content: float = field(default_factory=lambda: _training_default("content_weight"))
    style: float = field(default_factory=lambda: _training_default("style_weight"))
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = STYLE_LAYERS


class TrainingLoss:
    """The training perceptual loss as a metric on finished images.

    Args:
        weights: loss weights and layers (default :class:`LossWeights`).
        vgg: a loss network returning the layers (default: the VGG16 resolved like every
            third-party weight, or ``vgg_path``).
        vgg_path: explicit VGG16 file.
    """

    def __init__(self, weights: LossWeights | None = None, vgg: torch.nn.Module | None = None,
                 vgg_path: str | Path | None = None) -> None:
        from ..nn import load_vgg16

        self.weights = weights or LossWeights()
        taps = tuple(dict.fromkeys((*self.weights.style_layers, self.weights.content_layer)))
        self.vgg = (vgg if vgg is not None else load_vgg16(vgg_path, taps=taps)).eval()

    def _feats(self, img: ImageLike, name: str) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            return self.vgg(to_tensor01(img, name))

    def style_target(self, style: ImageLike, long_side: int | None = STYLE_SIDE) -> dict[str, torch.Tensor]:
        """Gram targets of a style image (resized so its longer side is ``long_side``; ``None``: as is)."""
        from ..image import resize_tensor_long

        x = to_tensor01(style, "style")
        if long_side:
            x = resize_tensor_long(x, long_side)
        with torch.inference_mode():
            f = self.vgg(x)
            return {k: gram(f[k]) for k in self.weights.style_layers}

    def content_features(self, content: ImageLike) -> torch.Tensor:
        """The content layer's features of a photo (reuse them to score many outputs)."""
        return self._feats(content, "content")[self.weights.content_layer]

    def score(self, output: ImageLike, content_features: torch.Tensor,
              targets: Sequence[Mapping[str, torch.Tensor]]) -> tuple[float, list[float]]:
        """Weighted content loss against the photo and weighted style loss against each target.

        Args:
            output: the stylised image (RGB uint8 ``(H, W, 3)`` or float ``(1, 3, H, W)`` in [0, 1]).
            content_features: the photo's :meth:`content_features` (the photo at the output's size).
            targets: Gram targets from :meth:`style_target`.

        Returns:
            ``(content_loss, [style_loss per target])``.

        Raises:
            ValueError: output and photo of different sizes.
        """
        fy = self._feats(output, "output")
        a = fy[self.weights.content_layer]
        if a.shape != content_features.shape:
            raise ValueError(f"output and content differ in size: features {tuple(a.shape)} vs "
                             f"{tuple(content_features.shape)}")
        fx = content_features
        lc = self.weights.content * float(F.mse_loss(a.float(), fx.float()))
        grams = {k: gram(fy[k]) for k in self.weights.style_layers}
        ls = [self.weights.style * sum(float(F.mse_loss(grams[k], t[k])) for k in self.weights.style_layers)
              for t in targets]
        return lc, ls


def read_photos(paths: Sequence[str | Path] | str | Path, short_side: int, multiple: int = 4,
                limit: int = 0) -> list[np.ndarray]:
    """Photos as RGB uint8, shorter side ``short_side``, both sides cropped to ``multiple``.

    Args:
        paths: image files, or one folder (its images, sorted).
        limit: keep the first N (0: all).
    """
    from ..image import is_image_file, read_image

    if isinstance(paths, (str, Path)):
        folder = Path(paths)
        paths = sorted(p for p in folder.rglob("*") if is_image_file(p)) if folder.is_dir() else [folder]
    files = list(paths)[: limit or None]
    if not files:
        raise ValueError("no photos given")
    out = []
    for p in files:
        img = read_image(p, short_side=short_side)
        h, w = img.shape[0] // multiple * multiple, img.shape[1] // multiple * multiple
        out.append(np.ascontiguousarray(img[:h, :w]))
    return out


@dataclass(frozen=True)
class ModelEntry:
    """One model of a loss table: ``label``, ``model`` (``{style}`` replaced by the style's name)
    and how the style is given: ``""`` (the model is the style), ``"bank"`` (a style of the model's
    bank, by name) or ``"image"`` (the style image)."""

    label: str
    model: str
    how: str = ""

    def __post_init__(self) -> None:
        if not self.label or not self.model or self.how not in ("", "bank", "image"):
            raise ValueError(f"bad model entry {self.label}={self.model}#{self.how}: LABEL=MODEL[#bank|#image]")


def parse_model_entry(text: str) -> ModelEntry:
    """``LABEL=MODEL[#bank|#image]`` -> :class:`ModelEntry`."""
    label, _, rest = text.partition("=")
    model, _, how = rest.partition("#")
    return ModelEntry(label.strip(), model.strip(), how.strip())


def _stylizer(model: Any, *, style_image: str | Path | None, backend: str, precision: str, **kw: Any) -> Any:
    from ..stylizer import Stylizer

    return Stylizer(model, backend=backend, precision=precision, style_image=style_image, **kw)


def loss_table(loss: TrainingLoss, models: Sequence[ModelEntry], styles: Mapping[str, str | Path],
               photos: Sequence[np.ndarray], *, backend: str = "eager", precision: str = "fp32",
               style_side: int | None = STYLE_SIDE, on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Mean training loss of each (style, model) over the photos.

    Args:
        loss: the metric.
        models: what to run (see :class:`ModelEntry`).
        styles: style name -> style image (the Gram target; also the input of ``#image`` models).
        photos: RGB uint8 photos (see :func:`read_photos`); each model runs at the photo's size.
        backend, precision: of the Stylizer.
        style_side: long side of the style images for the Gram targets (``None``: as read).
        on_row: called with each row as it is done (progress).

    Returns:
        Rows ``{"style", "model", "spec", "content", "style_loss", "total", "per_photo"}``.
    """
    feats = [loss.content_features(p) for p in photos]
    rows: list[dict[str, Any]] = []
    for style, image in styles.items():
        target = loss.style_target(_read_style(image), style_side)
        for m in models:
            name = m.model.replace("{style}", style)
            st = _stylizer(name, style_image=image if m.how == "image" else None, backend=backend, precision=precision)
            try:
                if m.how == "bank":
                    st.set_style(style_vector=style, wait=True)
                lc, ls = [], []
                for img, fx in zip(photos, feats):
                    c, (s,) = loss.score(st.stylize(img), fx, [target])
                    lc.append(c)
                    ls.append(s)
            finally:
                st.close()
            row = {"style": style, "model": m.label, "spec": name, "content": statistics.mean(lc),
                   "style_loss": statistics.mean(ls), "total": statistics.mean(lc) + statistics.mean(ls),
                   "per_photo": {"content": lc, "style": ls}}
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of :func:`loss_table` as the README's markdown table."""
    lines = ["| style | model | content loss | style loss | total |", "|---|---|---|---|---|"]
    lines += [f"| {r['style']} | {r['model']} | {r['content']:.3g} | {r['style_loss']:.3g} | {r['total']:.3g} |"
              for r in rows]
    return "\n".join(lines)


def _read_style(image: str | Path | np.ndarray, max_side: int | None = None) -> np.ndarray:
    from ..image import check_image, fit_image, read_image

    if isinstance(image, np.ndarray):
        return fit_image(check_image(image, "style image"), max_side=max_side)
    return read_image(image, max_side=max_side)


@dataclass
class StyleIdentification:
    """Result of :func:`style_identification`.

    Attributes:
        styles: style names (file stems), in order.
        style_loss: ``[made from style i, scored against style j]``, mean over the photos.
        content_loss: per style, mean over the photos.
        ranks: rank of the own style (1: the output is closest to its own painting).
        outputs: per style, the stylised photos (RGB uint8).
        style_images: the style images as read (RGB uint8, no larger than the model's
            ``style_image_side`` where it has one), e.g. for a grid's first column.
    """

    styles: list[str]
    style_loss: np.ndarray
    content_loss: np.ndarray
    ranks: list[int]
    outputs: list[list[np.ndarray]]
    style_images: list[np.ndarray]

    @property
    def carried(self) -> int:
        """How many styles rank their own image first."""
        return sum(r == 1 for r in self.ranks)

    def margins(self) -> list[float]:
        """Per style: best other style's loss / own loss (> 1: own style closest)."""
        n = len(self.styles)
        return [float(min(self.style_loss[i, j] for j in range(n) if j != i) / self.style_loss[i, i]) if n > 1
                else float("inf") for i in range(n)]

    def to_json(self) -> dict[str, Any]:
        return {"styles": self.styles, "rank_of_own_style": self.ranks, "style_loss": self.style_loss.tolist(),
                "content_loss": self.content_loss.tolist()}


def style_identification(loss: TrainingLoss, model: Any, styles: Sequence[str | Path], photos: Sequence[np.ndarray],
                         *, backend: str = "eager", precision: str = "fp32") -> StyleIdentification:
    """Run a style-image model (MetaNet, AdaIN, ...) with each style image on the photos and score
    every output against every style image with the training loss.

    Args:
        loss: the metric.
        model: anything the :class:`~rtstyle.Stylizer` takes (a name, ``metanet:FILE``, a module).
        styles: style images (each one is given to the model in turn).
        photos: RGB uint8 photos (see :func:`read_photos`).
    """
    if not styles:
        raise ValueError("style_identification needs at least one style image")
    from ..models._abilities import StyleImageSide

    n = len(styles)
    sl = np.zeros((n, n))
    cl = np.zeros(n)
    feats = [loss.content_features(p) for p in photos]
    outs: list[list[np.ndarray]] = []
    st = _stylizer(model, style_image=styles[0], backend=backend, precision=precision)
    try:
        # the Gram targets from the style images as the model sees them (a MetaNet reads them no
        # larger than its style_image_side), then at the loss's style size
        m = st.state.model
        side = m.style_image_side if isinstance(m, StyleImageSide) else None
        images = [_read_style(s, side) for s in styles]
        targets = [loss.style_target(s) for s in images]
        for i, s in enumerate(styles):
            if i:
                st.set_style(style_image=s, wait=True)
            row = []
            for img, fx in zip(photos, feats):
                y = st.stylize(img)
                row.append(y)
                c, ls = loss.score(y, fx, targets)
                cl[i] += c / len(photos)
                sl[i] += np.asarray(ls) / len(photos)
            outs.append(row)
    finally:
        st.close()
    ranks = [int((sl[i] < sl[i, i]).sum()) + 1 for i in range(n)]
    return StyleIdentification([Path(s).stem for s in styles], sl, cl, ranks, outs, images)

"""AdaIN arbitrary style transfer (Huang & Belongie 2017) on an encoder/decoder pair.

Two pairs are registered: ``adain.vgg16`` (the ImageNet VGG16 to relu4_1 with a decoder trained by
rtstyle, :mod:`rtstyle.models.vgg_adain`) and ``adain.r31`` (below). ``adain.r31`` encodes the content with the normalised-VGG19 encoder to relu3_1, replaces every
channel's mean and standard deviation with the style's, and decodes with the matching pretrained
decoder. No training is involved: the decoder is LinearStyleTransfer's reconstruction decoder,
which decodes AdaIN-ed features well enough at relu3_1 (a dedicated AdaIN decoder would be sharper).

Style inputs are explicit tensors, computed once per style by :meth:`AdaINNet.encode_style`:

* ``mean``, ``std``: the style's per-channel encoder statistics, ``(K, C, 1, 1)`` (``K = 1``
  except in spatial control with several styles);
* ``alpha``: ``(1,)`` content-style strength. It is an *input* rather than a constant so that a new
  alpha reuses an exported engine (the engine cache is keyed by the weights, not by Python
  attributes) and is a mere tensor swap in the graph;
* ``mask`` (spatial control only): ``(1, K + 1, Hm, Wm)`` soft region weights; channel ``k < K`` is
  style ``k``, the last channel keeps the content. It is resized to the feature map in the graph.

Controls (:class:`AdaINControls`): ``alpha``; ``colour`` ``"luminance"`` (stylise, then keep the
output's luma with the content's chroma; done in the graph, so it is recorded in a buffer that
enters the engine cache key) or ``"histogram"`` (the style image's colour mean/covariance is matched
to a content reference before encoding, Gatys et al. 2016); ``mask`` (label map, image file or
``callable(frame_index)``). Interpolating several styles interpolates their statistics, which is
exactly the paper's interpolation of AdaIN outputs because AdaIN is affine in (mean, std).

Use with :class:`rtstyle.stylizer.Stylizer`::

    Stylizer("adain.r31", style_image="starry.jpg")                     # one style
    model = create_model("adain.r31", alpha=0.7, colour="luminance")    # controls: a new module
    stylizer.set_style(model=model, style_image="wave.jpg")
    blend = model.with_styles(["a.jpg", "b.jpg"], [0.7, 0.3])          # several styles
    stylizer.set_style(model=blend)                                     # (style tensors explicit)
    stylizer.set_style(model=blend, style_vector=[0.2, 0.8])            # re-weight, no re-encode
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from ._spec import ModelSpec
from ._style_encoder import style_encoder_for
from .lst import LSTDecoder, LSTEncoder, cap_style_image, load_decoder, load_encoder, r31_spec

__all__ = [
    "AdaINControls",
    "AdaINNet",
    "AdaINStyleSet",
    "COLOUR_MODES",
    "adain",
    "build_adain",
    "channel_stats",
    "load_mask",
    "luminance_transfer",
    "mask_to_regions",
    "match_colour",
    "masked_adain",
    "validate_weights",
]

log = logging.getLogger(__name__)

_EPS = 1e-5
#: Colour-preservation modes (``None``: no preservation).
COLOUR_MODES: tuple[str, ...] = ("luminance", "histogram")
# BT.601 luma weights.
_LUMA = (0.299, 0.587, 0.114)

MaskLike = Union[np.ndarray, str, Path, Callable[[int], Any]]
ImageLike = Union[np.ndarray, str, Path, torch.Tensor]


# --------------------------------------------------------------------------- pure functions

def channel_stats(feats: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (biased variance) over the spatial dimensions.

    Shape:
        ``(N, C, H, W)`` -> two ``(N, C, 1, 1)`` tensors.
    """
    mean = feats.mean((2, 3), keepdim=True)
    var = (feats - mean).pow(2).mean((2, 3), keepdim=True)
    return mean, (var + eps).sqrt()


def adain(content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Normalise each content channel, then scale and shift it to the style statistics.

    Args:
        content: ``(N, C, H, W)`` features.
        mean, std: style statistics ``(1, C, 1, 1)``.
        eps: added to the content variance (dead ReLU channels have none).
    """
    c_mean, c_std = channel_stats(content, eps)
    return (content - c_mean) / c_std * std + mean


def masked_adain(
    content: torch.Tensor, means: torch.Tensor, stds: torch.Tensor, weights: torch.Tensor, eps: float = _EPS
) -> torch.Tensor:
    """AdaIN per region: region statistics of the content, one style per region, blended by weight.

    Args:
        content: ``(1, C, h, w)`` features.
        means, stds: ``(K, C, 1, 1)`` statistics of the K styles.
        weights: ``(1, K + 1, h, w)`` soft region weights summing to 1 per position; the last
            channel is the region that keeps the content features.

    Returns:
        ``sum_k weights_k * AdaIN_k(content) + weights_K * content`` where ``AdaIN_k`` normalises
        with the content's statistics *inside* region ``k``.
    """
    k = means.shape[0]
    w = weights[:, :k].unsqueeze(2)  # (1, K, 1, h, w)
    f = content.unsqueeze(1)  # (1, 1, C, h, w)
    mass = w.sum((3, 4), keepdim=True).clamp_min(1e-6)
    mu = (w * f).sum((3, 4), keepdim=True) / mass  # (1, K, C, 1, 1)
    var = (w * (f - mu).pow(2)).sum((3, 4), keepdim=True) / mass
    styled = (f - mu) / (var + eps).sqrt() * stds.unsqueeze(0) + means.unsqueeze(0)
    return (w * styled).sum(1) + weights[:, k:] * content


def luminance_transfer(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised image's luma Y with the content's chroma (YCbCr, BT.601).

    YCbCr is linear in RGB and ``R - Y``, ``G - Y``, ``B - Y`` depend on the chroma only, so keeping
    the content's CbCr with a new Y is ``content + (Y_stylised - Y_content)`` on every channel.
    """
    luma = torch.tensor(_LUMA, dtype=stylised.dtype, device=stylised.device).view(1, 3, 1, 1)
    dy = (stylised * luma).sum(1, keepdim=True) - (content * luma).sum(1, keepdim=True)
    return content + dy


def match_colour(source: torch.Tensor, reference: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Affine colour transfer: give ``source`` the RGB mean and covariance of ``reference``.

    ``x' = A (x - mu_s) + mu_r`` with ``A = Sigma_r^(1/2) Sigma_s^(-1/2)`` (symmetric square roots),
    the "colour histogram matching" of Gatys et al. 2016, "Preserving Color in Neural Artistic Style
    Transfer".

    Shape:
        source ``(1, 3, H, W)``, reference ``(1, 3, H', W')``, both RGB in [0, 1] -> like source,
        clamped to [0, 1].
    """
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = x[0].reshape(3, -1).double()
        mu = p.mean(1, keepdim=True)
        d = p - mu
        return mu, d @ d.t() / max(1, d.shape[1] - 1) + eps * torch.eye(3, dtype=torch.float64)

    def sqrtm(cov: torch.Tensor, power: float) -> torch.Tensor:
        val, vec = torch.linalg.eigh(cov)
        return vec @ torch.diag(val.clamp_min(eps).pow(power)) @ vec.t()

    mu_s, cov_s = stats(source)
    mu_r, cov_r = stats(reference)
    a = sqrtm(cov_r, 0.5) @ sqrtm(cov_s, -0.5)
    p = source[0].reshape(3, -1).double()
    out = (a @ (p - mu_s) + mu_r).reshape(source.shape).to(source.dtype)
    return out.clamp(0.0, 1.0)


def validate_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Interpolation weights checked (count ``n``, finite, non-negative, sum > 0) and normalised.

    ``None`` gives equal weights.
    """
    if n < 1:
        raise ValueError("need at least one style image")
    if weights is None:
        return [1.0 / n] * n
    w = [float(v) for v in weights]
    if len(w) != n:
        raise ValueError(f"got {len(w)} style weights for {n} style images; give one weight per image")
    if not all(np.isfinite(v) for v in w):
        raise ValueError(f"style weights must be finite, got {w}")
    if any(v < 0 for v in w):
        raise ValueError(f"style weights must be non-negative, got {w}")
    total = sum(w)
    if total <= 0:
        raise ValueError(f"style weights must not all be zero, got {w}")
    return [v / total for v in w]


def load_mask(mask: np.ndarray | str | Path, n_styles: int) -> np.ndarray:
    """A spatial-control mask as an ``(H, W)`` int64 label map: ``k`` = style ``k``, ``-1`` = content.

    Args:
        mask: an integer label array; a ``.npy`` file of one; or an image file, read as greyscale and
            thresholded at 128: white is style 0, black is style 1 when there are two or more
            styles, otherwise ``-1`` (keep the content). Boolean arrays read the same way.
        n_styles: how many styles the labels may refer to.

    Raises:
        ValueError: unreadable file, wrong shape, or labels outside ``-1 .. n_styles - 1``.
    """
    if isinstance(mask, (str, Path)):
        p = Path(mask)
        if not p.is_file():
            raise ValueError(f"mask file not found: {p}")
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            import cv2

            grey = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise ValueError(f"cannot read mask image {p}")
            arr = grey >= 128
    else:
        arr = np.asarray(mask)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ValueError(f"mask must be an (H, W) label map, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = np.where(arr, 0, 1 if n_styles >= 2 else -1)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError("mask labels must be integers (style index, or -1 to keep the content)")
    labels = arr.astype(np.int64)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < -1 or hi >= n_styles:
        raise ValueError(f"mask labels must lie in -1..{n_styles - 1} for {n_styles} style(s), got {lo}..{hi}")
    return labels


def mask_to_regions(labels: np.ndarray, n_styles: int, max_side: int = 256) -> torch.Tensor:
    """Label map -> one-hot region weights ``(1, n_styles + 1, h, w)`` (last channel: keep content).

    The map is downscaled (nearest) so its longer side is at most ``max_side``: the graph resizes it
    to the encoder's feature map (1/4 or 1/8 of the frame) anyway, and its shape is part of the engine key.
    """
    h, w = labels.shape
    if max(h, w) > max_side:
        import cv2

        s = max_side / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        labels = cv2.resize(labels.astype(np.int32), size, interpolation=cv2.INTER_NEAREST).astype(np.int64)
    idx = torch.from_numpy(np.where(labels < 0, n_styles, labels))
    return F.one_hot(idx, n_styles + 1).permute(2, 0, 1).unsqueeze(0).float().contiguous()


def _image_tensor(img: ImageLike, what: str) -> torch.Tensor:
    """An RGB image (array, file or tensor) as a ``(1, 3, H, W)`` float tensor in [0, 1]."""
    if isinstance(img, torch.Tensor):
        t = img if img.dim() == 4 else img.unsqueeze(0)
        if t.shape[:2] != (1, 3):
            raise ValueError(f"{what} tensor must be (1, 3, H, W) RGB in [0, 1], got {tuple(img.shape)}")
        return t.float()
    if isinstance(img, (str, Path)):
        from ..training.data import load_rgb

        if not Path(img).is_file():
            raise ValueError(f"{what} not found: {img}")
        img = load_rgb(img, max_side=1024)
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{what} must be uint8 HxWx3 RGB, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


# --------------------------------------------------------------------------- controls and model

@dataclass(frozen=True)
class AdaINControls:
    """Per-style controls of :class:`AdaINNet` (a new value means a new prepared model).

    Attributes:
        alpha: content-style strength in [0, 1]; 0 reproduces the decoder's reconstruction.
        colour: ``None``, ``"luminance"`` or ``"histogram"`` colour preservation.
        mask: spatial control: label map / ``.npy`` / image file, or ``callable(frame_index)``
            returning one (see :func:`load_mask`). ``None``: the whole frame gets the style.
        colour_reference: the content image the style's colours are matched to for
            ``colour="histogram"`` (a frame of the stream; RGB uint8 array or image file).
    """

    alpha: float = 1.0
    colour: str | None = None
    mask: MaskLike | None = None
    colour_reference: ImageLike | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= float(self.alpha) <= 1.0):
            raise ValueError(f"alpha must be within [0, 1], got {self.alpha}")
        if self.colour is not None and self.colour not in COLOUR_MODES:
            raise ValueError(f"colour must be one of {COLOUR_MODES} or None, got {self.colour!r}")
        if self.colour == "histogram" and self.colour_reference is None:
            raise ValueError("colour='histogram' needs colour_reference= (a content frame to match the style's colours to)")


class AdaINNet(nn.Module):
    """AdaIN between an encoder and the decoder that inverts it.

    Args:
        encoder: relu3_1 :class:`~rtstyle.models.lst.LSTEncoder` (``adain.r31``) or the VGG16
            relu4_1 :class:`~rtstyle.models.vgg_adain.VGG16Encoder` (``adain.vgg16``).
        decoder: the matching decoder (same ``level``).
        controls: alpha, colour preservation, spatial mask (:class:`AdaINControls`).
        max_style_side: style images are downscaled to at most this longer side before encoding.

    Shape:
        ``forward(content, mean, std, alpha[, mask])``: content ``(1, 3, H, W)`` RGB in [0, 1], H and
        W multiples of the encoder's downsampling (4 for relu3_1, 8 for relu4_1: the spec's
        ``size_multiple``) -> ``(1, 3, H, W)`` in ~[0, 1]. Style tensors come from :meth:`encode_style`
        or :meth:`encode_styles`.
    """

    def __init__(
        self,
        encoder: LSTEncoder,
        decoder: LSTDecoder,
        controls: AdaINControls | None = None,
        max_style_side: int | None = 512,
    ) -> None:
        super().__init__()
        if encoder.level != decoder.level or getattr(encoder, "out_channels", None) != getattr(decoder, "in_channels", None):
            raise ValueError(f"encoder and decoder do not pair: levels {encoder.level}/{decoder.level}")
        self.encoder = encoder
        self.decoder = decoder
        self.controls = controls or AdaINControls()
        self.max_style_side = max_style_side
        self.encoder_runtime = "auto"  # style images: "auto" (OpenVINO on CPU if installed) | "eager"
        # Graph-shaping settings live in a buffer so that they enter the engine cache key (weights
        # hash); alpha and the statistics are inputs and need no re-export.
        self.register_buffer("graph_flags", torch.tensor([float(self.controls.colour == "luminance")]))
        self._reference: torch.Tensor | None = None
        if self.controls.colour == "histogram":
            self._reference = _image_tensor(self.controls.colour_reference, "colour reference")  # type: ignore[arg-type]

    # ------------------------------------------------------------------ controls
    @property
    def alpha(self) -> float:
        return float(self.controls.alpha)

    @property
    def colour(self) -> str | None:
        return self.controls.colour

    def with_controls(self, controls: AdaINControls | None = None, **changes: Any) -> "AdaINNet":
        """A new model sharing this one's encoder/decoder with other controls (cheap).

        Args:
            controls: the new controls, or ``None`` to start from this model's.
            **changes: fields of :class:`AdaINControls` to change (``alpha=0.5``).
        """
        new = replace(controls or self.controls, **changes)
        net = AdaINNet(self.encoder, self.decoder, new, self.max_style_side)
        spec = getattr(self, "spec", None)
        if spec is not None:
            net.spec = spec  # type: ignore[attr-defined]
        return net

    def mask_input(self, frame_index: int = 0, n_styles: int = 1) -> torch.Tensor | None:
        """The region-weight input for ``frame_index`` (``None`` without a mask).

        An animated mask (``callable(frame_index)``) is evaluated here; passing its result as the
        last input of :meth:`forward` each frame is a tensor swap (same shape: same engine).
        """
        mask = self.controls.mask
        if mask is None:
            return None
        if callable(mask) and not isinstance(mask, (np.ndarray, str, Path)):
            mask = mask(int(frame_index))
        return mask_to_regions(load_mask(mask, n_styles), n_styles)  # type: ignore[arg-type]

    def frame_style_inputs(self, frame_index: int, style_inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Style inputs for one frame: with an animated mask the region input is re-evaluated for
        ``frame_index`` (same shape, so the same engine); otherwise ``style_inputs`` unchanged."""
        mask = self.controls.mask
        if mask is None or not callable(mask) or isinstance(mask, (np.ndarray, str, Path)):
            return style_inputs
        regions = self.mask_input(frame_index, int(style_inputs[0].shape[0]))
        assert regions is not None
        return style_inputs[:-1] + (regions.to(style_inputs[-1].device, style_inputs[-1].dtype),)

    # ------------------------------------------------------------------ style encoding
    def _prepare_style(self, style: torch.Tensor) -> torch.Tensor:
        style = cap_style_image(style, self.max_style_side)
        if self._reference is not None:
            style = match_colour(style, self._reference)
        return style

    @torch.no_grad()
    def style_stats(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One style image ``(1, 3, H, W)`` in [0, 1] -> its encoder-layer ``(mean, std)``,
        ``(1, C, 1, 1)`` each (after the colour matching of ``colour="histogram"``)."""
        # the frozen encoder on OpenVINO when installed (CPU): ~2x faster style changes; cached on the
        # encoder module, which every style state of this model shares
        enc = style_encoder_for(self.encoder, "_rtstyle_style_encoder", lambda: self.encoder, self.encoder_runtime,
                                f"{type(self.encoder).__name__} style encoder")
        return channel_stats(enc(self._prepare_style(style)))

    def _inputs(self, means: torch.Tensor, stds: torch.Tensor, n_styles: int) -> tuple[torch.Tensor, ...]:
        alpha = torch.tensor([self.alpha], dtype=means.dtype)
        mask = self.mask_input(0, n_styles)
        return (means, stds, alpha) if mask is None else (means, stds, alpha, mask)

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Style image -> the explicit style inputs ``(mean, std, alpha[, mask])``.

        Args:
            style: ``(1, 3, H, W)`` RGB in [0, 1] (what the Stylizer passes), or already computed
                style inputs (a tuple from :meth:`encode_styles`), returned unchanged.
        """
        if isinstance(style, (tuple, list)):
            return tuple(style)
        mean, std = self.style_stats(style)
        return self._inputs(mean, std, 1)

    @torch.no_grad()
    def encode_styles(
        self, images: Sequence[ImageLike], weights: Sequence[float] | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Several style images -> style inputs.

        Without a mask the styles are interpolated: the statistics are averaged with the validated,
        normalised ``weights`` (``None``: equal). With a mask, image ``k`` is the style of label
        ``k`` and ``weights`` must be ``None``.

        Args:
            images: RGB uint8 arrays, image files or ``(1, 3, H, W)`` tensors in [0, 1].
            weights: interpolation weights, one per image.

        Raises:
            ValueError: bad weights (count, negative, all zero) or a mask/weights conflict.
        """
        stats = [self.style_stats(_image_tensor(img, "style image")) for img in images]
        return self.combine_stats(stats, weights)

    def combine_stats(
        self, stats: Sequence[tuple[torch.Tensor, torch.Tensor]], weights: Sequence[float] | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Per-image ``(mean, std)`` -> style inputs (see :meth:`encode_styles`)."""
        if self.controls.mask is not None:
            if weights is not None:
                raise ValueError("with a mask every style image is one region's style; weights do not apply")
            if not stats:
                raise ValueError("need at least one style image")
            return self._inputs(torch.cat([m for m, _ in stats]), torch.cat([s for _, s in stats]), len(stats))
        w = validate_weights(weights, len(stats))
        mean = sum(wi * m for wi, (m, _) in zip(w, stats))
        std = sum(wi * s for wi, (_, s) in zip(w, stats))
        return self._inputs(mean, std, 1)  # type: ignore[arg-type]

    def with_styles(self, images: Sequence[ImageLike], weights: Sequence[float] | None = None) -> "AdaINStyleSet":
        """A Stylizer-ready module holding several styles (interpolated, or one per mask region)."""
        return AdaINStyleSet(self, images, weights)

    # ------------------------------------------------------------------ hot path
    def features(self, content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """The transformed encoder features ``alpha * target + (1 - alpha) * content`` (before decoding)."""
        f = self.encoder(content)
        if mask is None:
            target = adain(f, mean, std)
        else:
            weights = F.interpolate(mask, size=f.shape[-2:], mode="bilinear", align_corners=False)
            target = masked_adain(f, mean, std, weights)
        a = alpha.reshape(1, 1, 1, 1)
        return a * target + (1.0 - a) * f

    def forward(self, content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.decoder(self.features(content, mean, std, alpha, mask))
        if self.controls.colour == "luminance":
            out = luminance_transfer(out, content)
        return out


class AdaINStyleSet(nn.Module):
    """Several styles bound to an :class:`AdaINNet`, driven by the Stylizer without a style image.

    The per-image statistics are computed once here. The Stylizer passes the style inputs from
    ``encode_style_vector(default_style_vector())`` (its style-vector path), so the inputs stay
    explicit graph inputs and ``set_style(model=same_set, style_vector=[...])`` re-weights an
    interpolation without re-encoding or re-exporting.

    Args:
        net: the model (its controls apply: alpha, colour, mask).
        images: style images (arrays, files or tensors).
        weights: interpolation weights (``None``: equal; must be ``None`` with a mask).
    """

    def __init__(self, net: AdaINNet, images: Sequence[ImageLike], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not images:
            raise ValueError("need at least one style image")
        self.net = net
        self._stats = [net.style_stats(_image_tensor(img, "style image")) for img in images]
        self._weights = None if weights is None else validate_weights(weights, len(images))
        net.combine_stats(self._stats, self._weights)  # validate now, not in the Stylizer's worker
        names = tuple(Path(i).stem if isinstance(i, (str, Path)) else f"style{j}" for j, i in enumerate(images))
        base: ModelSpec = getattr(net, "spec", _SPEC)
        self.spec = replace(base, needs_style_image=False, styles=names)

    def default_style_vector(self) -> list[float]:
        """The weights given at construction (equal weights when none were given)."""
        if self._weights is not None:
            return list(self._weights)
        return [1.0 / len(self._stats)] * len(self._stats)

    def encode_style_vector(self, vector: Any) -> tuple[torch.Tensor, ...]:
        """Weights -> style inputs; with a mask the vector is ignored (one style per region)."""
        if self.net.controls.mask is not None:
            return self.net.combine_stats(self._stats, None)
        return self.net.combine_stats(self._stats, list(np.ravel(np.asarray(vector, dtype=float))))

    def frame_style_inputs(self, frame_index: int, style_inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return self.net.frame_style_inputs(frame_index, style_inputs)

    def forward(self, content: torch.Tensor, *style_inputs: torch.Tensor) -> torch.Tensor:
        return self.net(content, *style_inputs)


# --------------------------------------------------------------------------- registry

_SPEC = r31_spec(
    "adain.r31",
    "adain",
    "arbitrary style by AdaIN at relu3_1 (Huang & Belongie 2017), no training; needs --style IMG",
    {"layer": "relu3_1", "alpha": 1.0, "colour": None},
)


def build_adain(
    spec: ModelSpec,
    encoder: nn.Module,
    decoder: nn.Module,
    *,
    controls: AdaINControls | None = None,
    alpha: float | None = None,
    colour: str | None = None,
    mask: MaskLike | None = None,
    colour_reference: ImageLike | None = None,
    max_style_side: int | None = 512,
    **unknown: Any,
) -> AdaINNet:
    """An :class:`AdaINNet` on a loaded encoder/decoder pair; explicit control kwargs override the
    fields of ``controls``."""
    if unknown:
        raise TypeError(f"{spec.name}: unknown options {sorted(unknown)}; known: controls, alpha, colour, mask, "
                        "colour_reference, max_style_side, encoder_path, decoder_path")
    given = {k: v for k, v in dict(alpha=alpha, colour=colour, mask=mask, colour_reference=colour_reference).items()
             if v is not None}
    ctl = replace(controls or AdaINControls(), **given)
    net = AdaINNet(encoder, decoder, ctl, max_style_side)  # type: ignore[arg-type]
    extra = dict(spec.extra, alpha=ctl.alpha, colour=ctl.colour, mask=ctl.mask is not None)
    net.spec = replace(spec, extra=extra)  # type: ignore[attr-defined]
    return net


@register_model(_SPEC)
def _adain_r31(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
               **controls: Any) -> nn.Module:
    """Build ``adain.r31`` from the resolved relu3_1 pair; ``controls`` as :func:`build_adain`."""
    return build_adain(spec, load_encoder(31, encoder_path), load_decoder(31, decoder_path), **controls)

"""A feature-transform net with AdaIN's controls, shared by ``adain.*`` and ``linear.r31``.

Both families encode the content, transform the encoder features towards a style described by two
explicit tensors (AdaIN: channel mean and std; linear: channel mean and the compressed covariance's
square root), blend with ``alpha`` and decode. What they share lives here:

* :class:`AdaINControls` (alpha, colour preservation, spatial mask) and the pure helpers behind them
  (:func:`load_mask`, :func:`mask_to_regions`, :func:`match_color`, :func:`luminance_transfer`,
  :func:`validate_weights`);
* :class:`ControlledFeatureNet`: the controls on a model (``with_controls``, mask inputs per frame),
  style preparation (size cap and histogram colour matching), the cached style encoder, the
  interpolation of several styles' moments and the luminance-preserving decode;
* :class:`StyleSet`: several styles bound to such a net, driven by the Stylizer's style-vector path;
* :func:`resolve_controls` / :func:`controls_extra`: the factories' control keyword arguments.

A subclass supplies ``style_moments`` (one style image -> two tensors), ``_style_inputs`` (the two
tensors -> the graph's style inputs before alpha) and the hot path (``features``/``forward``).
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..image import read_image, to_tensor
from ._spec import ModelSpec
from ._style_encoder import style_encoder_for
from .lst import cap_style_image

__all__ = [
    "COLOR_MODES",
    "AdaINControls",
    "ControlledFeatureNet",
    "ImageLike",
    "MaskLike",
    "StyleSet",
    "controls_extra",
    "load_mask",
    "luminance_transfer",
    "mask_to_regions",
    "match_color",
    "resolve_controls",
    "validate_weights",
]

log = logging.getLogger(__name__)

_EPS = 1e-5
#: Colour-preservation modes (``None``: no preservation).
COLOR_MODES: tuple[str, ...] = ("luminance", "histogram")
# BT.601 luma weights.
_LUMA = (0.299, 0.587, 0.114)

MaskLike = Union[np.ndarray, str, Path, Callable[[int], Any]]
ImageLike = Union[np.ndarray, str, Path, torch.Tensor]
Moments = tuple[torch.Tensor, torch.Tensor]


# --------------------------------------------------------------------------- pure functions

def luminance_transfer(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised image's luma Y with the content's chroma (YCbCr, BT.601).

    YCbCr is linear in RGB and ``R - Y``, ``G - Y``, ``B - Y`` depend on the chroma only, so keeping
    the content's CbCr with a new Y is ``content + (Y_stylised - Y_content)`` on every channel.
    """
    luma = torch.tensor(_LUMA, dtype=stylized.dtype, device=stylized.device).view(1, 3, 1, 1)
    dy = (stylized * luma).sum(1, keepdim=True) - (content * luma).sum(1, keepdim=True)
    return content + dy


def match_color(source: torch.Tensor, reference: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
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
        if not Path(img).is_file():
            raise ValueError(f"{what} not found: {img}")
        img = read_image(img, max_side=1024)
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{what} must be uint8 HxWx3 RGB, got {arr.dtype} {arr.shape}")
    return to_tensor(arr)


def _is_animated(mask: Any) -> bool:
    """A mask given as ``callable(frame_index)`` (arrays and paths are not called)."""
    return callable(mask) and not isinstance(mask, (np.ndarray, str, Path))


# --------------------------------------------------------------------------- controls

@dataclass(frozen=True)
class AdaINControls:
    """Per-style controls of :class:`ControlledFeatureNet` models (a new value means a new prepared model).

    Attributes:
        alpha: content-style strength in [0, 1]; 0 reproduces the decoder's reconstruction.
        color: ``None``, ``"luminance"`` or ``"histogram"`` colour preservation.
        mask: spatial control: label map / ``.npy`` / image file, or ``callable(frame_index)``
            returning one (see :func:`load_mask`). ``None``: the whole frame gets the style.
        color_reference: the content image the style's colours are matched to for
            ``color="histogram"`` (a frame of the stream; RGB uint8 array or image file).
    """

    alpha: float = 1.0
    color: str | None = None
    mask: MaskLike | None = None
    color_reference: ImageLike | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= float(self.alpha) <= 1.0):
            raise ValueError(f"alpha must be within [0, 1], got {self.alpha}")
        if self.color is not None and self.color not in COLOR_MODES:
            raise ValueError(f"color must be one of {COLOR_MODES} or None, got {self.color!r}")
        if self.color == "histogram" and self.color_reference is None:
            raise ValueError("color='histogram' needs color_reference= (a content frame to match the style's colours to)")


def resolve_controls(spec: ModelSpec, unknown: dict[str, Any], known: str, controls: AdaINControls | None,
                     **fields: Any) -> AdaINControls:
    """A factory's controls: ``controls`` (or the defaults) with the explicitly given fields replaced.

    Args:
        spec: the model being built (named in the error).
        unknown: the factory's left-over keyword arguments; any raises ``TypeError``.
        known: the factory's own options, for that error ("max_style_side, encoder_path, ...").
        controls: a base :class:`AdaINControls`, or ``None``.
        **fields: ``alpha``/``color``/``mask``/``color_reference`` as given (``None``: not given).
    """
    if unknown:
        raise TypeError(f"{spec.name}: unknown options {sorted(unknown)}; known: controls, alpha, color, mask, "
                        f"color_reference, {known}")
    given = {k: v for k, v in fields.items() if v is not None}
    return replace(controls or AdaINControls(), **given)


def controls_extra(spec: ModelSpec, controls: AdaINControls) -> ModelSpec:
    """``spec`` with the controls recorded in its ``extra`` (alpha, colour, whether masked).

    The colour mode is recorded under the key ``"colour"``, the key of the files already shipped
    and trained (``extra`` is persisted with the weights).
    """
    return replace(spec, extra=dict(spec.extra, alpha=controls.alpha, **{"colour": controls.color},
                                    mask=controls.mask is not None))


# --------------------------------------------------------------------------- the shared model

class ControlledFeatureNet(nn.Module, ABC):
    """Encoder -> feature transform -> decoder, with :class:`AdaINControls`.

    Subclasses implement ``style_moments(style)`` (a prepared style image -> two tensors that
    several styles interpolate linearly), ``_style_inputs(a, b)`` (those tensors -> the graph's
    first two style inputs), ``_rebuild(controls)`` (the same networks with other controls) and the
    hot path ``features(content, s0, s1, alpha[, mask])``; :meth:`forward` decodes and applies
    the luminance control.

    Args:
        encoder, decoder: the frozen pair (the subclass checks that they fit together).
        controls: alpha, colour preservation, spatial mask.
        max_style_side: style images are downscaled to at most this longer side before encoding.
    """

    #: ``with_controls`` records the new controls in the copy's ``spec.extra`` (else keeps the spec).
    _controls_in_spec = True

    def __init__(self, encoder: nn.Module, decoder: nn.Module, controls: AdaINControls | None,
                 max_style_side: int | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.controls = controls or AdaINControls()
        self.max_style_side = max_style_side
        self.encoder_runtime = "auto"  # style images: "auto" (OpenVINO on CPU if installed) | "eager"
        # the style encoder's precision (HasEncoderPrecision): "auto" (bf16 on AMX / AVX512_BF16 hosts, else fp32),
        # "fp32", "bf16" or "int8" (OpenVINO only; see rtstyle.models._style_encoder)
        self.encoder_precision = "auto"
        # Graph-shaping settings live in a buffer so that they enter the engine cache key (weights
        # hash); alpha and the style tensors are inputs and need no re-export.
        self.register_buffer("graph_flags", torch.tensor([float(self.controls.color == "luminance")]))
        self._reference: torch.Tensor | None = None
        if self.controls.color == "histogram":
            self._reference = _image_tensor(self.controls.color_reference, "colour reference")  # type: ignore[arg-type]

    # ------------------------------------------------------------------ controls
    @property
    def alpha(self) -> float:
        return float(self.controls.alpha)

    @property
    def color(self) -> str | None:
        return self.controls.color

    @abstractmethod
    def _rebuild(self, controls: AdaINControls) -> "ControlledFeatureNet":
        """The same networks (shared, not copied) with other controls."""

    def with_controls(self, controls: AdaINControls | None = None, **changes: Any) -> Any:
        """A new model sharing this one's networks with other controls (cheap).

        Args:
            controls: the new controls, or ``None`` to start from this model's.
            **changes: fields of :class:`AdaINControls` to change (``alpha=0.5``).
        """
        new = replace(controls or self.controls, **changes)
        net = self._rebuild(new)
        spec = getattr(self, "spec", None)
        if spec is not None:
            net.spec = controls_extra(spec, new) if self._controls_in_spec else spec  # type: ignore[attr-defined]
        return net

    def mask_input(self, frame_index: int = 0, n_styles: int = 1) -> torch.Tensor | None:
        """The region-weight input for ``frame_index`` (``None`` without a mask).

        An animated mask (``callable(frame_index)``) is evaluated here; passing its result as the
        last input of :meth:`forward` each frame is a tensor swap (same shape: same engine).
        """
        mask = self.controls.mask
        if mask is None:
            return None
        if _is_animated(mask):
            mask = mask(int(frame_index))  # type: ignore[operator]
        return mask_to_regions(load_mask(mask, n_styles), n_styles)  # type: ignore[arg-type]

    def frame_style_inputs(self, frame_index: int, style_inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Style inputs for one frame: with an animated mask the region input is re-evaluated for
        ``frame_index`` (same shape, so the same engine); otherwise ``style_inputs`` unchanged."""
        if not _is_animated(self.controls.mask):
            return style_inputs
        regions = self.mask_input(frame_index, int(style_inputs[0].shape[0]))
        assert regions is not None
        return style_inputs[:-1] + (regions.to(style_inputs[-1].device, style_inputs[-1].dtype),)

    # ------------------------------------------------------------------ style side
    def _prepare_style(self, style: torch.Tensor) -> torch.Tensor:
        """Size cap, then the histogram colour matching of ``color="histogram"``."""
        style = cap_style_image(style, self.max_style_side)
        if self._reference is not None:
            style = match_color(style, self._reference)
        return style

    def _encode_style_image(self, style: torch.Tensor) -> torch.Tensor:
        """A style image ``(1, 3, H, W)`` in [0, 1], prepared, through the style encoder.

        The frozen encoder runs on OpenVINO when installed (CPU), which makes style changes faster;
        it is cached on the encoder module, which every style state of this model shares.
        """
        enc = style_encoder_for(self.encoder, "_rtstyle_style_encoder", lambda: self.encoder, self.encoder_runtime,
                                f"{type(self.encoder).__name__} style encoder", precision=self.encoder_precision)
        return enc(self._prepare_style(style))

    @abstractmethod
    def style_moments(self, style: torch.Tensor) -> Moments:
        """One style image ``(1, 3, H, W)`` in [0, 1] -> the two tensors several styles interpolate."""

    def _style_inputs(self, a: torch.Tensor, b: torch.Tensor) -> Moments:
        """Interpolated moments -> the graph's first two style inputs (identity unless overridden)."""
        return a, b

    def _inputs(self, a: torch.Tensor, b: torch.Tensor, n_styles: int) -> tuple[torch.Tensor, ...]:
        s0, s1 = self._style_inputs(a, b)
        alpha = torch.tensor([self.alpha], dtype=a.dtype)
        mask = self.mask_input(0, n_styles)
        return (s0, s1, alpha) if mask is None else (s0, s1, alpha, mask)

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Style image -> the explicit style inputs ``(s0, s1, alpha[, mask])``.

        Args:
            style: ``(1, 3, H, W)`` RGB in [0, 1] (what the Stylizer passes), or already computed
                style inputs (a tuple from :meth:`encode_styles`), returned unchanged.
        """
        if isinstance(style, (tuple, list)):
            return tuple(style)
        a, b = self.style_moments(style)
        return self._inputs(a, b, 1)

    def combine_moments(self, moments: Sequence[Moments], weights: Sequence[float] | None = None
                        ) -> tuple[torch.Tensor, ...]:
        """Per-image moments -> style inputs.

        Without a mask the styles are interpolated: the moments are averaged with the validated,
        normalised ``weights`` (``None``: equal). With a mask, image ``k`` is the style of label
        ``k`` and ``weights`` must be ``None``.

        Raises:
            ValueError: no moments, bad weights (count, negative, all zero) or a mask/weights conflict.
        """
        if not moments:
            raise ValueError("need at least one style image")
        if self.controls.mask is not None:
            if weights is not None:
                raise ValueError("with a mask every style image is one region's style; weights do not apply")
            return self._inputs(torch.cat([a for a, _ in moments]), torch.cat([b for _, b in moments]), len(moments))
        w = validate_weights(weights, len(moments))
        a = sum(wi * m for wi, (m, _) in zip(w, moments))
        b = sum(wi * s for wi, (_, s) in zip(w, moments))
        return self._inputs(a, b, 1)  # type: ignore[arg-type]

    @torch.no_grad()
    def encode_styles(self, images: Sequence[ImageLike], weights: Sequence[float] | None = None
                      ) -> tuple[torch.Tensor, ...]:
        """Several style images (RGB uint8 arrays, image files or ``(1, 3, H, W)`` tensors in [0, 1])
        -> style inputs (see :meth:`combine_moments`)."""
        return self.combine_moments([self.style_moments(_image_tensor(i, "style image")) for i in images], weights)

    # ------------------------------------------------------------------ hot path
    @abstractmethod
    def features(self, content: torch.Tensor, s0: torch.Tensor, s1: torch.Tensor, alpha: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """The transformed encoder features, blended with the content's by ``alpha`` (before decoding)."""

    def forward(self, content: torch.Tensor, s0: torch.Tensor, s1: torch.Tensor, alpha: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.decoder(self.features(content, s0, s1, alpha, mask))
        if self.controls.color == "luminance":
            out = luminance_transfer(out, content)
        return out


class StyleSet(nn.Module):
    """Several styles bound to a :class:`ControlledFeatureNet`, driven by the Stylizer without a style image.

    The per-image moments are computed once here. The Stylizer passes the style inputs from
    ``encode_style_vector(default_style_vector())`` (its style-vector path), so the inputs stay
    explicit graph inputs and ``set_style(model=same_set, style_vector=[...])`` re-weights an
    interpolation without re-encoding or re-exporting.

    Args:
        net: the model (its controls apply: alpha, colour, mask).
        images: style images (arrays, files or tensors).
        weights: interpolation weights (``None``: equal; must be ``None`` with a mask).
        fallback_spec: the spec to derive from when ``net`` carries none.
    """

    def __init__(self, net: ControlledFeatureNet, images: Sequence[ImageLike], weights: Sequence[float] | None,
                 fallback_spec: ModelSpec) -> None:
        super().__init__()
        if not images:
            raise ValueError("need at least one style image")
        self.net = net
        self._moments = [net.style_moments(_image_tensor(img, "style image")) for img in images]
        self._weights = None if weights is None else validate_weights(weights, len(images))
        net.combine_moments(self._moments, self._weights)  # validate now, not in the Stylizer's worker
        names = tuple(Path(i).stem if isinstance(i, (str, Path)) else f"style{j}" for j, i in enumerate(images))
        base: ModelSpec = getattr(net, "spec", fallback_spec)
        self.spec = replace(base, needs_style_image=False, styles=names)

    def default_style_vector(self) -> list[float]:
        """The weights given at construction (equal weights when none were given)."""
        if self._weights is not None:
            return list(self._weights)
        return [1.0 / len(self._moments)] * len(self._moments)

    def encode_style_vector(self, vector: Any) -> tuple[torch.Tensor, ...]:
        """Weights -> style inputs; with a mask the vector is ignored (one style per region)."""
        if self.net.controls.mask is not None:
            return self.net.combine_moments(self._moments, None)
        return self.net.combine_moments(self._moments, list(np.ravel(np.asarray(vector, dtype=float))))

    def frame_style_inputs(self, frame_index: int, style_inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return self.net.frame_style_inputs(frame_index, style_inputs)

    def forward(self, content: torch.Tensor, *style_inputs: torch.Tensor) -> torch.Tensor:
        return self.net(content, *style_inputs)

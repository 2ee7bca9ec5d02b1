"""A learned linear feature transform at relu3_1 (after Li et al. 2019, "Learning Linear
Transformations for Fast Arbitrary Style Transfer") on the pretrained normalised-VGG19 pair.

Content and style are encoded to relu3_1 (256 channels). A learned 1x1 convolution (``compress``)
maps the centred features of both to ``k`` channels (32 by default, the paper's matrix size); the
``k x k`` covariances of those compressed features give the transform matrix

    T = Cs^(1/2) Cc^(-1/2)          (style side x content side)

and the output features are ``unzip(T compress(f_c - mean_c)) + mean_s``, ``unzip`` a learned 1x1
convolution back to 256 channels. Only ``compress`` and ``unzip`` train (encoder and decoder stay
frozen), against VGG16 style and content losses (:mod:`rtstyle.training.linear`).

Where the paper regresses the two ``k x k`` matrices from the covariances with a fully connected
layer, here they are the covariances' matrix square root and inverse square root computed by a fixed
number of coupled Newton-Schulz iterations: only matrix products, so the whole per-frame graph
exports to ONNX/OpenVINO (no eigendecomposition, unlike ``wct.r31``), the compressed output
covariance equals the style's exactly, a style whose statistics equal the content's gives the
identity transform, and the module has a few thousand parameters that train on a CPU in minutes
rather than the paper's GPU days.

Style inputs are explicit tensors from :meth:`LinearNet.encode_style`:

* ``mean`` ``(K, 256, 1, 1)``: the style's relu3_1 channel means;
* ``color`` ``(K, k, k)``: ``Cs^(1/2)``, the style side of the transform;
* ``alpha`` ``(1,)``: content-style strength (an input, so a new alpha reuses an exported engine);
* ``mask`` (spatial control only) ``(1, K + 1, Hm, Wm)``: region weights, last channel the content.

The controls are AdaIN's (:class:`rtstyle.models.adain.AdaINControls`): alpha, colour preservation
(``"luminance"`` in the graph, ``"histogram"`` on the style image), masks, and several styles with
weights (their means and compressed covariances are interpolated, then the square root is taken).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import sha256_file
from ._safetensors_io import read_safetensors, write_safetensors
from ._shipped import register_entries, shipped_entries, shipped_file
from ._spec import ModelSpec
from ._style_controls import (AdaINControls, ControlledFeatureNet, ImageLike, MaskLike, StyleSet, controls_extra,
                              resolve_controls)
from .lst import LSTDecoder, LSTEncoder, load_decoder, load_encoder, r31_spec

__all__ = [
    "FORMAT",
    "LinearNet",
    "LinearStyleSet",
    "LinearTransform",
    "compressed_stats",
    "load_transform",
    "save_transform",
    "sqrt_and_inv_sqrt",
]

log = logging.getLogger(__name__)

#: ``format`` metadata of a transform file written by :func:`save_transform`.
FORMAT = "rtstyle.linear_transform/1"
_CHANNELS = 256


def sqrt_and_inv_sqrt(cov: torch.Tensor, iters: int = 20, ridge: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Square root and inverse square root of symmetric PSD matrices by coupled Newton-Schulz iterations.

    ``cov + ridge * (trace / k) * I`` is scaled by its trace (so its eigenvalues lie in (0, 1]) and
    iterated ``Y <- Y (3I - ZY) / 2``, ``Z <- (3I - ZY) Z / 2`` from ``Y = A``, ``Z = I``; ``Y`` tends to
    ``A^(1/2)`` and ``Z`` to ``A^(-1/2)``. Only matrix products: exportable and batched.

    Args:
        cov: ``(N, k, k)`` symmetric positive semi-definite matrices.
        iters: iterations (the smallest regularised eigenvalue decides how many are needed).
        ridge: regulariser relative to the mean eigenvalue.

    Returns:
        ``(sqrt, inv_sqrt)``, each ``(N, k, k)``, of the regularised matrices.
    """
    if cov.dim() != 3 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"cov must be (N, k, k), got {tuple(cov.shape)}")
    k = cov.shape[-1]
    eye = torch.eye(k, dtype=cov.dtype, device=cov.device).unsqueeze(0)
    # (cov * eye).sum is the trace; torch.diagonal has no ONNX export
    trace = (cov * eye).sum((1, 2), keepdim=True).clamp_min(1e-12)
    total = trace * (1.0 + ridge)
    y = (cov + (ridge / k) * trace * eye) / total
    z = eye.expand_as(cov)
    for _ in range(int(iters)):
        t = 0.5 * (3.0 * eye - z @ y)
        y = y @ t
        z = t @ z
    scale = total.sqrt()
    return y * scale, z / scale


def compressed_stats(feats: torch.Tensor, compress: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Channel means, compressed centred features and their covariance.

    Shape:
        ``(N, C, H, W)`` -> mean ``(N, C, 1, 1)``, compressed ``(N, k, H*W)``, covariance ``(N, k, k)``
        (normalised by ``H*W``).
    """
    mean = feats.mean((2, 3), keepdim=True)
    z = compress(feats - mean).flatten(2)
    cov = z @ z.transpose(1, 2) / z.shape[-1]
    return mean, z, cov


class LinearTransform(nn.Module):
    """The trainable part: ``compress`` (1x1, C -> k) and ``unzip`` (1x1, k -> C), no biases.

    Args:
        channels: encoder channels (256 at relu3_1).
        k: compressed channels (size of the transform matrix).
        iters: Newton-Schulz iterations.
        ridge: covariance regulariser relative to the mean eigenvalue.

    Shape:
        ``forward(content_feats (N, C, H, W), style_mean (N | K, C, 1, 1), color (N | K, k, k))`` ->
        ``(N | K, C, H, W)`` transformed features.
    """

    def __init__(self, channels: int = _CHANNELS, k: int = 32, iters: int = 20, ridge: float = 1e-3) -> None:
        super().__init__()
        if not (1 <= k <= channels):
            raise ValueError(f"k must be within 1..{channels}, got {k}")
        if iters < 1 or ridge <= 0:
            raise ValueError(f"need iters >= 1 and ridge > 0, got {iters}, {ridge}")
        self.channels, self.k, self.iters, self.ridge = int(channels), int(k), int(iters), float(ridge)
        self.compress = nn.Conv2d(channels, k, 1, bias=False)
        self.unzip = nn.Conv2d(k, channels, 1, bias=False)
        # orthonormal start: unzip = compress^T, a projection onto a random k-dim subspace;
        # the trainer replaces it with the principal subspace of real features (init_pca)
        q, _ = torch.linalg.qr(torch.randn(channels, k, generator=torch.Generator().manual_seed(0)))
        self._set(q)

    def _set(self, basis: torch.Tensor) -> None:
        """``compress = basis^T``, ``unzip = basis`` for a ``(C, k)`` orthonormal basis."""
        with torch.no_grad():
            self.compress.weight.copy_(basis.t().reshape(self.k, self.channels, 1, 1))
            self.unzip.weight.copy_(basis.reshape(self.channels, self.k, 1, 1))

    @torch.no_grad()
    def init_pca(self, feats: torch.Tensor) -> None:
        """Start from the principal ``k``-dim subspace of ``(N, C, H, W)`` features (per-image centred)."""
        x = (feats - feats.mean((2, 3), keepdim=True)).transpose(0, 1).reshape(self.channels, -1).double()
        cov = x @ x.t() / x.shape[1]
        _, vec = torch.linalg.eigh(cov)  # ascending: the last k are the principal directions
        self._set(vec[:, -self.k:].flip(1).float())

    def style_side(self, style_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Style relu3_1 features ``(N, C, H, W)`` -> ``(mean (N, C, 1, 1), color Cs^(1/2) (N, k, k))``."""
        mean, _, cov = compressed_stats(style_feats, self.compress)
        return mean, sqrt_and_inv_sqrt(cov, self.iters, self.ridge)[0]

    def style_moments(self, style_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean (N, C, 1, 1), compressed covariance (N, k, k))``: what several styles interpolate."""
        mean, _, cov = compressed_stats(style_feats, self.compress)
        return mean, cov

    def color_of(self, cov: torch.Tensor) -> torch.Tensor:
        """The style side ``Cs^(1/2)`` of compressed covariances ``(N, k, k)``."""
        return sqrt_and_inv_sqrt(cov, self.iters, self.ridge)[0]

    def matrix(self, content_feats: torch.Tensor, color: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(T (N|K, k, k), content mean (N, C, 1, 1), compressed content (N, k, H*W))``."""
        mean, z, cov = compressed_stats(content_feats, self.compress)
        whiten = sqrt_and_inv_sqrt(cov, self.iters, self.ridge)[1]
        return color @ whiten, mean, z

    def forward(self, content_feats: torch.Tensor, style_mean: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
        t, _, z = self.matrix(content_feats, color)
        h, w = content_feats.shape[-2:]
        y = (t @ z).reshape(t.shape[0], self.k, h, w)
        return self.unzip(y) + style_mean


class LinearNet(ControlledFeatureNet):
    """Encoder -> :class:`LinearTransform` -> decoder, with AdaIN's controls.

    Args:
        encoder: relu3_1 :class:`~rtstyle.models.lst.LSTEncoder`.
        decoder: relu3_1 :class:`~rtstyle.models.lst.LSTDecoder`.
        transform: the trained :class:`LinearTransform`.
        controls: alpha, colour preservation, mask (:class:`~rtstyle.models.adain.AdaINControls`).
        max_style_side: style images are downscaled to at most this longer side before encoding.
        min_style_side: through the Stylizer, a style image's longer side is the frames' internal
            shorter side, within ``[min_style_side, max_style_side]`` (:meth:`style_side_for`): at live
            sizes that is smaller than the cap and cheaper to encode, and it carried the held-out
            paintings at least as well (``docs/arbitrary.md``). ``min_style_side >= max_style_side``
            always uses the cap.

    Shape:
        ``forward(content, mean, color, alpha[, mask])``: ``(1, 3, H, W)`` RGB in [0, 1], H and W
        multiples of 4 -> ``(1, 3, H, W)`` in ~[0, 1].
    """

    def __init__(self, encoder: LSTEncoder, decoder: LSTDecoder, transform: LinearTransform,
                 controls: AdaINControls | None = None, max_style_side: int | None = 512,
                 min_style_side: int = 256) -> None:
        if encoder.level != 31 or decoder.level != 31:
            raise ValueError(f"linear.r31 needs the relu3_1 encoder and decoder, got levels {encoder.level}/{decoder.level}")
        if transform.channels != encoder.out_channels:
            raise ValueError(f"transform has {transform.channels} channels, the encoder {encoder.out_channels}")
        if min_style_side < 16:
            raise ValueError(f"min_style_side must be at least 16, got {min_style_side}")
        super().__init__(encoder, decoder, controls, max_style_side)
        self.transform = transform
        self.min_style_side = int(min_style_side)

    @property
    def style_image_side(self) -> int:
        return int(self.max_style_side or 1024)

    def style_side_for(self, content_side: int) -> int:
        """The style image's longer side for frames whose internal shorter side is ``content_side``: that
        side, within ``[min_style_side, style_image_side]``."""
        cap = self.style_image_side
        return min(cap, max(self.min_style_side, int(content_side)))

    def _rebuild(self, controls: AdaINControls) -> "LinearNet":
        return LinearNet(self.encoder, self.decoder, self.transform, controls, self.max_style_side,  # type: ignore[arg-type]
                         self.min_style_side)

    # ------------------------------------------------------------------ style side
    @torch.no_grad()
    def style_moments(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A style image ``(1, 3, H, W)`` in [0, 1] -> ``(mean (1, C, 1, 1), compressed covariance (1, k, k))``."""
        return self.transform.style_moments(self._encode_style_image(style).float())

    def _style_inputs(self, means: torch.Tensor, covs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interpolated ``(mean, cov)`` -> ``(mean, color)``: the square root is taken after interpolating."""
        return means, self.transform.color_of(covs)

    def with_styles(self, images: Sequence[ImageLike], weights: Sequence[float] | None = None) -> "LinearStyleSet":
        """A Stylizer-ready module holding several styles (interpolated, or one per mask region)."""
        return LinearStyleSet(self, images, weights)

    # ------------------------------------------------------------------ hot path
    def features(self, content: torch.Tensor, mean: torch.Tensor, color: torch.Tensor, alpha: torch.Tensor,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """``alpha * transformed + (1 - alpha) * content`` relu3_1 features."""
        f = self.encoder(content)
        if f.shape[0] != 1:
            raise ValueError(f"linear.r31 takes one frame at a time, got a batch of {f.shape[0]}")
        styled = self.transform(f, mean, color)  # (K, C, h, w)
        if mask is None:
            target = styled
        else:
            k = mean.shape[0]
            w = F.interpolate(mask, size=f.shape[-2:], mode="bilinear", align_corners=False)
            target = (w[0, :k].unsqueeze(1) * styled).sum(0, keepdim=True) + w[:, k:] * f
        a = alpha.reshape(1, 1, 1, 1)
        return a * target + (1.0 - a) * f


class LinearStyleSet(StyleSet):
    """Several styles bound to a :class:`LinearNet`, driven by the Stylizer's style-vector path
    (``set_style(model=same_set, style_vector=[...])`` re-weights without re-encoding)."""

    def __init__(self, net: LinearNet, images: Sequence[ImageLike], weights: Sequence[float] | None = None) -> None:
        super().__init__(net, images, weights, _BASE_SPEC)


# --------------------------------------------------------------------------- files

def save_transform(transform: LinearTransform, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the transform's weights (safetensors, temp file + rename) with its settings as metadata."""
    meta = dict(metadata or {}, format=FORMAT, channels=str(transform.channels), k=str(transform.k),
                iters=str(transform.iters), ridge=repr(transform.ridge))
    sd = {k: v.detach().contiguous().float().cpu() for k, v in transform.state_dict().items()}
    return write_safetensors(path, sd, meta)


def load_transform(path: str | Path) -> tuple[LinearTransform, dict[str, str]]:
    """A transform written by :func:`save_transform` (frozen, eval mode) and its metadata."""
    sd, meta = read_safetensors(path, FORMAT, "linear transform")
    net = LinearTransform(int(meta["channels"]), int(meta["k"]), int(meta["iters"]), float(meta["ridge"]))
    net.load_state_dict(sd)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), meta


# --------------------------------------------------------------------------- registry

_BASE_SPEC = r31_spec(
    "linear.r31",
    "linear",
    "arbitrary style by a learned linear transform at relu3_1 (after Li et al. 2019); exportable; needs --style IMG",
    {"layer": "relu3_1", "alpha": 1.0, "colour": None},
)


def build_linear(spec: ModelSpec, transform: LinearTransform, *, encoder_path: str | Path | None = None,
                 decoder_path: str | Path | None = None, controls: AdaINControls | None = None,
                 alpha: float | None = None, color: str | None = None, mask: MaskLike | None = None,
                 color_reference: ImageLike | None = None, max_style_side: int | None = 512,
                 min_style_side: int = 256, **unknown: Any) -> LinearNet:
    """A :class:`LinearNet` on the resolved relu3_1 pair; control kwargs override ``controls``' fields."""
    ctl = resolve_controls(spec, unknown, "max_style_side, min_style_side, encoder_path, decoder_path, transform_path",
                           controls,
                           alpha=alpha, color=color, mask=mask, color_reference=color_reference)
    net = LinearNet(load_encoder(31, encoder_path), load_decoder(31, decoder_path), transform, ctl, max_style_side,
                    min_style_side)
    net.spec = controls_extra(spec, ctl)  # type: ignore[attr-defined]
    return net


def _linear_factory(spec: ModelSpec, *, transform_path: str | Path | None = None, **kwargs: Any) -> nn.Module:
    if transform_path is None:
        with shipped_file(spec) as p:
            if spec.sha256 and sha256_file(p) != spec.sha256:
                raise ValueError(f"{spec.name}: shipped transform {p.name} fails its sha256 check (reinstall rtstyle)")
            transform, _ = load_transform(p)
    else:
        transform, _ = load_transform(transform_path)
    return build_linear(spec, transform, **kwargs)


def base_spec() -> ModelSpec:
    """The ``linear.r31`` contract before a trained transform is attached (trainer and manifest)."""
    return _BASE_SPEC


register_entries(shipped_entries("linear"), _linear_factory)

"""Style-swap (Chen & Schmidt 2016, "Fast Patch-based Style Transfer of Arbitrary Style").

Every ``k x k`` patch of the content's relu3_1 features is replaced by the style patch with the
highest normalised cross-correlation, overlapping patches are averaged, and the result is
decoded back to an image. Everything is convolutions, so the whole swap is one graph whose style
input is an explicit tensor (the style patches):

1. ``encode_style``: style image -> relu3_1 features -> all ``k x k`` patches (stride
   ``patch_stride``) as conv filters ``(L, C, k, k)``, plus the same filters divided by their
   L2 norm.
2. ``forward``: ``conv2d(content_features, normalised_patches)`` gives, per content position and
   style patch, the cross-correlation with the unit-norm style patch; the content patch norm is
   the same for every style patch, so the channel argmax is the NCC argmax. A one-hot of it goes
   through ``conv_transpose2d`` with the *unnormalised* patches (pasting the chosen patches), and
   is divided by ``conv_transpose2d(one_hot, ones)`` (how many patches cover each position).

Cost and the choice made here: the matching conv costs ``2 * N * L * C * k^2`` FLOPs (N content
positions, L style patches, C = 256), which is what limits speed on a CPU. The style image is
therefore resized so its longer side is at most ``max_style_side`` (256 px: a 64x64 relu3_1 map),
and patches are sampled with the smallest stride that keeps ``L <= max_patches`` (1024 by default;
with k = 3 a stride of 2 still covers every style position). Set ``max_patches=None`` and
``patch_stride=1`` for the paper's exhaustive matching. The pasting step has an exact cheaper
equivalent (gather the chosen patches and ``fold`` them), selected with ``swap_impl="gather"``;
the default ``"conv"`` is the paper's all-convolution form, which exports to ONNX unchanged.

Cheaper patch search (``search_dims``): the normalised style patches (``L`` vectors of
``D = C * k^2`` values) span far fewer than ``D`` directions, so the search can run in their
principal subspace: ``P`` basis patches (the top right singular vectors) as a ``k x k`` conv from
``C`` to ``P`` channels, then a 1x1 conv with the patches' ``P`` coordinates. That costs
``2 * N * (P * D + L * P)`` instead of ``2 * N * L * D`` FLOPs; only the choice of patch can
change (where two style patches score within the discarded energy of each other), the pasting
stays exact. Both steps are still convolutions with explicit style tensors.

``styleswap.multi`` (:class:`StyleSwapMultiNet`) follows the swap with AdaIN at relu2_1 and relu1_1
(the fine levels of the coarse-to-fine cascade, with rtstyle's own decoders for those levels): the
swap sets the painting's strokes, the fine levels its colours and fine texture.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import resolve_weight
from ._registry import register_model
from ._spec import ModelSpec
from .adain import FineAdaIN, level_stats, load_fine_adain
from .lst import LSTDecoder, LSTEncoder, cap_style_image, load_decoder, load_encoder, r31_spec

__all__ = ["StyleSwapMultiNet", "StyleSwapNet", "extract_patches", "normalise_patches", "search_basis", "style_swap"]

log = logging.getLogger(__name__)

_EPS = 1e-8


def extract_patches(features: torch.Tensor, patch_size: int, stride: int = 1) -> torch.Tensor:
    """All ``patch_size`` x ``patch_size`` patches of a feature map, as conv filters.

    Shape:
        features: ``(1, C, H, W)`` -> ``(L, C, k, k)`` with
        ``L = (floor((H - k) / stride) + 1) * (floor((W - k) / stride) + 1)``, row-major order.
    """
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"features must be (1, C, H, W), got {tuple(features.shape)}")
    _, c, h, w = features.shape
    k = int(patch_size)
    if h < k or w < k:
        raise ValueError(f"feature map {h}x{w} is smaller than the patch size {k}")
    cols = F.unfold(features, kernel_size=k, stride=int(stride))  # (1, C*k*k, L)
    return cols[0].t().reshape(-1, c, k, k).contiguous()


def normalise_patches(patches: torch.Tensor) -> torch.Tensor:
    """Each patch divided by its L2 norm (all-zero patches stay zero)."""
    norm = patches.flatten(1).norm(dim=1).clamp_min(_EPS)
    return patches / norm.view(-1, 1, 1, 1)


def search_basis(normalised: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The principal subspace of the normalised style patches, for the cheaper search.

    Args:
        normalised: ``(L, C, k, k)`` unit-norm patches.
        dims: ``P``, the subspace dimension (clamped to ``min(L, C * k * k)``).

    Returns:
        ``(basis, coords)``: ``basis`` ``(P, C, k, k)`` (orthonormal basis patches, a conv from C to P
        channels) and ``coords`` ``(L, P, 1, 1)`` (each patch's coordinates, a 1x1 conv), so that
        ``conv2d(conv2d(x, basis), coords)`` approximates ``conv2d(x, normalised)``.
    """
    if int(dims) < 1:
        raise ValueError(f"search dims must be >= 1, got {dims}")
    flat = normalised.flatten(1).double()
    p = min(int(dims), flat.shape[0], flat.shape[1])
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    basis = vh[:p]  # (P, D), orthonormal rows
    coords = flat @ basis.t()  # (L, P)
    dtype = normalised.dtype
    return (basis.to(dtype).reshape(p, *normalised.shape[1:]).contiguous(),
            coords.to(dtype).reshape(flat.shape[0], p, 1, 1).contiguous())


def style_swap(
    content: torch.Tensor,
    patches: torch.Tensor,
    normalised: torch.Tensor | None = None,
    impl: str = "conv",
    basis: torch.Tensor | None = None,
) -> torch.Tensor:
    """Replace every content patch by its best-matching (max NCC) style patch, averaging overlaps.

    Args:
        content: content features ``(N, C, H, W)``, ``H, W >= k``.
        patches: style patches ``(L, C, k, k)`` from :func:`extract_patches`.
        normalised: ``normalise_patches(patches)`` if precomputed (saves work per frame).
        impl: ``"conv"`` (one-hot + transposed conv, the paper's form) or ``"gather"``
            (same result: gather the chosen patches and fold them; cheaper for many patches).
        basis: the subspace search of :func:`search_basis`: ``basis`` ``(P, C, k, k)``, with
            ``normalised`` then the patch coordinates ``(L, P, 1, 1)``.

    Returns:
        Swapped features, same shape as ``content``.
    """
    if content.dim() != 4 or patches.dim() != 4 or content.shape[1] != patches.shape[1]:
        raise ValueError(f"content (N, C, H, W) and patches (L, C, k, k) must share C; got "
                         f"{tuple(content.shape)} and {tuple(patches.shape)}")
    k = patches.shape[-1]
    if basis is not None:
        if normalised is None or normalised.shape[:2] != (patches.shape[0], basis.shape[0]):
            raise ValueError(f"with a search basis of {basis.shape[0]} dims, normalised must be the patch "
                             f"coordinates ({patches.shape[0]}, {basis.shape[0]}, 1, 1), got "
                             f"{None if normalised is None else tuple(normalised.shape)}")
        scores = F.conv2d(F.conv2d(content, basis), normalised)
    else:
        if normalised is None:
            normalised = normalise_patches(patches)
        scores = F.conv2d(content, normalised)  # (N, L, H-k+1, W-k+1)
    best = scores.argmax(dim=1)  # (N, H', W')
    n_patches = patches.shape[0]
    if impl == "conv":
        one_hot = F.one_hot(best, n_patches).permute(0, 3, 1, 2).to(content.dtype)
        pasted = F.conv_transpose2d(one_hot, patches)
        # Overlap count: how many k x k windows cover each position (border-dependent).
        count = F.conv_transpose2d(one_hot, torch.ones_like(patches[:, :1]))
    elif impl == "gather":
        n, _, hh, ww = scores.shape
        cols = patches.flatten(1)[best.flatten()]  # (N*H'*W', C*k*k)
        cols = cols.view(n, hh * ww, -1).transpose(1, 2)
        size = (content.shape[2], content.shape[3])
        pasted = F.fold(cols, size, kernel_size=k)
        count = F.fold(torch.ones_like(cols[:1, :1].expand(1, k * k, hh * ww)), size, kernel_size=k)
    else:
        raise ValueError(f"impl must be 'conv' or 'gather', got {impl!r}")
    return pasted / count.clamp_min(1.0)


class StyleSwapNet(nn.Module):
    """Style-swap at relu3_1 between the pretrained normalised-VGG19 encoder and its decoder.

    Args:
        encoder: relu3_1 :class:`~rtstyle.models.lst.LSTEncoder`.
        decoder: relu3_1 :class:`~rtstyle.models.lst.LSTDecoder`.
        patch_size: style patch size ``k`` (3 in the paper; larger keeps bigger style structures).
        patch_stride: minimum stride when sampling style patches.
        max_style_side: the style image is downscaled so its longer side is at most this.
        max_patches: upper bound on the patch count (the stride grows to meet it); ``None``: no bound.
        swap_impl: ``"conv"`` or ``"gather"`` (see :func:`style_swap`).
        search_dims: ``None``: exhaustive search over all ``C * k^2`` dimensions; ``P``: search in
            the patches' ``P``-dimensional principal subspace (:func:`search_basis`); the style
            inputs are then ``(patches, coords, basis)``.

    Shape:
        content ``(1, 3, H, W)`` RGB in [0, 1], H and W multiples of 4 -> ``(1, 3, H, W)`` in ~[0, 1].

    ``--precision auto`` stays fp32 (:class:`~rtstyle.models._abilities.AutoPrecisions`): the swap takes an
    argmax over patch correlations, and in bf16 close matches flip. How many flip depends on the style
    image: on one 2-vCPU AVX512_BF16 host ``styleswap.multi`` in eager bf16 was 40.3 dB from fp32 in a
    cached decision and 29.0 dB with ``wave.jpg``, while ``auto`` caches one decision for every style.
    """

    auto_precisions: tuple[str, ...] = ("fp32",)
    auto_precisions_reason = "style-swap's patch matching flips in bf16/int8, by an amount that depends on the style"

    def __init__(
        self,
        encoder: LSTEncoder,
        decoder: LSTDecoder,
        patch_size: int = 3,
        patch_stride: int = 1,
        max_style_side: int | None = 256,
        max_patches: int | None = 1024,
        swap_impl: str = "conv",
        search_dims: int | None = None,
    ) -> None:
        super().__init__()
        if encoder.level != decoder.level:
            raise ValueError(f"encoder level {encoder.level} and decoder level {decoder.level} differ")
        if int(patch_size) < 1:
            raise ValueError(f"patch_size must be >= 1, got {patch_size}")
        if int(patch_stride) < 1:
            raise ValueError(f"patch_stride must be >= 1, got {patch_stride}")
        if swap_impl not in ("conv", "gather"):
            raise ValueError(f"swap_impl must be 'conv' or 'gather', got {swap_impl!r}")
        if search_dims is not None and int(search_dims) < 1:
            raise ValueError(f"search_dims must be >= 1 or None, got {search_dims}")
        self.search_dims = None if search_dims is None else int(search_dims)
        self.encoder = encoder
        self.decoder = decoder
        self.patch_size = int(patch_size)
        self.patch_stride = int(patch_stride)
        self.max_style_side = max_style_side
        self.max_patches = max_patches
        self.swap_impl = swap_impl

    def _stride_for(self, h: int, w: int) -> int:
        k, s = self.patch_size, self.patch_stride
        if self.max_patches is None:
            return s
        while ((h - k) // s + 1) * ((w - k) // s + 1) > self.max_patches and s < max(h, w):
            s += 1
        return s

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Style image -> ``(patches, normalised_patches)``, both ``(L, 256, k, k)``; with
        ``search_dims``: ``(patches, coords, basis)`` (see :func:`search_basis`).

        Args:
            style: ``(1, 3, H, W)`` RGB in [0, 1].
        """
        h, w = style.shape[-2:]
        style = cap_style_image(style, self.max_style_side, min_side=4 * self.patch_size)
        feats = self.encoder(style)
        fh, fw = feats.shape[-2:]
        if min(fh, fw) < self.patch_size:
            raise ValueError(f"style image {w}x{h} is too small for patch size {self.patch_size} "
                             f"(relu3_1 map {fw}x{fh}); use a larger style image")
        stride = self._stride_for(fh, fw)
        patches = extract_patches(feats, self.patch_size, stride)
        log.debug("style-swap: %d patches of %dx%d from a %dx%d relu3_1 map (stride %d)",
                  patches.shape[0], self.patch_size, self.patch_size, fw, fh, stride)
        normalised = normalise_patches(patches)
        if self.search_dims is not None:
            basis, coords = search_basis(normalised, self.search_dims)
            return patches, coords, basis
        return patches, normalised

    def forward(
        self,
        content: torch.Tensor,
        patches: torch.Tensor,
        normalised: torch.Tensor | None = None,
        basis: torch.Tensor | None = None,
    ) -> torch.Tensor:
        feats = self.encoder(content)
        if min(feats.shape[-2:]) < self.patch_size:
            raise ValueError(f"content {tuple(content.shape[-2:])} is too small for patch size {self.patch_size}")
        swapped = style_swap(feats, patches, normalised, impl=self.swap_impl, basis=basis)
        return self.decoder(swapped)


class StyleSwapMultiNet(StyleSwapNet):
    """Style-swap at relu3_1, then AdaIN at relu2_1 and relu1_1 (``styleswap.multi``).

    The swap pastes the painting's relu3_1 patches (its strokes and shapes); the pasted patches keep
    little of the painting's finer statistics (every output of ``styleswap.r31`` on the held-out
    matrix came out nearest the same pale print), so the decoded image goes through the fine levels
    of the coarse-to-fine cascade (:class:`~rtstyle.models.adain.FineAdaIN`), as in ``adain.multi``
    and ``wct.multi``. Everything is still convolutions and statistics: it exports.

    Args:
        encoder, decoder, options: as :class:`StyleSwapNet`.
        fine: the relu2_1 / relu1_1 levels (:func:`~rtstyle.models.adain.load_fine_adain`).
        fine_style_side: longer side of the style image the fine statistics come from (the swap's
            own cap, ``max_style_side``, is smaller: the patch search is what costs).

    Shape:
        ``forward(content, patches, normalised, fine_mean, fine_std[, basis])``: as
        :class:`StyleSwapNet`, with the fine levels' concatenated channel statistics
        ``(1, 128 + 64, 1, 1)`` after the swap's first two inputs.
    """

    def __init__(self, encoder: LSTEncoder, decoder: LSTDecoder, fine: FineAdaIN, fine_style_side: int | None = 512,
                 **options: Any) -> None:
        super().__init__(encoder, decoder, **options)
        self.fine = fine
        self.fine_style_side = fine_style_side

    @torch.no_grad()
    def encode_style(self, style: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Style image -> ``(patches, normalised, fine_mean, fine_std)``; with ``search_dims``:
        ``(patches, coords, fine_mean, fine_std, basis)``."""
        swap = super().encode_style(style)
        mean, std = level_stats(self.encoder, self.fine.levels, cap_style_image(style, self.fine_style_side))
        return (swap[0], swap[1], mean, std, *swap[2:])

    def forward(self, content: torch.Tensor, patches: torch.Tensor, normalised: torch.Tensor,  # type: ignore[override]
                fine_mean: torch.Tensor, fine_std: torch.Tensor, basis: torch.Tensor | None = None) -> torch.Tensor:
        # named arguments, not *args: the exporter gives each input its own dynamic shape
        x = super().forward(content, patches, normalised, basis)
        return self.fine(x, fine_mean, fine_std, torch.ones(1, dtype=x.dtype, device=x.device))


_SPEC = r31_spec(
    "styleswap.r31",
    "styleswap",
    "arbitrary style by patch swap at relu3_1 (Chen & Schmidt 2016); needs --style IMG",
    {"patch_size": 3, "max_style_side": 256, "max_patches": 1024, "layer": "relu3_1"},
)


#: The factory's options: :class:`StyleSwapNet`'s keyword arguments, recorded in the spec's ``extra``.
_OPTIONS = ("patch_size", "patch_stride", "max_style_side", "max_patches", "swap_impl", "search_dims")


@register_model(_SPEC)
def _styleswap_r31(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
                   **options: Any) -> nn.Module:
    """Build ``styleswap.r31``; ``options`` are :class:`StyleSwapNet`'s (``patch_size=``, ...), weights
    resolved by :func:`rtstyle.weights.resolve_weight`."""
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"styleswap.r31: unknown options {sorted(unknown)}; known: {', '.join(_OPTIONS)}, "
                        "encoder_path, decoder_path")
    net = StyleSwapNet(load_encoder(31, encoder_path), load_decoder(31, decoder_path), **options)
    extra = dict(spec.extra, **{k: getattr(net, k) for k in _OPTIONS})
    net.spec = replace(spec, extra=extra)  # type: ignore[attr-defined]
    return net


_MULTI_SPEC = replace(
    r31_spec(
        "styleswap.multi",
        "styleswap",
        "arbitrary style by patch swap at relu3_1 (Chen & Schmidt 2016), then AdaIN at relu2_1 and relu1_1; "
        "needs --style IMG",
        {"patch_size": 3, "max_style_side": 256, "max_patches": 1024, "layers": ["relu3_1", "relu2_1", "relu1_1"]},
    ),
    weights="lst/vgg_r31.pth + lst/dec_r31.pth + rtstyle's lst_dec_r21/lst_dec_r11 (shipped)",
)


@register_model(_MULTI_SPEC)
def _styleswap_multi(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
                     decoder21_path: str | Path | None = None, decoder11_path: str | Path | None = None,
                     fine_style_side: int | None = 512, **options: Any) -> nn.Module:
    """Build ``styleswap.multi``; ``options`` as ``styleswap.r31``'s."""
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"styleswap.multi: unknown options {sorted(unknown)}; known: {', '.join(_OPTIONS)}, "
                        "fine_style_side, encoder_path, decoder_path, decoder21_path, decoder11_path")
    enc_file = resolve_weight("lst/vgg_r31", explicit=encoder_path)
    net = StyleSwapMultiNet(load_encoder(31, enc_file), load_decoder(31, decoder_path),
                            load_fine_adain(enc_file, decoder21_path, decoder11_path), fine_style_side, **options)
    extra = dict(spec.extra, **{k: getattr(net, k) for k in _OPTIONS})
    net.spec = replace(spec, extra=extra)  # type: ignore[attr-defined]
    return net


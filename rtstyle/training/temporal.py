"""Temporal regularisation from still images: train a feed-forward net to be stable on video.

A stylisation net flickers because a small change of its input (a sub-pixel shift of the camera,
sensor noise) changes its output by much more than the same warp of the previous output. Wang et al.,
"Consistent Video Style Transfer via Compound Regularization" (AAAI 2020), train that away without
video or optical flow: for a training image ``x`` and a random small transform ``W`` (shift, rotation,
zoom) plus noise ``n``, the net ``N`` should satisfy ``N(W(x) + n) == W(N(x))``. The loss here is the
mean squared difference of the two sides, measured only where ``W`` maps pixels from inside the image
(the border it would invent is masked out), on the net's output scaled to [0, 1].

:func:`random_affine` draws the transforms, :func:`warp` applies one (``F.affine_grid`` +
``F.grid_sample``) and returns the validity mask, and :func:`compound_temporal_loss` is the loss a
trainer adds; :class:`TemporalReg` holds the transforms' strength.

The trainers share the rest, written once here: :class:`TemporalOptions` is the config mixin of the
``--temporal-*`` flags (Johnson, MSG-Net, MetaNet), :meth:`TemporalOptions.record_temporal` writes
them into a trained model's spec ``extra``, and :class:`TemporalTerm` is the weighted loss of one run
(its RNG, the net under the run's mixed precision). The same options and term carry the second method,
the video temporal loss on real frame pairs with optical flow (``--temporal-video``,
:mod:`.video_pairs`).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ._loop import Amp

__all__ = ["TemporalOptions", "TemporalReg", "TemporalTerm", "compound_temporal_loss", "jpeg_artefacts",
           "random_affine", "trained_clips", "warp"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemporalReg:
    """Strength of the random transforms of the compound regulariser.

    Attributes:
        shift: largest translation, in pixels (uniform in ``[-shift, shift]`` on each axis).
        rotate: largest rotation, in degrees.
        zoom: largest relative scale change (``0.02``: scale in ``[0.98, 1.02]``).
        noise: standard deviation of the Gaussian noise added to the warped input, on [0, 1] pixels.
        jpeg: lowest JPEG quality of the codec artefacts given to the warped input (each image is
            encoded at a quality drawn from ``[jpeg, 95]``, before the noise); 0 = none. A codec's
            block noise changes from frame to frame, and a net that turns it into strokes flickers
            most where the picture is flat (a sky): this teaches it to draw the clean frame's output.
        margin: pixels dropped from the mask's edges (the net's own border effects: padding at the
            frame's edge, and the invented border reaching in through the receptive field).
    """

    shift: float = 4.0
    rotate: float = 1.0
    zoom: float = 0.02
    noise: float = 0.01
    margin: int = 2
    jpeg: int = 0

    def __post_init__(self) -> None:
        for k in ("shift", "rotate", "zoom", "noise"):
            if getattr(self, k) < 0:
                raise ValueError(f"temporal {k} must be >= 0, got {getattr(self, k)}")
        if not (self.jpeg == 0 or 1 <= self.jpeg <= 95):
            raise ValueError(f"temporal jpeg quality must be 0 (off) or within [1, 95], got {self.jpeg}")
        if self.margin < 0:
            raise ValueError(f"temporal margin must be >= 0, got {self.margin}")


def random_affine(n: int, height: int, width: int, reg: TemporalReg,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` small random affine transforms as ``F.affine_grid`` matrices.

    The matrices map an output pixel's normalised coordinates (``align_corners=False``) to where it
    is sampled from in the input; a shift of ``s`` pixels along x is ``2 s / width`` there.

    Args:
        n: how many.
        height, width: the image size the transforms are for (the shift is in pixels).
        reg: the transforms' strength.
        generator: optional RNG (CPU) for reproducible draws.

    Returns:
        ``(n, 2, 3)`` float32 on the CPU.
    """
    u = torch.rand(n, 4, generator=generator) * 2.0 - 1.0  # uniform in [-1, 1]
    ang = u[:, 0] * math.radians(reg.rotate)
    scale = 1.0 + u[:, 1] * reg.zoom
    tx = u[:, 2] * reg.shift * 2.0 / width
    ty = u[:, 3] * reg.shift * 2.0 / height
    cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
    # rotation in pixel units: normalised x and y have different pixel pitches on a non-square image
    ar = width / height
    theta = torch.stack([torch.stack([cos, -sin / ar, tx], 1), torch.stack([sin * ar, cos, ty], 1)], 1)
    return theta.float()


def warp(x: torch.Tensor, theta: torch.Tensor, margin: int = 0,
         padding_mode: str = "reflection") -> tuple[torch.Tensor, torch.Tensor]:
    """Warp images by affine matrices and say which output pixels came from inside the image.

    Args:
        x: ``(N, C, H, W)`` float images.
        theta: ``(N, 2, 3)`` matrices as from :func:`random_affine`.
        margin: pixels to drop from the valid region's edge and from the frame's edge.
        padding_mode: what ``grid_sample`` fills outside (``reflection`` keeps the input natural
            for a net; the mask excludes those pixels from any comparison anyway).

    Returns:
        ``(warped, mask)``: the warped images and a ``(N, 1, H, W)`` float mask, 1 where the sample
        point lies inside the source image by at least ``margin`` pixels and the pixel is at least
        ``margin`` pixels from the frame's edge.

    Shape:
        x ``(N, C, H, W)``, theta ``(N, 2, 3)`` -> ``(N, C, H, W)``, ``(N, 1, H, W)``.
    """
    if x.dim() != 4:
        raise ValueError(f"warp expects (N, C, H, W), got shape {tuple(x.shape)}")
    if theta.shape != (x.shape[0], 2, 3):
        raise ValueError(f"theta must be ({x.shape[0]}, 2, 3), got {tuple(theta.shape)}")
    n, _, h, w = x.shape
    grid = F.affine_grid(theta.to(x.device, torch.float32), [n, 1, h, w], align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    # a sample point's pixel coordinates in the source: inside [margin, size-1-margin] is valid
    px = (grid[..., 0] + 1.0) * w / 2.0 - 0.5
    py = (grid[..., 1] + 1.0) * h / 2.0 - 0.5
    eps = 1e-3
    valid = (px >= margin - eps) & (px <= w - 1 - margin + eps) & (py >= margin - eps) & (py <= h - 1 - margin + eps)
    if margin:  # the frame's own edge too: a net pads there, so its output is not shift-equivariant
        valid[:, :margin] = False
        valid[:, h - margin :] = False
        valid[:, :, :margin] = False
        valid[:, :, w - margin :] = False
    return out.to(x.dtype), valid[:, None].to(x.dtype)


def compound_temporal_loss(net_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                           reg: TemporalReg, generator: torch.Generator | None = None,
                           theta: torch.Tensor | None = None) -> torch.Tensor:
    """The compound regulariser: ``mean(mask * (N(W(x) + noise) - W(N(x)))**2)`` (with ``reg.jpeg``, the warped
    input is JPEG-compressed before the noise: ``N(jpeg(W(x)) + noise)``).

    Args:
        net_fn: the net on images in [0, 1], returning its output in [0, 1] (the trainer's scaling).
        x: ``(N, 3, H, W)`` training images in [0, 1].
        y: ``net_fn(x)``, already computed by the trainer (gradients flow through both sides).
        reg: strength of the random transforms and noise.
        generator: optional RNG for the transforms and noise.
        theta: fixed ``(N, 2, 3)`` transforms instead of random ones (tests, evaluation).

    Returns:
        A scalar: the masked mean squared difference (0 for a net that commutes with the warp).
    """
    n, _, h, w = x.shape
    if theta is None:
        theta = random_affine(n, h, w, reg, generator)
    xw, _ = warp(x, theta, 0)
    if reg.jpeg:
        xw = jpeg_artefacts(xw, reg.jpeg, generator)
    if reg.noise > 0:
        noise = torch.randn(xw.shape, generator=generator).to(xw.device, xw.dtype) * reg.noise
        xw = xw + noise
    y2 = net_fn(xw).float()
    yw, mask = warp(y.float(), theta, reg.margin)
    denom = mask.sum() * y2.shape[1]
    if denom.item() == 0:
        log.warning("temporal regulariser: the warp left no valid pixel (image %dx%d); loss 0", w, h)
        return y2.sum() * 0.0
    return ((y2 - yw) ** 2 * mask).sum() / denom


def jpeg_artefacts(x: torch.Tensor, lowest_quality: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of ``x`` (in [0, 1]) JPEG-encoded and decoded at a random quality in ``[lowest_quality, 95]``.

    OpenCV's codec: 8x8 block DCT quantisation with 4:2:0 chroma, the artefacts of a video codec's
    intra blocks. No gradient flows through it (it is the input side of the regulariser).

    Shape:
        ``(N, 3, H, W)`` -> the same, same dtype and device.
    """
    import cv2
    import numpy as np

    q = torch.randint(lowest_quality, 96, (x.shape[0],), generator=generator)
    img = (x.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for im, qi in zip(img, q.tolist()):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(im[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(qi)])
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode a training crop")
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy())
    y = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device, torch.float32) / 255.0
    return y.to(x.dtype)


#: How the spec names the method (``extra.temporal_regulariser.method``).
METHOD = "compound (Wang et al. 2020): N(W(x)+noise) = W(N(x))"
#: How the spec names the video loss (``extra.temporal_video.method``).
VIDEO_METHOD = "video pairs (Huang et al. 2017, ReCoNet): N(a) = warp(N(b), flow a->b) where the flow holds"
FEATURE_METHOD = ("feature level (ReCoNet, Gao et al. 2018): E(a) = warp(E(b), flow a->b downscaled to E's "
                  "resolution) for the encoder E, where the flow holds in the whole cell")
#: Clips for the video loss are downscaled to fit this (width, height): the scale of the evaluation.
VIDEO_FRAME_SIZE = (320, 240)


def trained_clips(spec_extra: dict[str, Any] | None) -> set[str]:
    """The names of the clips a trained net's video temporal loss saw (from its spec's ``extra``)."""
    video = (spec_extra or {}).get("temporal_video") or {}
    return set(video.get("clips", ()))


@dataclass(kw_only=True)
class TemporalOptions:
    """The ``--temporal-*`` flags of ``rtstyle train johnson|msgnet|metanet``: a trainer config inherits them.

    Keyword-only, so a config's own required fields may follow; ``temporal_weight`` 0 (the default)
    leaves training exactly as without the regulariser.
    """

    temporal_weight: float = field(default=0.0, metadata={"help": "weight of the compound temporal regulariser "
                                   "(Wang et al. 2020): N(W(x)+noise) = W(N(x)) for small random affine warps W; 0 = off"})
    temporal_shift: float = field(default=4.0, metadata={"help": "temporal regulariser: largest shift, pixels"})
    temporal_rotate: float = field(default=1.0, metadata={"help": "temporal regulariser: largest rotation, degrees"})
    temporal_zoom: float = field(default=0.02, metadata={"help": "temporal regulariser: largest relative zoom"})
    temporal_noise: float = field(default=0.01, metadata={"help": "temporal regulariser: std of the Gaussian noise "
                                  "added to the warped input (pixels in [0, 1])"})
    temporal_jpeg: int = field(default=0, metadata={"help": "temporal regulariser: lowest JPEG quality of the codec "
                               "artefacts given to the warped input (quality drawn from [Q, 95]; 0 = none)",
                               "metavar": "Q"})
    temporal_video: tuple[str, ...] = field(default=(), metadata={
        "help": "video file or folder of frames (with make_synthetic_flow_seq.py's .flo files: exact flow; "
                "without: DIS flow and an occlusion mask) whose consecutive frames train the video temporal loss; "
                "repeat. Never a clip you evaluate on", "action": "append", "metavar": "PATH"})
    temporal_video_weight: float = field(default=0.0, metadata={
        "help": "weight of the video temporal loss (Huang et al. 2017, ReCoNet): N(a) = warp(N(b), flow a->b) on "
                "--temporal-video frame pairs, where the flow holds; 0 = off"})
    temporal_feature_weight: float = field(default=0.0, metadata={
        "help": "weight of ReCoNet's feature-level video temporal loss: the encoder's features (after the residual "
                "blocks) of a and b agree through the flow, downscaled to them; on the --temporal-video pairs; "
                "Johnson nets only; 0 = off"})
    temporal_video_frames: int = field(default=48, metadata={
        "help": "video temporal loss: frames read from the start of each --temporal-video clip"})
    temporal_video_stride: int = field(default=1, metadata={
        "help": "video temporal loss: frame distance of a pair in clips without exact flow (2: larger motion)"})

    def temporal_reg(self) -> TemporalReg:
        """The transforms' strength these options give (checks them: negative values raise ValueError)."""
        if self.temporal_weight < 0:
            raise ValueError(f"temporal weight must be >= 0, got {self.temporal_weight}")
        if self.temporal_video_weight < 0:
            raise ValueError(f"temporal video weight must be >= 0, got {self.temporal_video_weight}")
        if self.temporal_feature_weight < 0:
            raise ValueError(f"temporal feature weight must be >= 0, got {self.temporal_feature_weight}")
        if (self.temporal_video_weight > 0 or self.temporal_feature_weight > 0) and not self.temporal_video:
            flag = "--temporal-video-weight" if self.temporal_video_weight > 0 else "--temporal-feature-weight"
            raise ValueError(f"{flag} needs at least one --temporal-video clip")
        if self.temporal_video_frames < 2 or self.temporal_video_stride < 1 \
                or self.temporal_video_stride >= self.temporal_video_frames:
            raise ValueError(f"temporal video: need frames >= 2 and 1 <= stride < frames, got "
                             f"{self.temporal_video_frames} frames, stride {self.temporal_video_stride}")
        return TemporalReg(self.temporal_shift, self.temporal_rotate, self.temporal_zoom, self.temporal_noise,
                           jpeg=self.temporal_jpeg)

    def check_temporal(self, *, features: bool) -> TemporalReg:
        """:meth:`temporal_reg`, and ValueError for the feature-level loss on a net without an encoder:
        the checks a trainer runs before anything loads. ``features``: whether the trainer's net exposes
        an encoder for the feature-level loss."""
        reg = self.temporal_reg()
        if self.temporal_feature_weight > 0 and not features:
            raise ValueError("--temporal-feature-weight needs a net with an encoder to compare; "
                             "this trainer's has none (rtstyle train johnson has)")
        return reg

    def _video_on(self) -> bool:
        return self.temporal_video_weight > 0 or self.temporal_feature_weight > 0

    def record_temporal(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Write the options into a spec's ``extra`` (in place; returned): ``weights.temporal`` and
        ``temporal_regulariser`` (None when off)."""
        extra.setdefault("weights", {})["temporal"] = self.temporal_weight
        reg = self.temporal_reg()
        extra["temporal_regulariser"] = ({
            "method": METHOD, "weight": self.temporal_weight, "shift_px": reg.shift, "rotate_deg": reg.rotate,
            "zoom": reg.zoom, "noise_std": reg.noise, "jpeg_lowest_quality": reg.jpeg, "mask_margin_px": reg.margin}
            if self.temporal_weight > 0 else None)
        extra["weights"]["temporal_video"] = self.temporal_video_weight
        extra["weights"]["temporal_feature"] = self.temporal_feature_weight
        extra["temporal_video"] = ({
            "method": VIDEO_METHOD, "weight": self.temporal_video_weight,
            "feature_method": FEATURE_METHOD if self.temporal_feature_weight > 0 else None,
            "feature_weight": self.temporal_feature_weight,
            "clips": sorted({Path(p).name for p in self.temporal_video}),
            "frames_per_clip": self.temporal_video_frames, "stride": self.temporal_video_stride,
            "frame_size": list(VIDEO_FRAME_SIZE)} if self._video_on() else None)
        return extra


class TemporalTerm:
    """The weighted temporal terms of one training run: the compound regulariser and the video loss.

    Args:
        options: the run's config (its ``temporal_*`` fields).
        seed: the run's seed; the transforms and noise draw from their own RNG (``seed + 1``), so the
            data order and the initial weights are those of a run without the term; the video loss's
            crops draw from ``seed + 2``. The video loss's frame pairs are loaded (and their flows
            estimated) here, once.
        features: whether the trainer's net exposes its encoder (it passes ``split255`` to :meth:`add`);
            the feature-level loss (``temporal_feature_weight``) needs one, and asking for it otherwise
            raises ValueError here, before any data loads.
    """

    def __init__(self, options: TemporalOptions, seed: int, *, features: bool = False) -> None:
        self.reg = options.check_temporal(features=features)
        self.weight = float(options.temporal_weight)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.video_weight = float(options.temporal_video_weight)
        self.feature_weight = float(options.temporal_feature_weight)
        self.video = None
        if self.video_weight > 0 or self.feature_weight > 0:
            from .video_pairs import FlowPairSampler, load_flow_pairs

            pairs = load_flow_pairs(options.temporal_video, max_frames=options.temporal_video_frames,
                                    max_size=VIDEO_FRAME_SIZE, stride=options.temporal_video_stride)
            self.video = FlowPairSampler(pairs, 128, torch.Generator().manual_seed(seed + 2))

    @property
    def active(self) -> bool:
        """Whether a term is on (a weight > 0); a trainer adds nothing when none is."""
        return self.weight > 0 or self.video is not None

    def __call__(self, net255: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                 amp: Amp) -> torch.Tensor:
        """``weight * compound_temporal_loss`` of a net on [0, 255] pixels.

        Args:
            net255: the net as the step trains it (for MSG-Net with the step's style target, for MetaNet
                the step's generated net): ``(N, 3, H, W)`` in [0, 255] -> its output in [0, 255].
            x: the step's content batch in [0, 1].
            y: ``net255(x * 255) / 255``, as the step computed it (any dtype; gradients flow).
            amp: the run's mixed precision: the warped batch gets its layout (``amp.batch``: NCHW for a
                trainer that asked for it) and the net runs under its autocast.

        Returns:
            A scalar fp32 tensor.
        """
        return self.weight * compound_temporal_loss(self._net01(net255, amp), x.float(), y, self.reg, self.generator)

    @staticmethod
    def _net01(net255: Callable[[torch.Tensor], torch.Tensor], amp: Amp) -> Callable[[torch.Tensor], torch.Tensor]:
        def net01(z: torch.Tensor) -> torch.Tensor:
            with amp.autocast():
                return net255(amp.batch(z) * 255.0) / 255.0

        return net01

    def video_term(self, net255: Callable[[torch.Tensor], torch.Tensor], batch: int, size: int,
                   device: torch.device | str, amp: Amp) -> torch.Tensor:
        """``video_weight * video_temporal_loss`` on ``batch`` random ``size`` px crops of the run's frame pairs."""
        from .video_pairs import video_temporal_loss

        assert self.video is not None
        a, b, flow, mask = (t.to(device) for t in self.video.batch(batch, size))
        return self.video_weight * video_temporal_loss(self._net01(net255, amp), a, b, flow, mask)

    def video_terms(self, split255: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], batch: int,
                    size: int, device: torch.device | str, amp: Amp) -> tuple[torch.Tensor, torch.Tensor]:
        """The weighted output- and feature-level video losses on one draw of crops, from one pass of
        the net per frame; ``split255``: [0, 255] input -> ``(encoder features, output in [0, 255])``."""
        from .video_pairs import video_temporal_losses

        assert self.video is not None

        def split01(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with amp.autocast():
                feats, out = split255(amp.batch(z) * 255.0)
            return feats, out / 255.0

        a, b, flow, mask = (t.to(device) for t in self.video.batch(batch, size))
        out_loss, feat_loss = video_temporal_losses(split01, a, b, flow, mask)
        return self.video_weight * out_loss, self.feature_weight * feat_loss

    def add(self, loss: torch.Tensor, logged: dict[str, float], net255: Callable[[torch.Tensor], torch.Tensor],
            x: torch.Tensor, y: torch.Tensor, amp: Amp,
            split255: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """``loss`` plus the terms that are on (their values go to ``logged["temporal"]``,
        ``logged["temporal_video"]`` and ``logged["temporal_feature"]``, the video terms on as many crops
        as ``x`` has images, at its size); ``loss`` itself, untouched, when none is. The arguments are
        those of :meth:`__call__`, plus ``split255`` (see :meth:`video_terms`), which the feature-level
        loss needs."""
        if self.weight > 0:
            term = self(net255, x, y, amp)
            logged["temporal"] = term.item()
            loss = loss + term
        if self.video is not None and self.feature_weight > 0:
            if split255 is None:
                raise ValueError("the feature-level temporal loss needs split255, the net's encoder/decoder split")
            vterm, fterm = self.video_terms(split255, x.shape[0], x.shape[-1], x.device, amp)
            logged["temporal_video"] = vterm.item()
            logged["temporal_feature"] = fterm.item()
            loss = loss + vterm + fterm
        elif self.video is not None:
            vterm = self.video_term(net255, x.shape[0], x.shape[-1], x.device, amp)
            logged["temporal_video"] = vterm.item()
            loss = loss + vterm
        return loss

"""Temporal loss on real frame pairs with optical flow: train a net on what video does to it.

The compound regulariser (:mod:`.temporal`) teaches a net to commute with small affine warps of
still photos. Real footage adds what a warp of one photo lacks: objects moving on their own,
occlusions, motion blur, codec noise that changes from frame to frame. The short-term temporal loss
of Ruder et al. (2016), Huang et al. ("Real-Time Neural Style Transfer for Videos", CVPR 2017) and
ReCoNet (Gao et al. 2018) trains on consecutive frames ``a, b`` of video with the flow ``f`` from
``a`` to ``b`` and a mask ``M`` of the pixels visible in both:

    L_video = mean over M of | N(a) - warp(N(b), f) |^2            (outputs in [0, 1])

which is the warping error of Lai et al. (:func:`rtstyle.temporal.warping_error`) made a loss.

:func:`load_flow_pairs` builds the pairs once, at the start of a run, from

* a folder of frames with Middlebury ``flow_XXXX_YYYY.flo`` files between them, as written by
  ``make_synthetic_flow_seq.py`` (exact flow; every in-frame pixel valid);
* a video file or a folder of frames without flow: DIS flow (OpenCV) both ways, and the mask keeps
  the pixels that pass the forward-backward check and whose brightness the flow explains
  (:func:`~rtstyle.temporal.warp.fb_consistency_mask`, :func:`~rtstyle.temporal.warp.photometric_mask`),
  as the evaluation's mask does.

:class:`FlowPairSampler` draws random same-place crops (and flips) of the pairs, and
:func:`video_temporal_loss` is the loss. ReCoNet's feature-level term, the same loss on the encoder's
features with the flow downscaled to them (:func:`video_temporal_losses`, :func:`downsample_flow`),
is there for nets that expose their encoder (the Johnson net's ``encode`` / ``decode``).

Clips evaluated on must not be trained on: the trainers record the clips' names in the spec
(``extra.temporal_video.clips``) and ``tools/eval_stable_nets.py`` refuses to evaluate a net on a clip
it saw.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["FlowPair", "FlowPairSampler", "downsample_flow", "flow_warp", "load_flow_pairs", "masked_warp_error",
           "pairs_from_frames", "video_temporal_loss", "video_temporal_losses"]

log = logging.getLogger(__name__)

_FLO = re.compile(r"flow_(\d+)_(\d+)\.flo$")


@dataclass(frozen=True)
class FlowPair:
    """Two consecutive frames, the flow between them and where it holds.

    Attributes:
        a, b: ``(H, W, 3)`` uint8 RGB frames.
        flow: ``(H, W, 2)`` float32 flow from ``a`` to ``b`` (``a(x) ~ b(x + flow(x))``).
        mask: ``(H, W)`` bool, ``True`` where ``b`` warped by ``flow`` should reproduce ``a``.
        source: the clip's name (file or folder name), for the spec's record.
        exact: whether the flow is ground truth (``.flo`` files) rather than estimated.
    """

    a: np.ndarray
    b: np.ndarray
    flow: np.ndarray
    mask: np.ndarray
    source: str
    exact: bool


def pairs_from_frames(frames: Sequence[np.ndarray], source: str, *, stride: int = 1,
                      flows: Sequence[np.ndarray] | None = None,
                      photometric_threshold: float = 0.08) -> list[FlowPair]:
    """Pairs ``(t, t + stride)`` of ``frames`` with their flows and masks.

    Args:
        frames: RGB uint8 frames of one clip, all the same size.
        source: the clip's name.
        stride: frame distance of a pair (2: larger motion).
        flows: exact flows ``t -> t + 1`` (only with ``stride`` 1); ``None``: DIS flow, both ways.
        photometric_threshold: estimated flow only: pixels whose warped brightness differs by more
            (mean absolute, [0, 1] units) are masked out (lighting changes, flow errors).
    """
    from ..temporal.flow import FlowEstimator
    from ..temporal.warp import fb_consistency_mask, inside_mask, photometric_mask

    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if flows is not None and stride != 1:
        raise ValueError("exact flows are between consecutive frames: use stride 1")
    if flows is not None and len(flows) != len(frames) - 1:
        raise ValueError(f"{source}: {len(frames)} frames need {len(frames) - 1} flows, got {len(flows)}")
    est = FlowEstimator("dis", "medium") if flows is None else None
    out: list[FlowPair] = []
    for t in range(len(frames) - stride):
        a, b = frames[t], frames[t + stride]
        if flows is not None:
            fw = np.asarray(flows[t], np.float32)
            if fw.shape[:2] != a.shape[:2]:
                raise ValueError(f"{source}: flow {t} is {fw.shape[1]}x{fw.shape[0]}, "
                                 f"frames are {a.shape[1]}x{a.shape[0]}")
            mask = inside_mask(fw)
        else:
            assert est is not None
            fw, bw = est(a, b), est(b, a)
            mask = fb_consistency_mask(fw, bw) & photometric_mask(a, b, fw, threshold=photometric_threshold)
        if not mask.any():
            log.warning("%s: pair %d->%d has no valid pixel; skipped", source, t, t + stride)
            continue
        out.append(FlowPair(a, b, fw, mask, source, flows is not None))
    return out


def _exact_flow_folder(folder: Path) -> tuple[list[Path], list[Path]] | None:
    """The frames and ``.flo`` files of a folder written by ``make_synthetic_flow_seq.py``, or None."""
    from ..io.images import list_images

    flos = sorted((int(m.group(1)), p) for p in folder.glob("flow_*.flo") if (m := _FLO.search(p.name)))
    if not flos:
        return None
    frames = list_images(folder)
    if len(frames) != len(flos) + 1 or any(i != k for k, (i, _) in enumerate(flos)):
        raise ValueError(f"{folder}: {len(frames)} frames and flows {[i for i, _ in flos]}: expected "
                         f"flow_{{t}}_{{t+1}}.flo for t = 0..{len(frames) - 2}")
    return frames, [p for _, p in flos]


def load_flow_pairs(paths: Sequence[str | os.PathLike[str]], *, max_frames: int = 48,
                    max_size: tuple[int, int] = (320, 240), stride: int = 1) -> list[FlowPair]:
    """Frame pairs with flow from video files and folders (see the module docstring).

    Args:
        paths: video files, folders of frames, folders of frames with exact ``.flo`` flows.
        max_frames: frames read from the start of each clip.
        max_size: frames are downscaled (never up) to fit ``(width, height)``; exact flows with them.
        stride: frame distance of a pair for clips without exact flow.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: no pair could be built.
    """
    from ..io.images import read_image
    from ..temporal.evaluate import load_frames, resize_flow
    from ..temporal.flow import read_flo

    pairs: list[FlowPair] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"temporal video source not found: {p}")
        exact = _exact_flow_folder(p) if p.is_dir() else None
        if exact is not None:
            files, flo_files = exact
            files, flo_files = files[:max_frames], flo_files[: max(0, max_frames - 1)]
            frames = load_frames([read_image(f) for f in files], max_size=max_size)
            size = (frames[0].shape[1], frames[0].shape[0])
            flows = [resize_flow(read_flo(f), size) for f in flo_files]
            got = pairs_from_frames(frames, p.name, flows=flows)
        else:
            frames = load_frames(p, max_frames=max_frames, max_size=max_size)
            got = pairs_from_frames(frames, p.name, stride=stride)
        if got:
            cover = float(np.mean([q.mask.mean() for q in got]))
            motion = float(np.mean([np.linalg.norm(q.flow, axis=-1).mean() for q in got]))
            log.info("temporal video: %s: %d pairs (%s flow), %.0f%% of pixels valid, mean motion %.1f px",
                     p.name, len(got), "exact" if got[0].exact else "DIS", 100 * cover, motion)
        pairs.extend(got)
    if not pairs:
        raise ValueError(f"no frame pair with a valid pixel in {[str(p) for p in paths]}")
    return pairs


class FlowPairSampler:
    """Random training crops of frame pairs: the same window of ``a``, ``b``, the flow and the mask.

    A pixel stays valid only where its flow target lies inside the crop too. Half the crops are
    mirrored (the flow's x component changes sign with them).

    Args:
        pairs: from :func:`load_flow_pairs`.
        size: square crop side. A pair whose frames are smaller than that (a wide clip's height,
            say) is upscaled until its shorter side is the crop's, its flow with it, so every crop
            of a batch has the same size whatever the clips.
        generator: the RNG of the draws.
    """

    def __init__(self, pairs: Sequence[FlowPair], size: int, generator: torch.Generator | None = None) -> None:
        if not pairs:
            raise ValueError("no frame pairs to sample")
        self.pairs = list(pairs)
        self.size = size
        self.generator = generator
        self._scaled: dict[tuple[int, int], FlowPair] = {}

    def _int(self, high: int) -> int:
        return int(torch.randint(0, max(1, high), (1,), generator=self.generator))

    def _at_least(self, i: int, side: int) -> FlowPair:
        """Pair ``i``, upscaled (once, then cached) where a side is under ``side``."""
        q = self.pairs[i]
        h, w = q.a.shape[:2]
        if min(h, w) >= side:
            return q
        if (i, side) not in self._scaled:
            import cv2

            from ..temporal.evaluate import resize_flow

            s = side / min(h, w)
            nw, nh = max(side, round(w * s)), max(side, round(h * s))
            flow = resize_flow(q.flow, (nw, nh))
            mask = cv2.resize(q.mask.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST) > 0
            self._scaled[(i, side)] = FlowPair(
                cv2.resize(q.a, (nw, nh), interpolation=cv2.INTER_LINEAR),
                cv2.resize(q.b, (nw, nh), interpolation=cv2.INTER_LINEAR), flow, mask, q.source, q.exact)
            log.debug("temporal video: %s pair upscaled %dx%d -> %dx%d for %d px crops", q.source, w, h,
                      nw, nh, side)
        return self._scaled[(i, side)]

    def batch(self, n: int, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a, b, flow, mask)``: ``(n, 3, S, S)`` in [0, 1] twice, ``(n, 2, S, S)``, ``(n, 1, S, S)``, with
        ``S`` = ``size`` (default: the sampler's)."""
        side = size or self.size
        a_s, b_s, f_s, m_s = [], [], [], []
        for _ in range(n):
            q = self._at_least(self._int(len(self.pairs)), side)
            h, w = q.a.shape[:2]
            ch, cw = side, side
            y, x = self._int(h - ch + 1), self._int(w - cw + 1)
            win = (slice(y, y + ch), slice(x, x + cw))
            a, b, f, m = q.a[win], q.b[win], q.flow[win].copy(), q.mask[win]
            # the target of a cropped pixel must lie inside the crop as well
            tx = np.arange(cw, dtype=np.float32)[None, :] + f[..., 0]
            ty = np.arange(ch, dtype=np.float32)[:, None] + f[..., 1]
            m = m & (tx >= 0) & (tx <= cw - 1) & (ty >= 0) & (ty <= ch - 1)
            if self._int(2):
                a, b, f, m = a[:, ::-1], b[:, ::-1], f[:, ::-1].copy(), m[:, ::-1]
                f[..., 0] *= -1.0
            a_s.append(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1))
            b_s.append(torch.from_numpy(np.ascontiguousarray(b)).permute(2, 0, 1))
            f_s.append(torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1))
            m_s.append(torch.from_numpy(np.ascontiguousarray(m))[None])
        return (torch.stack(a_s).float() / 255.0, torch.stack(b_s).float() / 255.0, torch.stack(f_s),
                torch.stack(m_s).float())


def flow_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``img`` at ``x + flow(x)`` (bilinear, border replicated): :func:`rtstyle.temporal.backward_warp`
    in torch, differentiable.

    Shape:
        img ``(N, C, H, W)``, flow ``(N, 2, H, W)`` in pixels -> ``(N, C, H, W)``.
    """
    if img.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[-2:] != img.shape[-2:] \
            or flow.shape[0] != img.shape[0]:
        raise ValueError(f"flow_warp: image {tuple(img.shape)} and flow {tuple(flow.shape)} do not match")
    n, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=flow.device),
                            torch.arange(w, dtype=torch.float32, device=flow.device), indexing="ij")
    px = xs + flow[:, 0].float()
    py = ys + flow[:, 1].float()
    # pixel centres to grid_sample's normalised coordinates (align_corners=True: -1 = pixel 0, 1 = last)
    grid = torch.stack([2.0 * px / max(w - 1, 1) - 1.0, 2.0 * py / max(h - 1, 1) - 1.0], dim=-1)
    return F.grid_sample(img.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


def masked_warp_error(ya: torch.Tensor, yb: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean over mask of (ya - warp(yb, flow))**2``, per channel: the warping error of two outputs
    (or two feature maps) of consecutive frames. Shapes as :func:`video_temporal_loss`'s, at any
    resolution ``flow`` and ``mask`` share with ``ya``."""
    ya, yb = ya.float(), yb.float()
    pred = flow_warp(yb, flow.to(yb.device))
    m = mask.to(ya.device)
    denom = m.sum() * ya.shape[1]
    if denom.item() == 0:
        return ya.sum() * 0.0
    return ((ya - pred) ** 2 * m).sum() / denom


def video_temporal_loss(net_fn: Callable[[torch.Tensor], torch.Tensor], a: torch.Tensor, b: torch.Tensor,
                        flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean over mask of (N(a) - warp(N(b), flow))**2`` (gradients through both frames).

    Args:
        net_fn: the net on images in [0, 1], returning its output in [0, 1].
        a, b: ``(N, 3, H, W)`` consecutive frames in [0, 1].
        flow: ``(N, 2, H, W)`` flow from ``a`` to ``b``.
        mask: ``(N, 1, H, W)``, 1 where the flow holds.

    Returns:
        A scalar fp32 tensor: 0 for a net whose output moves with the scene.
    """
    return masked_warp_error(net_fn(a), net_fn(b), flow, mask)


def downsample_flow(flow: torch.Tensor, mask: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow and mask for feature maps ``factor`` times smaller than the frames (a net's encoder output).

    Each feature cell covers ``factor x factor`` pixels: its flow is their mean flow in feature pixels
    (divided by ``factor``), and it counts only where the flow holds for all of them (a min-pool of
    the mask), so an occlusion edge never enters the loss through a coarse cell.

    Shape:
        flow ``(N, 2, H, W)``, mask ``(N, 1, H, W)`` with H and W multiples of ``factor`` ->
        ``(N, 2, H/factor, W/factor)``, ``(N, 1, H/factor, W/factor)``.
    """
    h, w = flow.shape[-2:]
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"downsample_flow: {h}x{w} frames are not a multiple of the factor {factor}")
    if factor == 1:
        return flow.float(), mask.float()
    return F.avg_pool2d(flow.float(), factor) / factor, -F.max_pool2d(-mask.float(), factor)


def video_temporal_losses(split_fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], a: torch.Tensor,
                          b: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The output-level loss of :func:`video_temporal_loss` and ReCoNet's feature-level one, from one
    pass of the net per frame.

    The feature-level loss (Gao et al., ReCoNet, 2018) asks the same of the encoder's features: the
    features of ``a`` equal those of ``b`` warped by the flow, at the features' resolution
    (:func:`downsample_flow`). It constrains what the net sees, leaving the decoder free to draw
    strokes, where the output-level loss constrains the strokes themselves.

    Args:
        split_fn: the net on images in [0, 1] -> ``(features (N, C, H/k, W/k), output in [0, 1])``.
        a, b, flow, mask: as :func:`video_temporal_loss`.

    Returns:
        ``(output-level loss, feature-level loss)``, scalar fp32 tensors.
    """
    fa, ya = split_fn(a)
    fb, yb = split_fn(b)
    k = a.shape[-1] // fa.shape[-1]
    if k < 1 or fa.shape[-1] * k != a.shape[-1] or fa.shape[-2] * k != a.shape[-2]:
        raise ValueError(f"features {tuple(fa.shape)} are not the frames {tuple(a.shape)} downscaled by a whole factor")
    flow_s, mask_s = downsample_flow(flow.to(fa.device), mask.to(fa.device), k)
    return masked_warp_error(ya, yb, flow, mask), masked_warp_error(fa, fb, flow_s, mask_s)

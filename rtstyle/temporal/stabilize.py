"""Flow-guided stabilisation: a temporal filter that works after any per-frame style model.

Per frame, with the previous input ``s_{t-1}`` and previous *output* ``o_{t-1}`` kept:

1. estimate optical flow from the current input to the previous one (downscaled grey frames);
2. warp ``o_{t-1}`` onto the current frame (what the output should look like if it moved with
   the scene);
3. find where that prediction can be trusted: a forward-backward flow check (``"file"``
   preset) or a photometric check of the warped previous input against the current input
   (``"live"``: one flow instead of two); with ``gate`` (the ``"file"`` presets) this mask is
   multiplied by a confidence map (:meth:`FlowStabilizer.confidence`: forward-backward residual,
   brightness change, motion magnitude, and the disagreement of the warped previous output with
   the current stylisation beyond what the flow's error explains), so texture is never dragged
   across motion the flow got wrong; then eroded and feathered so seams do not show;
4. blend: ``o_t = m * (s * warped + (1 - s) * y_t) + (1 - m) * y_t`` with the model's output
   ``y_t`` and strength ``s``;
5. restore the texture energy the blend averaged away (:func:`restore_detail`), which would
   otherwise wash the brush strokes out and raise the style loss.

Because ``o_{t-1}`` is itself blended, this is a recursive (exponential) filter along motion
trajectories: static and tracked regions settle, occluded/new regions take the fresh
stylisation at once. Optionally the per-channel mean/std of ``y_t``, whose frame-to-frame
jumps read as global flicker, are smoothed with an EMA first. A scene cut (see
:mod:`rtstyle.temporal.scenecut`) or a frame-size change resets the state, so the first frame of
a shot is exactly the model's output.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from .flow import FlowEstimator
from .scenecut import SceneCutDetector
from .warp import backward_warp, fb_residual, inside_mask, photometric_error

__all__ = ["PRESETS", "FlowStabilizer", "StabilizerConfig", "make_temporal", "restore_detail", "smooth"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StabilizerConfig:
    """Settings of :class:`FlowStabilizer` (see :data:`PRESETS`).

    Attributes:
        flow_method: ``"dis"`` or ``"farneback"``.
        flow_preset: DIS preset (``"ultrafast"``, ``"fast"``, ``"medium"``).
        flow_max_side: flow is estimated on frames downscaled to this longer side.
        check: ``"fb"`` (forward-backward, two flows) or ``"photometric"`` (one flow).
        photometric_threshold: mean absolute input difference (in [0, 1]) still accepted by the
            photometric check.
        erode: pixels the reliable region shrinks by (flow is least accurate next to occlusions).
        feather: Gaussian sigma in pixels softening the mask edge (0: hard mask).
        interpolation: ``"linear"`` or ``"cubic"`` resampling of the previous output (cubic blurs
            less when the output is warped over and over).
        color_ema: EMA weight of the previous colour statistics (0 disables colour smoothing).
        detail_sigma: scale (Gaussian sigma, pixels) separating texture from structure for the
            detail restoration (0 disables it); see :func:`restore_detail`.
        detail_max_gain: upper bound of the texture gain.
        scene_cuts: reset the state at detected scene cuts.
        carry_sigma: 0: blend whole frames with the strength ``s`` (``o = y + s*m*(warped - y)``).
            ``> 0``: split the difference at this Gaussian scale and blend two bands: the
            *structure* (colour, shading) with ``s`` and the *texture* (brush strokes, where a
            feed-forward model's flicker lives) with ``texture_strength``. Carrying the strokes
            along the flow almost unchanged, instead of averaging two misaligned stroke patterns,
            keeps the style (see :data:`PRESETS`).
        texture_strength: blend weight of the texture band when ``carry_sigma > 0`` (``None``:
            the strength ``s``).
        gate: confidence-gated carrying (see :meth:`FlowStabilizer.confidence`): the carried
            frame's weight falls to 0 where the flow cannot be trusted or where the warped previous
            output disagrees with the current stylisation by more than the flow's error explains.
        gate_residual: forward-backward residual (pixels) at which the confidence reaches 0 (it
            starts falling at half of it); needs ``check="fb"``.
        gate_brightness: brightness change of the warped previous input against the current input
            (mean absolute difference, [0, 1] units) at which the confidence reaches 0.
        gate_motion: motion (pixels per frame, as a fraction of the frame's longer side) at which the
            confidence reaches 0: motion blur and large displacements are where flow fails.
        gate_disagreement: how many times the frame's typical disagreement (the model's own flicker,
            median over trusted pixels) plus the misalignment the residual explains
            (``|grad| * (residual + 0.5 px)``) the local disagreement may reach before the
            confidence starts to fall; it is 0 at twice that. 0 disables this cue.
        gate_sigma: Gaussian scale (pixels) of the local disagreement and gradient measures.
    """

    flow_method: str = "dis"
    flow_preset: str = "medium"
    flow_max_side: int | None = 640
    check: str = "fb"
    photometric_threshold: float = 0.08
    erode: int = 1
    feather: float = 1.0
    interpolation: str = "cubic"
    color_ema: float = 0.0
    detail_sigma: float = 4.0
    detail_max_gain: float = 2.0
    scene_cuts: bool = True
    carry_sigma: float = 0.0
    texture_strength: float | None = None
    gate: bool = False
    gate_residual: float = 1.5
    gate_brightness: float = 0.1
    gate_motion: float = 0.05
    gate_disagreement: float = 4.0
    gate_sigma: float = 2.0


#: ``"file"``: quality (DIS medium on <= 640 px, forward-backward check, two-band blend: the strokes
#: carried along the flow with weight 0.99, colour/shading blended with the user's strength,
#: Lanczos resampling). ``"live"``: cheap (DIS ultrafast on <= 320 px, one flow, photometric check,
#: hard mask, whole-frame blend with bicubic resampling).
#:
#: Why the two-band blend for files: blending whole frames averages two stroke patterns that do not
#: line up (that mismatch *is* the flicker) and washes the strokes out; the two-band blend keeps
#: the flicker reduction with far less style loss, and Lanczos (repeated resampling blurs less)
#: keeps more of the style than bicubic. The same in the live preset made things worse: its cheap
#: flow is wrong often enough that carrying strokes along it raised the warping error, so live keeps
#: the whole-frame blend. 320 rather than 256 px for the live flow: a clearly lower warping error
#: on Sintel for a negligible cost. (Figures with their setup: docs/benchmarks.md, "Figures behind
#: design choices".)
#:
#: ``"file"`` is confidence-gated (``gate=True``): with a full-width net on fast motion the ungated
#: carry dragged strokes across the motion (streaks); the gate's thresholds were chosen on the
#: fastest clips so that the warping error stays <= 0.5x per-frame (docs/temporal.md).
#: ``"file_light"``: for nets that are fairly stable by themselves (the lite nets): one flow (DIS
#: fast, <= 320 px) with the photometric check instead of two DIS-medium flows, otherwise as
#: ``"file"`` - a fraction of its cost (docs/temporal.md). Without detail restoration or with bicubic
#: resampling the lite nets' style loss rose by ~20%.
PRESETS: dict[str, StabilizerConfig] = {
    "file": StabilizerConfig(carry_sigma=2.0, texture_strength=0.99, interpolation="lanczos", detail_sigma=2.0,
                             detail_max_gain=3.0, gate=True),
    "live": StabilizerConfig(flow_preset="ultrafast", flow_max_side=320, check="photometric", erode=0, feather=0.0),
    "file_light": StabilizerConfig(flow_preset="fast", flow_max_side=320, check="photometric", carry_sigma=2.0,
                                   texture_strength=0.99, interpolation="lanczos", detail_sigma=2.0,
                                   detail_max_gain=3.0, gate=True),
}


def smooth(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of scale ``sigma`` pixels; from ``sigma >= 3`` computed at a reduced
    resolution (area-downsampled by 2 or 4, blurred, linearly upsampled): the same smooth result
    for these wide kernels at a fraction of the cost (it halved the live preset's blending time;
    figures: docs/benchmarks.md, "Figures behind design choices")."""
    import cv2

    if sigma < 3:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    f = 2 if sigma < 6 else 4
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    # the area downsampling already averaged over ~f/2 pixels: blur the rest
    small = cv2.GaussianBlur(small, (0, 0), max(0.5, (sigma * sigma - (f * f) / 4.0) ** 0.5 / f))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def restore_detail(reference: np.ndarray, blended: np.ndarray, sigma: float, max_gain: float = 2.0) -> np.ndarray:
    """Give ``blended`` back the local texture energy of ``reference``.

    Blending the warped previous output with a new stylisation averages two textures that do not
    line up exactly (the flicker being removed *is* that mismatch), which washes the strokes out:
    at strength 0.8 the style loss rose markedly on real clips (docs/benchmarks.md). Here each image is split into
    structure (Gaussian low-pass, ``sigma``) and texture (the rest); the texture of ``blended`` is
    scaled per pixel by ``sqrt(E_ref / E_blend)`` (local texture energies, Gaussian window
    ``2 * sigma``, clamped to ``[1, max_gain]``). Where the two inputs agreed (static, consistent
    regions) the gain is ~1, so the recursion cannot build up contrast; where they disagreed the
    energy returns to that of one stylised frame, while the texture pattern itself stays the
    temporally stable, motion-compensated one.

    Args:
        reference: the model's output for this frame, float32 ``(H, W, 3)``.
        blended: the motion-compensated blend, float32 ``(H, W, 3)``.
        sigma: structure/texture split in pixels.
        max_gain: largest texture amplification.

    Returns:
        float32 ``(H, W, 3)``.
    """
    import cv2

    low_b = smooth(blended, sigma)
    tex_b = blended - low_b
    tex_r = reference - smooth(reference, sigma)
    ones = np.ones((1, 3), np.float32)
    # channel sums of the squared textures (cv2.transform: one pass), smoothed at 2 sigma
    e_r = smooth(cv2.transform(cv2.multiply(tex_r, tex_r), ones), 2 * sigma)
    e_b = smooth(cv2.transform(cv2.multiply(tex_b, tex_b), ones), 2 * sigma)
    # +1 (in squared 0..255 units) keeps flat regions from dividing noise by noise.
    e_r += 1.0
    e_b += 1.0
    gain = cv2.sqrt(cv2.divide(e_r, e_b))
    np.clip(gain, 1.0, max_gain, out=gain)
    tex_b *= gain[..., None]
    tex_b += low_b
    return tex_b


def _blend(y: np.ndarray, warped: np.ndarray, m: np.ndarray, strength: float, cfg: StabilizerConfig) -> np.ndarray:
    """``y + s*m*(warped - y)``, or with ``carry_sigma`` the two-band blend (structure with ``s``,
    texture with ``texture_strength``). In-place operations and one blur (blurring is linear:
    ``G(warped) - G(y) = G(warped - y)``)."""
    diff = warped - y  # float32 (H, W, 3)
    if cfg.carry_sigma > 0:
        tex = strength if cfg.texture_strength is None else cfg.texture_strength
        low = smooth(diff, cfg.carry_sigma)
        # y + tex*m*(diff - low) + s*m*low = y + tex*m*diff + (s - tex)*m*low
        low *= ((strength - tex) * m)[..., None]
        diff *= (tex * m)[..., None]
        diff += low
    else:
        diff *= (strength * m)[..., None]
    diff += y
    return diff


@dataclass
class _State:
    source: np.ndarray  # previous input frame, uint8
    output: np.ndarray  # previous output frame, float32 in [0, 255]
    mean: np.ndarray | None = None  # EMA colour statistics of the model's outputs
    std: np.ndarray | None = None


class FlowStabilizer:
    """Temporal filter (:class:`rtstyle.stylizer.TemporalFilter`) reducing flicker of any model.

    Args:
        strength: ``s`` in [0, 0.99]: weight of the motion-compensated previous output where it is
            reliable. 0 passes frames through unchanged.
        config: a :class:`StabilizerConfig`, or the name of a preset (``"file"``, ``"live"``).

    Attributes:
        timings: seconds spent in the last :meth:`process` call, by step (``flow``, ``warp``,
            ``mask``, ``blend``, ``total``).
        resets: how many times the state was dropped (cuts, size changes, :meth:`reset`).
        carried: mean weight of the carried-frame mask in the last :meth:`process` call (0: the
            frame was the model's output; 1: carried everywhere the strength allows).
    """

    def __init__(self, strength: float = 0.8, config: StabilizerConfig | str = "file") -> None:
        if not 0.0 <= float(strength) <= 0.99:
            raise ValueError(f"temporal strength must be within [0, 0.99], got {strength}")
        if isinstance(config, str):
            if config not in PRESETS:
                raise ValueError(f"unknown temporal preset {config!r}; known: {', '.join(PRESETS)}")
            config = PRESETS[config]
        if config.check not in ("fb", "photometric"):
            raise ValueError(f"check must be 'fb' or 'photometric', got {config.check!r}")
        if config.interpolation not in ("linear", "cubic", "lanczos", "nearest"):
            raise ValueError(f"interpolation must be 'linear', 'cubic', 'lanczos' or 'nearest', "
                             f"got {config.interpolation!r}")
        ts = config.texture_strength
        if config.carry_sigma < 0 or (ts is not None and not 0.0 <= ts <= 0.999):
            raise ValueError(f"carry_sigma must be >= 0 and texture_strength within [0, 0.999], got "
                             f"{config.carry_sigma}, {ts}")
        if config.detail_sigma < 0 or config.detail_max_gain < 1.0:
            raise ValueError(f"detail_sigma must be >= 0 and detail_max_gain >= 1, got "
                             f"{config.detail_sigma}, {config.detail_max_gain}")
        if not 0.0 <= config.color_ema < 1.0:
            raise ValueError(f"color_ema must be within [0, 1), got {config.color_ema}")
        self.strength = float(strength)
        self.config = config
        self._flow = FlowEstimator(config.flow_method, config.flow_preset, config.flow_max_side)
        self._cuts = SceneCutDetector() if config.scene_cuts else None
        self._state: _State | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self.resets = 0
        self.carried = 0.0
        self.timings: dict[str, float] = {}

    def reset(self) -> None:
        """Forget the carried frames (new style, seek, scene cut). Safe from any thread."""
        with self._lock:
            self._state = None
            self._generation += 1
            if self._cuts is not None:
                self._cuts.reset()
        self.resets += 1

    def _color_stats(
        self, y: np.ndarray, state: _State | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        a = self.config.color_ema
        if a <= 0.0:
            return y, None, None
        mean = y.reshape(-1, 3).mean(0)
        std = y.reshape(-1, 3).std(0) + 1e-3
        if state is None or state.mean is None or state.std is None:
            return y, mean, std
        m = a * state.mean + (1 - a) * mean
        s = a * state.std + (1 - a) * std
        return (y - mean) * (s / std) + m, m, s

    def _mask(self, source: np.ndarray, prev_source: np.ndarray, flow_bw: np.ndarray,
              flow_fw: np.ndarray | None, warped: np.ndarray, y: np.ndarray) -> np.ndarray:
        import cv2

        cfg = self.config
        r2: np.ndarray | None = None
        photo: np.ndarray | None = None
        inside = inside_mask(flow_bw)
        if flow_fw is not None:
            r2, scale2 = fb_residual(flow_bw, flow_fw)
            # the forward-backward check of :func:`fb_consistency_mask` (alpha 0.01, beta 0.5)
            ok = (r2 < 0.01 * scale2 + 0.5) & inside
        else:
            photo = photometric_error(source, prev_source, flow_bw)
            ok = (photo < cfg.photometric_threshold) & inside
        m = ok.astype(np.float32)
        if cfg.gate:
            m *= self.confidence(source, prev_source, flow_bw, warped, y, r2=r2, photo=photo)
        if cfg.erode > 0:
            k = 2 * cfg.erode + 1
            m = cv2.erode(m, np.ones((k, k), np.uint8))
        if cfg.feather > 0:
            m = cv2.GaussianBlur(m, (0, 0), cfg.feather)
        return m

    def confidence(
        self,
        source: np.ndarray,
        prev_source: np.ndarray,
        flow_bw: np.ndarray,
        warped: np.ndarray,
        y: np.ndarray,
        *,
        r2: np.ndarray | None = None,
        photo: np.ndarray | None = None,
    ) -> np.ndarray:
        """How far the warped previous output may be trusted at each pixel, in [0, 1].

        The product of four cues, each a ramp from 1 (at half its threshold) to 0 (at it):

        * the forward-backward residual of the flow (``gate_residual`` pixels; given as ``r2``);
        * the brightness change between the warped previous input and the current input
          (``gate_brightness``), which no motion explains (lighting, blur, wrong flow);
        * the motion magnitude (``gate_motion`` of the longer side): fast motion blurs the frames
          and breaks the flow;
        * the disagreement of the warped previous output with the current stylisation ``y``
          beyond what the flow's error allows: the model's own flicker (the frame's median
          disagreement over pixels the other cues trust) plus ``|grad warped| * (r + 0.5)``,
          the change a misalignment by the residual ``r`` produces. Texture dragged across motion
          or accumulated by the recursion disagrees far more than that and is dropped.

        Args:
            source: current input, uint8 ``(H, W, 3)``.
            prev_source: previous input, same shape.
            flow_bw: flow from ``source`` to ``prev_source``.
            warped: the previous output warped by ``flow_bw``, float32 in [0, 255].
            y: the model's output for ``source``, float32 in [0, 255].
            r2: squared forward-backward residual (:func:`~rtstyle.temporal.warp.fb_residual`);
                ``None``: that cue is skipped.
            photo: :func:`~rtstyle.temporal.warp.photometric_error` if already computed.

        Returns:
            float32 ``(H, W)``.
        """
        import cv2

        cfg = self.config
        h, w = source.shape[:2]

        def ramp(x: np.ndarray, limit: float) -> np.ndarray:
            # 1 up to limit / 2, then linearly down to 0 at limit (in place on x)
            x *= -2.0 / limit
            x += 2.0
            return np.clip(x, 0.0, 1.0, out=x)

        if photo is None:
            photo = photometric_error(source, prev_source, flow_bw)
        c = ramp(photo.copy(), cfg.gate_brightness)
        u, v = flow_bw[..., 0], flow_bw[..., 1]
        c *= ramp(cv2.sqrt(u * u + v * v), cfg.gate_motion * max(h, w))
        r = None
        if r2 is not None:
            r = cv2.sqrt(r2)
            c *= ramp(r.copy(), cfg.gate_residual)
        if cfg.gate_disagreement > 0:
            third = np.full((1, 3), 1.0 / 3.0, np.float32)
            d = smooth(cv2.transform(cv2.absdiff(warped, y), third), cfg.gate_sigma)
            grey = cv2.transform(warped, third)
            gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
            gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
            grad = smooth(cv2.sqrt(gx * gx + gy * gy), cfg.gate_sigma)
            trusted = d[::4, ::4][c[::4, ::4] > 0.5]
            flicker = float(np.median(trusted)) if trusted.size else float(np.median(d))
            allowed = grad * ((r if r is not None else 0.0) + 0.5)
            allowed += max(flicker, 1.0)
            allowed *= cfg.gate_disagreement
            d /= allowed
            c *= ramp(d, 2.0)
        return c

    def process(self, source: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """Stabilise one frame.

        Args:
            source: the input frame, RGB uint8 ``(H, W, 3)``.
            stylized: the model's output for it, RGB uint8, same size.

        Returns:
            The output frame, RGB uint8 ``(H, W, 3)``.
        """
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise ValueError(f"source must be uint8 (H, W, 3) RGB, got {source.dtype} {source.shape}")
        if stylized.shape != source.shape or stylized.dtype != np.uint8:
            raise ValueError(f"stylized must be uint8 {source.shape} like the source, "
                             f"got {stylized.dtype} {stylized.shape}")
        if self.strength <= 0.0:
            return stylized
        t0 = time.perf_counter()
        with self._lock:
            state, gen = self._state, self._generation
        cut = self._cuts.update(source) if self._cuts is not None else False
        if state is not None and (cut or state.source.shape != source.shape):
            state = None
            self.resets += 1
        y = stylized.astype(np.float32)
        y, mean, std = self._color_stats(y, state)
        t1 = t2 = t3 = time.perf_counter()
        if state is None:
            out = y
            self.carried = 0.0
        else:
            flow_bw = self._flow(source, state.source)  # current -> previous
            flow_fw = self._flow(state.source, source) if self.config.check == "fb" else None
            t1 = time.perf_counter()
            warped = backward_warp(state.output, flow_bw, interpolation=self.config.interpolation)
            t2 = time.perf_counter()
            m = self._mask(source, state.source, flow_bw, flow_fw, warped, y)
            self.carried = float(m.mean())
            t3 = time.perf_counter()
            out = _blend(y, warped, m, self.strength, self.config)
            if self.config.detail_sigma > 0:
                out = restore_detail(y, out, self.config.detail_sigma, self.config.detail_max_gain)
        # The first frame of a shot is the model's output, bit for bit.
        result = stylized if state is None else np.clip(out + 0.5, 0, 255).astype(np.uint8)
        with self._lock:
            if gen == self._generation:  # a reset() meanwhile wins over this frame's state
                # Keep the float output: re-quantising each frame would add drift to the recursion.
                self._state = _State(source.copy(), np.clip(out, 0, 255).astype(np.float32), mean, std)
        t4 = time.perf_counter()
        self.timings = {"flow": t1 - t0, "warp": t2 - t1, "mask": t3 - t2, "blend": t4 - t3, "total": t4 - t0}
        return result


def make_temporal(strength: float, preset: str = "file", **overrides: object) -> FlowStabilizer:
    """A :class:`FlowStabilizer` for the user's ``--temporal`` strength.

    Args:
        strength: 0 (off) to 0.99; 0.7-0.9 removes most flicker.
        preset: ``"file"`` (quality, for offline rendering) or ``"live"`` (cheap, for webcams).
        **overrides: fields of :class:`StabilizerConfig` to change from the preset
            (e.g. ``color_ema=0.8``).

    Returns:
        A ready :class:`FlowStabilizer`.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown temporal preset {preset!r}; known: {', '.join(PRESETS)}")
    cfg = PRESETS[preset]
    if overrides:
        known = set(StabilizerConfig.__dataclass_fields__)
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown stabiliser settings {sorted(unknown)}; known: {sorted(known)}")
        cfg = replace(cfg, **overrides)  # type: ignore[arg-type]
    return FlowStabilizer(strength, cfg)

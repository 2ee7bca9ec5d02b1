"""The frame contract (rtstyle.contract) and the staged path run on the CPU stand-in scheduler.

The staged (double-buffered) path is the CUDA path's code with :class:`DeferredScheduler` in place
of CUDA streams and events: work runs only when an event needing it is waited on, so the
parity tests below also check the path's ordering.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from rtstyle import contract
from rtstyle.frame import Frame
from rtstyle.gpu import DeferredScheduler, StagedStylizer
from rtstyle.models import ModelSpec, create_model, family_examples, get_spec
from rtstyle.models.johnson import TransformerNet
from rtstyle.stylizer import Stylizer

SAMPLE = Path(__file__).resolve().parents[1] / "rtstyle" / "assets" / "sample.mp4"


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    """Eight frames of the bundled sample clip (every 10th), RGB uint8 at 128x72."""
    import cv2

    cap = cv2.VideoCapture(str(SAMPLE))
    out: list[np.ndarray] = []
    i = 0
    while len(out) < 8:
        ok, bgr = cap.read()
        assert ok, "the bundled sample clip could not be read"
        if i % 10 == 0:
            small = cv2.resize(bgr, (128, 72), interpolation=cv2.INTER_AREA)
            out.append(np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)))
        i += 1
    cap.release()
    return out


def _tiny(seed: int, spec: ModelSpec | None = None) -> TransformerNet:
    """A small random Johnson net whose output spreads over the spec's output range."""
    spec = spec or ModelSpec(name=f"johnson.tiny{seed}", family="johnson")
    torch.manual_seed(seed)
    net = TransformerNet(width=4, n_res=1).eval()
    # random weights give a near-constant image: aim the output at 128 +- 60 (in 0..255 terms)
    lo, hi = spec.output_range
    gain, centre = 60.0 * (hi - lo) / 255.0, lo + 128.0 * (hi - lo) / 255.0
    if spec.mean is not None and spec.extra.get("output_normalised"):
        m, sd = float(np.mean(spec.mean)), float(np.mean(spec.std or (1.0,)))
        gain, centre = gain / sd, (centre - m) / sd
    with torch.no_grad():
        net.deconv3.conv2d.weight.mul_(gain)
        bias = net.deconv3.conv2d.bias
        assert bias is not None
        bias.fill_(centre)
    net.spec = spec
    return net


def _st(model: Any, **kw: Any) -> Stylizer:
    """A Stylizer at fp32 (these tests are about the frame path, not the precision choice)."""
    return Stylizer(model, precision="fp32", **kw)


def _frames(images: list[np.ndarray]) -> list[Frame]:
    return [Frame(img, i) for i, img in enumerate(images)]


def _staged(st: Stylizer, frames: list[Frame], depth: int = 2) -> tuple[list[Frame], DeferredScheduler]:
    sched = DeferredScheduler()
    staged = StagedStylizer(st, depth=depth, scheduler=sched)
    out = [r for f in frames if (r := staged.push(f)) is not None] + staged.flush()
    return out, sched


def _same(a: np.ndarray, b: np.ndarray, tol: int = 0) -> bool:
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= tol


# --------------------------------------------------------------------------- the contract itself


def _reference(net: nn.Module, spec: ModelSpec, img: np.ndarray) -> np.ndarray:
    """The contract computed by hand in numpy around a direct model call (the oracle)."""
    x: np.ndarray = img.astype(np.float32)
    if spec.color_order == "BGR":
        x = x[..., ::-1]
    lo, hi = spec.input_range
    x = x * ((hi - lo) / 255.0) + lo
    if spec.mean is not None:
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    h, w = img.shape[:2]
    m = spec.size_multiple
    x = np.pad(x, ((0, (-h) % m), (0, (-w) % m), (0, 0)), mode="reflect")
    with torch.no_grad():
        y = net(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    y = y[:h, :w]
    if spec.mean is not None and spec.extra.get("output_normalised"):
        y = y * np.asarray(spec.std, np.float32) + np.asarray(spec.mean, np.float32)
    lo, hi = spec.output_range
    y = (y - lo) * (255.0 / (hi - lo))
    if spec.color_order == "BGR":
        y = y[..., ::-1]
    return (np.clip(y, 0, 255) + 0.5).astype(np.uint8)


CONTRACTS: dict[str, dict[str, Any]] = {
    "rgb_0_255": {},
    "bgr_0_255": {"color_order": "BGR"},
    "bgr_unit_range_mean_std": {"color_order": "BGR", "input_range": (0.0, 1.0), "output_range": (0.0, 1.0),
                                "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                                "extra": {"output_normalised": True}},
    "multiple_8": {"size_multiple": 8},
}


@pytest.mark.parametrize("variant", sorted(CONTRACTS))
def test_stylizer_and_staged_path_follow_the_spec(variant: str, clip: list[np.ndarray]) -> None:
    spec = replace(ModelSpec(name=f"johnson.{variant}", family="johnson"), **CONTRACTS[variant])
    net = _tiny(1, spec)
    img = np.ascontiguousarray(clip[0][:70, :126])  # not a multiple of 4 or 8: padded and cropped
    st = _st(net)
    direct = st.stylize(img)
    assert _same(direct, _reference(net, spec, img), tol=1)
    assert direct.std() > 20, "a near-constant output would not test the contract"
    staged, _ = _staged(st, [Frame(img, 0)], depth=1)
    assert _same(staged[0].image, direct)


def test_bgr_model_sees_bgr(clip: list[np.ndarray]) -> None:
    net = _tiny(2)
    bgr = _tiny(2, replace(net.spec, name="johnson.tiny_bgr", color_order="BGR"))
    img = clip[1]
    as_bgr = _st(bgr).stylize(img)
    # an RGB-contract run on the channel-swapped frame, swapped back, is what a BGR model must give
    swapped = _st(net).stylize(np.ascontiguousarray(img[..., ::-1]))[..., ::-1]
    assert _same(as_bgr, swapped)
    assert not _same(as_bgr, _st(net).stylize(img), tol=2), "the colour order made no difference"


def test_resize_keeps_shape_and_filters(clip: list[np.ndarray]) -> None:
    import cv2

    t = torch.from_numpy(clip[0])
    small = contract.resize_image(t, (64, 36))
    assert small.shape == (36, 64, 3) and small.dtype == torch.uint8
    assert _same(small.numpy(), cv2.resize(clip[0], (64, 36), interpolation=cv2.INTER_AREA))
    assert contract.resize_image(t, (128, 72)) is t


def test_pad_replicates_when_the_image_is_too_small_to_reflect() -> None:
    x = torch.arange(3.0).view(1, 1, 1, 3)
    y = contract.pad_to_multiple(x, 4)
    assert y.shape == (1, 1, 4, 4) and torch.equal(y[0, 0, 3], torch.tensor([0.0, 1.0, 2.0, 2.0]))


# --------------------------------------------------------------------------- every family, staged vs Stylizer

FAMILIES = family_examples()  # family -> its case (from the registry); a style image when its spec needs one


def test_every_listed_family_is_covered() -> None:
    from rtstyle.models import list_models

    names = list_models()
    assert {get_spec(n).family for n in names} == set(FAMILIES)
    assert all(name in names and get_spec(name).family == family for family, name in FAMILIES.items())
    # the shipped models are the cases where a family has one: those run without $RTSTYLE_WEIGHTS
    assert FAMILIES["johnson"] == "johnson.starry_night_lite" and FAMILIES["adain"] == "adain.vgg16"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_staged_matches_stylizer(family: str, clip: list[np.ndarray]) -> None:
    from rtstyle.weights import WeightNotFoundError

    name = FAMILIES[family]
    styled = get_spec(name).needs_style_image
    try:
        model = create_model(name)
    except WeightNotFoundError as e:
        pytest.skip(f"{name}: {e}")
    kw: dict[str, Any] = {"style_image": clip[7]} if styled else {}
    st = _st(model, **kw)
    frames = _frames(clip[:3])
    ref = [st(f).image for f in frames]
    out, sched = _staged(st, frames)
    assert [f.index for f in out] == [0, 1, 2]
    for r, o in zip(ref, out):
        assert _same(o.image, r), family
    assert sched.pending() == 0
    assert np.abs(ref[0].astype(int) - clip[0].astype(int)).mean() > 2, "the model left the frame unchanged"


# --------------------------------------------------------------------------- crossfade, per-frame inputs, temporal


def test_crossfade_through_the_staged_path(clip: list[np.ndarray]) -> None:
    frames = _frames(clip[:6])
    runs = []
    for staged in (False, True):
        st = _st(_tiny(3))
        b = st.prepare(_tiny(4))
        st.activate(b, crossfade=3)
        runs.append(_staged(st, frames)[0] if staged else [st(f) for f in frames])
    direct, staged_out = runs
    for d, s in zip(direct, staged_out):
        assert _same(s.image, d.image)
    pure_a = _st(_tiny(3)).stylize(clip[0])
    pure_b = _st(_tiny(4)).stylize(clip[0])
    assert not _same(staged_out[0].image, pure_a, 2) and not _same(staged_out[0].image, pure_b, 2)
    assert _same(staged_out[3].image, _st(_tiny(4)).stylize(clip[3]))


class _Tint(nn.Module):
    """A family written against the ability protocols only: the style image's mean colour, scaled
    per frame (``frame_style_inputs``), is added to the frame."""

    spec = ModelSpec(name="tint.test", family="tint", needs_style_image=True, size_multiple=1)

    def encode_style(self, style: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (style.mean((2, 3), keepdim=True) - 128.0,)

    def frame_style_inputs(self, frame_index: int, style_inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (style_inputs[0] * (frame_index % 3) / 2,)

    def forward(self, x: torch.Tensor, tint: torch.Tensor) -> torch.Tensor:
        return x + tint


def test_per_frame_style_inputs_through_the_staged_path(clip: list[np.ndarray]) -> None:
    style = np.zeros((32, 32, 3), np.uint8)
    style[..., 0] = 228  # mean colour - 128: +100 red, -128 green and blue
    frames = _frames(clip[:4])
    st = _st(_Tint(), style_image=style)
    direct = [st(f).image for f in frames]
    staged, _ = _staged(st, frames)
    for i, (d, s) in enumerate(zip(direct, staged)):
        assert _same(s.image, d)
        scale = (i % 3) / 2
        want = np.clip(clip[i].astype(float) + np.array([100.0, -128.0, -128.0]) * scale, 0, 255)
        assert int(np.abs(d.astype(float) - want).max()) <= 1, i


def test_animated_adain_mask_through_the_staged_path(clip: list[np.ndarray]) -> None:
    h, w = clip[0].shape[:2]

    def mask(i: int) -> np.ndarray:  # the styled half alternates between left and right
        m = np.full((h, w), -1, np.int64)
        if i % 2 == 0:
            m[:, : w // 2] = 0
        else:
            m[:, w // 2:] = 0
        return m

    st = _st(create_model("adain.vgg16", mask=mask), style_image=clip[7])
    frames = _frames(clip[:4])
    direct = [st(f).image for f in frames]
    staged, _ = _staged(st, frames)
    for d, s in zip(direct, staged):
        assert _same(s.image, d)
    assert not _same(direct[0], direct[1], 10)


def test_temporal_filter_through_the_staged_path(clip: list[np.ndarray]) -> None:
    from rtstyle.temporal import make_temporal

    frames = _frames(clip[:5])
    outs = []
    for staged in (False, True):
        st = _st(_tiny(5), temporal=make_temporal(0.8, "live"))
        outs.append([f.image for f in _staged(st, frames)[0]] if staged else [st(f).image for f in frames])
    plain = _st(_tiny(5))
    for i, (d, s) in enumerate(zip(*outs)):
        assert _same(s, d)
    assert not _same(outs[0][4], plain.stylize(clip[4]), 1), "the temporal filter did nothing"


# --------------------------------------------------------------------------- ordering of the staged path


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_frames_leave_in_order(depth: int, clip: list[np.ndarray]) -> None:
    st = _st(_tiny(6))
    frames = _frames(clip)
    sched = DeferredScheduler()
    staged = StagedStylizer(st, depth=depth, scheduler=sched)
    got = []
    for k, f in enumerate(frames):
        r = staged.push(f)
        assert (r is None) == (k < depth)  # the pipe fills, then one frame out per frame in
        if r is not None:
            got.append(r)
        assert staged.in_flight == min(k + 1, depth)
    got += staged.flush()
    assert [f.index for f in got] == list(range(len(frames)))
    assert staged.flush() == [] and staged.in_flight == 0 and sched.pending() == 0
    for f, o in zip(frames, got):
        assert _same(o.image, st(f).image)
    # work ran per frame as upload, compute, download, and never ahead of need
    assert sched.ran == ["s1", "s2", "s3"] * len(frames)


def test_a_missing_wait_shows_up_as_a_wrong_frame(clip: list[np.ndarray]) -> None:
    """The stand-in is strict enough to catch a slot reused before its download event."""

    class NoWait(DeferredScheduler):
        def synchronize(self, event: Any) -> None:  # a broken path: never waits for the device
            self.synchronized += 1

    st = _st(_tiny(7))
    staged = StagedStylizer(st, depth=2, scheduler=NoWait())
    frames = _frames(clip[:4])
    out = [r for f in frames if (r := staged.push(f)) is not None] + staged.flush()
    assert not all(_same(o.image, st(f).image) for f, o in zip(frames, out))


def test_slot_is_reused_only_after_its_download(clip: list[np.ndarray]) -> None:
    st = _st(_tiny(8))
    sched = DeferredScheduler()
    staged = StagedStylizer(st, depth=2, scheduler=sched)
    staged.push(Frame(clip[0], 0))
    staged.push(Frame(clip[1], 1))
    assert sched.ran == [] and sched.synchronized == 0  # nothing forced yet
    first = staged.push(Frame(clip[2], 2))  # slot 0 again: frame 0 must have been downloaded
    assert first is not None and first.index == 0 and sched.synchronized == 1
    assert sched.ran == ["s1", "s2", "s3"]  # exactly frame 0's work, nothing of frame 1 or 2
    assert _same(first.image, st(Frame(clip[0], 0)).image)


def test_frame_size_change_finishes_frames_in_flight(clip: list[np.ndarray]) -> None:
    st = _st(_tiny(9))
    big = _frames(clip[:3])
    small = [Frame(np.ascontiguousarray(c[:40, :60]), 3 + i) for i, c in enumerate(clip[3:6])]
    out, sched = _staged(st, big + small)
    assert [f.index for f in out] == list(range(6))
    for f, o in zip(big + small, out):
        assert o.image.shape == f.image.shape and _same(o.image, st(f).image)
    assert sched.pending() == 0


def test_style_swap_lands_on_a_frame_boundary_while_frames_are_in_flight(clip: list[np.ndarray]) -> None:
    st = _st(_tiny(10))
    b = st.prepare(_tiny(11))
    a_name = st.style_name
    sched = DeferredScheduler()
    staged = StagedStylizer(st, depth=2, scheduler=sched)
    frames = _frames(clip[:6])
    out = [r for f in frames[:2] if (r := staged.push(f)) is not None]
    st.activate(b, crossfade=0)  # frames 0 and 1 are in flight, nothing of them has run yet
    assert sched.ran == []
    out += [r for f in frames[2:] if (r := staged.push(f)) is not None] + staged.flush()
    a_ref, b_ref = _st(_tiny(10)), _st(_tiny(11))
    for f, o in zip(frames, out):
        want = (a_ref if f.index < 2 else b_ref)(f).image
        assert _same(o.image, want), f.index
        assert o.meta["style"] == (a_name if f.index < 2 else b.name)


def test_staged_path_needs_cuda_or_a_scheduler() -> None:
    st = _st(_tiny(12))
    with pytest.raises(ValueError, match="CUDA device, or a scheduler"):
        StagedStylizer(st)


def test_cuda_scheduler_refuses_a_cpu_device() -> None:
    from rtstyle.gpu import CudaScheduler

    with pytest.raises(ValueError, match="needs a CUDA device"):
        CudaScheduler("cpu")

"""AdaIN at relu3_1 on the pretrained LST pair: statistics, controls, Stylizer and ONNX contracts."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from rtstyle.models import create_model, get_spec, list_models
from rtstyle.models.adain import (
    AdaINControls,
    adain,
    channel_stats,
    load_mask,
    match_color,
    validate_weights,
)

_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def _chroma(x: torch.Tensor) -> torch.Tensor:
    """RGB minus luma per channel: a linear function of (Cb, Cr) only."""
    return x - (x * _LUMA).sum(1, keepdim=True)


@pytest.fixture(scope="module")
def styles(shared: Path, read_rgb: Callable[..., np.ndarray]) -> dict[str, np.ndarray]:
    root = shared / "media" / "styles"
    return {n: read_rgb(root / f"{n}.jpg", (192, 160)) for n in ("starry_night", "the_scream", "mondrian")}


@pytest.fixture(scope="module")
def model(lst: dict[str, Path]) -> torch.nn.Module:
    return create_model("adain.r31", **lst)


@pytest.fixture(scope="module")
def content(content_photo: np.ndarray, rgb_tensor: Callable[..., torch.Tensor]) -> torch.Tensor:
    return rgb_tensor(content_photo)  # 160x120, multiples of 4


def test_registered_with_its_contract() -> None:
    assert "adain.r31" in list_models("adain.*")
    spec = get_spec("adain.r31")
    assert spec.needs_style_image and spec.input_range == (0.0, 1.0) and spec.size_multiple == 4


def test_adain_op_gives_style_statistics(model: torch.nn.Module, content: torch.Tensor,
                                         styles: dict[str, np.ndarray],
                                         rgb_tensor: Callable[..., torch.Tensor]) -> None:
    mean, std, alpha = model.encode_style(rgb_tensor(styles["starry_night"]))
    assert mean.shape == std.shape == (1, 256, 1, 1) and alpha.shape == (1,)
    with torch.no_grad():
        f = model.encoder(content)
        out = adain(f, mean, std)
        torch.testing.assert_close(model.features(content, mean, std, alpha), out)
    got_m, got_s = channel_stats(out)
    live = f.var((2, 3), unbiased=False).view(-1) > 0.1  # eps in the content variance only matters below
    assert live.float().mean() > 0.9
    torch.testing.assert_close(got_m, mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_s.view(-1)[live], std.view(-1)[live], atol=1e-4, rtol=1e-4)


def test_alpha_zero_is_the_reconstruction(model: torch.nn.Module, content: torch.Tensor,
                                          styles: dict[str, np.ndarray],
                                          rgb_tensor: Callable[..., torch.Tensor]) -> None:
    zero = model.with_controls(alpha=0.0)
    with torch.no_grad():
        y = zero(content, *zero.encode_style(rgb_tensor(styles["the_scream"])))
        rec = model.decoder(model.encoder(content))
        half = model.with_controls(alpha=0.5)
        y_half = half(content, *half.encode_style(rgb_tensor(styles["the_scream"])))
    torch.testing.assert_close(y, rec, atol=1e-5, rtol=1e-5)
    assert (y_half - rec).abs().mean() > 0.01
    with pytest.raises(ValueError, match="alpha"):
        AdaINControls(alpha=1.5)


def test_interpolation_weights(model: torch.nn.Module, content: torch.Tensor, styles: dict[str, np.ndarray],
                               rgb_tensor: Callable[..., torch.Tensor]) -> None:
    a, b = styles["starry_night"], styles["the_scream"]
    for bad in ([1.0], [1.0, -0.5], [0.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(ValueError):
            model.encode_styles([a, b], bad)
    assert validate_weights([3, 1], 2) == [0.75, 0.25]
    only_a = model.encode_styles([a, b], [1.0, 0.0])
    alone = model.encode_style(rgb_tensor(a))
    for x, y in zip(only_a, alone):
        torch.testing.assert_close(x, y)
    with torch.no_grad():
        torch.testing.assert_close(model(content, *only_a), model(content, *alone))
    mid = model.encode_styles([a, b], [1.0, 1.0])
    torch.testing.assert_close(mid[0], (alone[0] + model.encode_style(rgb_tensor(b))[0]) / 2)


def test_mask_puts_each_style_in_its_region(lst: dict[str, Path], content: torch.Tensor,
                                            styles: dict[str, np.ndarray],
                                            rgb_tensor: Callable[..., torch.Tensor],
                                            stats_dist: Callable[..., float]) -> None:
    a, b = styles["starry_night"], styles["the_scream"]
    labels = np.zeros((120, 160), np.int64)
    labels[:, 80:] = 1
    two = create_model("adain.r31", mask=labels, **lst)
    plain = create_model("adain.r31", **lst)
    with torch.no_grad():
        y = two(content, *two.encode_styles([a, b]))
        ya = plain(content, *plain.encode_style(rgb_tensor(a)))
        yb = plain(content, *plain.encode_style(rgb_tensor(b)))
    left, right = (..., slice(0, 64)), (..., slice(96, 160))

    assert stats_dist(y, ya, left) < 0.5 * stats_dist(y, yb, left)
    assert stats_dist(y, yb, right) < 0.5 * stats_dist(y, ya, right)
    # -1 keeps the content: that region stays close to the plain reconstruction.
    keep = labels.copy()
    keep[:, 80:] = -1
    one = create_model("adain.r31", mask=keep, **lst)
    with torch.no_grad():
        y1 = one(content, *one.encode_style(rgb_tensor(a)))
        rec = plain.decoder(plain.encoder(content))
    assert (y1[right] - rec[right]).abs().mean() < 0.2 * (ya[right] - rec[right]).abs().mean()
    assert stats_dist(y1, ya, left) < 0.5 * stats_dist(rec, ya, left)
    with pytest.raises(ValueError, match="labels"):
        load_mask(labels, 1)
    with pytest.raises(ValueError, match="weights do not apply"):
        two.encode_styles([a, b], [0.5, 0.5])


def test_mask_from_image_file_and_callable(tmp_path: Path) -> None:
    import cv2

    img = np.zeros((8, 10), np.uint8)
    img[:, 5:] = 255
    cv2.imwrite(str(tmp_path / "m.png"), img)
    assert (load_mask(tmp_path / "m.png", 1)[:, :5] == -1).all() and (load_mask(tmp_path / "m.png", 2)[:, 5:] == 0).all()
    ctl = AdaINControls(mask=lambda i: np.full((4, 4), -1 if i % 2 else 0))
    assert ctl.mask is not None and ctl.mask(1)[0, 0] == -1


def test_luminance_keeps_content_chroma(lst: dict[str, Path], content: torch.Tensor,
                                        styles: dict[str, np.ndarray], rgb_tensor: Callable[..., torch.Tensor]) -> None:
    lum = create_model("adain.r31", color="luminance", **lst)
    plain = create_model("adain.r31", **lst)
    style = rgb_tensor(styles["starry_night"])
    with torch.no_grad():
        y = lum(content, *lum.encode_style(style))
        y_plain = plain(content, *plain.encode_style(style))
    torch.testing.assert_close(_chroma(y), _chroma(content), atol=1e-5, rtol=0)
    assert (_chroma(y_plain) - _chroma(content)).abs().mean() > 0.03
    torch.testing.assert_close((y * _LUMA).sum(1), (y_plain * _LUMA).sum(1), atol=1e-5, rtol=0)
    assert not torch.equal(lum.graph_flags, plain.graph_flags)  # distinct engine cache keys


def test_histogram_color_matching(lst: dict[str, Path], content_photo: np.ndarray,
                                   styles: dict[str, np.ndarray], rgb_tensor: Callable[..., torch.Tensor]) -> None:
    src, ref = rgb_tensor(styles["mondrian"]), rgb_tensor(content_photo)
    out = match_color(src, ref)
    torch.testing.assert_close(out.mean((2, 3)), ref.mean((2, 3)), atol=0.02, rtol=0)
    with pytest.raises(ValueError, match="color_reference"):
        create_model("adain.r31", color="histogram", **lst)
    hist = create_model("adain.r31", color="histogram", color_reference=content_photo, **lst)
    plain = create_model("adain.r31", **lst)
    assert not torch.allclose(hist.encode_style(src)[0], plain.encode_style(src)[0])


def test_stylizer_with_style_swap_and_blend(lst: dict[str, Path], content_photo: np.ndarray,
                                            styles: dict[str, np.ndarray], style_swap_outputs: Callable) -> None:
    from rtstyle.stylizer import Stylizer

    model = create_model("adain.r31", alpha=0.9, **lst)
    st = Stylizer(model, style_image=styles["starry_night"], frame_size=(160, 120))
    try:
        y1, y2 = style_swap_outputs(st, styles["the_scream"], content_photo)
        blend = model.with_styles([styles["starry_night"], styles["the_scream"]], [1.0, 0.0])
        st.set_style(model=blend, wait=True)
        np.testing.assert_allclose(st.stylize(content_photo), y1, atol=1)
        st.set_style(model=blend, style_vector=[0.0, 1.0], wait=True)
        np.testing.assert_allclose(st.stylize(content_photo), y2, atol=1)
    finally:
        st.close()


def test_onnx_matches_eager(lst: dict[str, Path], content: torch.Tensor, styles: dict[str, np.ndarray],
                            tmp_path: Path, rgb_tensor: Callable[..., torch.Tensor]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from rtstyle.backends import BackendOptions, create_backend

    model = create_model("adain.r31", alpha=0.8, **lst)
    inputs = model.encode_style(rgb_tensor(styles["starry_night"]))
    runner = create_backend("onnx", BackendOptions(cache_dir=tmp_path)).prepare(model, (content, *inputs))
    other = model.encode_style(rgb_tensor(styles["the_scream"]))  # new style: same graph, other inputs
    for ins in (inputs, other):
        with torch.no_grad():
            ref = model(content, *ins)
        got = runner(content, *ins).float()
        mse = float(((got - ref) ** 2).mean())
        assert 10 * np.log10(1.0 / max(mse, 1e-12)) >= 35


def test_animated_mask_is_evaluated_per_frame_by_the_stylizer(lst: dict[str, Path], content_photo: np.ndarray,
                                                             styles: dict[str, np.ndarray]) -> None:
    from rtstyle.frame import Frame
    from rtstyle.stylizer import Stylizer

    h, w = content_photo.shape[:2]

    def mask(i: int) -> np.ndarray:  # the styled half moves from left (even frames) to right (odd)
        m = np.full((h, w), -1, np.int64)
        if i % 2 == 0:
            m[:, : w // 2] = 0
        else:
            m[:, w // 2 :] = 0
        return m

    net = create_model("adain.r31", mask=mask, **lst)
    st = Stylizer(net, style_image=styles["starry_night"])
    plain = Stylizer(create_model("adain.r31", alpha=0.0, **lst), style_image=styles["starry_night"])
    recon = plain(Frame(content_photo, 0)).image.astype(float)
    f0 = st(Frame(content_photo, 0)).image.astype(float)
    f1 = st(Frame(content_photo, 1)).image.astype(float)
    left, right = (slice(None), slice(0, w // 2 - 8)), (slice(None), slice(w // 2 + 8, None))
    d0 = [np.abs(f0[r] - recon[r]).mean() for r in (left, right)]
    d1 = [np.abs(f1[r] - recon[r]).mean() for r in (left, right)]
    assert d0[0] > 2 * d0[1] and d1[1] > 2 * d1[0], (d0, d1)

"""Style-swap: the convolutional patch matching against a direct nearest-neighbour search."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtstyle.models import create_model, get_spec, list_models
from rtstyle.models.styleswap import extract_patches, style_swap
from rtstyle.weights import WeightNotFoundError


def _direct_swap(content: torch.Tensor, style: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute force: for every content patch, the style patch of max normalised cross-correlation,
    pasted and averaged with loops (no convolutions)."""
    _, c, h, w = content.shape
    sp = F.unfold(style, k)[0].t()  # (Ls, C*k*k)
    sp_unit = sp / sp.norm(dim=1, keepdim=True)
    out = torch.zeros(c, h, w, dtype=torch.float64)
    count = torch.zeros(1, h, w, dtype=torch.float64)
    best = torch.empty(h - k + 1, w - k + 1, dtype=torch.long)
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            cp = content[0, :, i: i + k, j: j + k].reshape(-1)
            ncc = (sp_unit @ cp) / cp.norm()
            b = int(torch.argmax(ncc))
            best[i, j] = b
            out[:, i: i + k, j: j + k] += sp[b].view(c, k, k).double()
            count[:, i: i + k, j: j + k] += 1
    return (out / count).float()[None], best


@pytest.mark.parametrize("k", [3, 2])
@pytest.mark.parametrize("impl", ["conv", "gather"])
def test_matching_equals_direct_nearest_neighbour(k: int, impl: str) -> None:
    g = torch.Generator().manual_seed(k)
    content = torch.rand(1, 8, 9, 11, generator=g)
    style = torch.rand(1, 8, 7, 6, generator=g)
    expected, best = _direct_swap(content, style, k)
    got = style_swap(content, extract_patches(style, k), impl=impl)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert len(best.unique()) > 1  # a non-degenerate matching


def test_extract_patches_order_and_stride() -> None:
    x = torch.arange(2 * 5 * 6, dtype=torch.float32).view(1, 2, 5, 6)
    p = extract_patches(x, 3)
    assert p.shape == (3 * 4, 2, 3, 3)
    torch.testing.assert_close(p[1 * 4 + 2], x[0, :, 1:4, 2:5])  # row-major: patch (row 1, col 2)
    assert extract_patches(x, 3, stride=2).shape == (2 * 2, 2, 3, 3)
    with pytest.raises(ValueError, match="smaller than the patch"):
        extract_patches(x, 7)


def test_registered_with_its_contract() -> None:
    assert "styleswap.r31" in list_models("styleswap.*")
    spec = get_spec("styleswap.r31")
    assert spec.needs_style_image and spec.input_range == (0.0, 1.0) and spec.output_range == (0.0, 1.0)
    assert "BSD-2" in spec.licence and spec.size_multiple == 4


@pytest.fixture(scope="module")
def model(shared_weights: Path) -> torch.nn.Module:
    lst = shared_weights / "lst"
    return create_model("styleswap.r31", encoder_path=lst / "vgg_r31.pth", decoder_path=lst / "dec_r31.pth")


def test_output_shape_and_determinism(model: torch.nn.Module, content_photo: np.ndarray) -> None:
    x = torch.from_numpy(content_photo[:64, :96]).permute(2, 0, 1)[None].float() / 255
    style = torch.rand(1, 3, 300, 200, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        patches, normalised = model.encode_style(style)
        y1 = model(x, patches, normalised)
        y2 = model(x, *model.encode_style(style))
    assert y1.shape == x.shape
    assert torch.equal(y1, y2)
    # The style image was capped at 256 px and the patch count at max_patches.
    assert patches.shape[0] <= model.max_patches and patches.shape[1:] == (256, 3, 3)


def test_patch_size_is_a_control(shared_weights: Path) -> None:
    lst = shared_weights / "lst"
    m = create_model("styleswap.r31", patch_size=5, encoder_path=lst / "vgg_r31.pth", decoder_path=lst / "dec_r31.pth")
    assert m.spec.extra["patch_size"] == 5
    patches, _ = m.encode_style(torch.rand(1, 3, 64, 64))
    assert patches.shape[-2:] == (5, 5)
    with pytest.raises(TypeError, match="unknown options"):
        create_model("styleswap.r31", patchsize=5)


def test_runs_in_the_stylizer(model: torch.nn.Module, content_photo: np.ndarray) -> None:
    from rtstyle.stylizer import Stylizer

    st = Stylizer(model, style_image=content_photo[::-1].copy(), frame_size=(80, 60))
    try:
        out = st.stylize(content_photo[:60, :80].copy())
        assert out.shape == (60, 80, 3) and out.dtype == np.uint8
        assert len(st.state.style_inputs) == 2
    finally:
        st.close()


def test_missing_weights_are_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(WeightNotFoundError, match="lst/vgg_r31.pth"):
        create_model("styleswap.r31")


def test_subspace_search_at_full_rank_is_the_exhaustive_search(model: torch.nn.Module,
                                                               content_photo: np.ndarray) -> None:
    """On a real frame's relu3_1 features: with every principal direction kept the subspace search
    picks the same patches (up to float ties), and a truncated one still pastes real style patches."""
    from rtstyle.models.styleswap import normalise_patches, search_basis

    x = torch.from_numpy(content_photo).permute(2, 0, 1)[None].float() / 255
    style = torch.from_numpy(content_photo[::-1, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        feats = model.encoder(x)
        patches, normalised = model.encode_style(style)
        exact = style_swap(feats, patches, normalised)
        basis, coords = search_basis(normalise_patches(patches), 10_000)
        assert basis.shape[0] == min(patches.shape[0], patches[0].numel())
        full = style_swap(feats, patches, coords, basis=basis)
        torch.testing.assert_close(full, exact, atol=1e-4, rtol=1e-4)
        basis, coords = search_basis(normalised, 32)
        approx = style_swap(feats, patches, coords, basis=basis)
    assert approx.shape == exact.shape and not torch.equal(approx, exact)
    rel = float((approx - exact).norm() / exact.norm())
    assert rel < 0.5, rel
    with pytest.raises(ValueError, match="search basis"):
        style_swap(feats, patches, normalised, basis=basis)


def test_subspace_search_model_option(shared_weights: Path) -> None:
    lst = shared_weights / "lst"
    m = create_model("styleswap.r31", search_dims=16, encoder_path=lst / "vgg_r31.pth",
                     decoder_path=lst / "dec_r31.pth")
    ins = m.encode_style(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    assert len(ins) == 3 and ins[2].shape[0] == 16 and ins[1].shape[1:] == (16, 1, 1)
    assert m(torch.rand(1, 3, 32, 32), *ins).shape == (1, 3, 32, 32)
    assert m.spec.extra["search_dims"] == 16
    with pytest.raises(ValueError, match="search_dims"):
        create_model("styleswap.r31", search_dims=0, encoder_path=lst / "vgg_r31.pth",
                     decoder_path=lst / "dec_r31.pth")


def test_openvino_keeps_the_eager_output_on_a_real_frame(shared_weights: Path, content_photo: np.ndarray,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """Style-swap's speed-up (OpenVINO instead of eager, docs/temporal.md) keeps its output."""
    pytest.importorskip("openvino")
    from rtstyle.stylizer import Stylizer

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared_weights))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    style = np.ascontiguousarray(content_photo[::-1])
    frame = np.ascontiguousarray(content_photo[:96, :128])
    outs = {}
    for backend in ("eager", "openvino"):
        st = Stylizer("styleswap.r31", style_image=style, frame_size=(128, 96), backend=backend)
        try:
            outs[backend] = st.stylize(frame).astype(np.float64)
        finally:
            st.close()
    mse = float(np.mean((outs["eager"] - outs["openvino"]) ** 2))
    psnr = 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))
    assert psnr > 40, psnr


def test_multi_swaps_then_matches_the_fine_statistics(shared_weights: Path, content_photo: np.ndarray,
                                                      shared: Path, read_rgb, rgb_tensor) -> None:
    """styleswap.multi: the swap's output, then AdaIN at relu2_1 and relu1_1; the fine levels move the
    output's fine statistics to the painting's."""
    from rtstyle.models.adain import channel_stats
    from rtstyle.models.styleswap import StyleSwapMultiNet

    lst = dict(encoder_path=shared_weights / "lst" / "vgg_r31.pth", decoder_path=shared_weights / "lst" / "dec_r31.pth")
    multi = create_model("styleswap.multi", **lst)
    plain = create_model("styleswap.r31", **lst)
    assert isinstance(multi, StyleSwapMultiNet) and get_spec("styleswap.multi").family == "styleswap"
    x = rgb_tensor(content_photo)
    style = rgb_tensor(read_rgb(shared / "media" / "styles" / "the_scream.jpg", (192, 160)))
    ins = multi.encode_style(style)
    assert ins[2].shape == ins[3].shape == (1, 128 + 64, 1, 1)
    with torch.no_grad():
        swapped = plain(x, *plain.encode_style(style))
        torch.testing.assert_close(multi.fine(swapped, ins[2], ins[3], torch.ones(1)), multi(x, *ins))
        y, taps_s = multi(x, *ins), multi.encoder.features(style)
        def dist(img: torch.Tensor) -> float:
            t = multi.encoder.features(img.clamp(0, 1))
            return sum(float((channel_stats(t[k])[0] - channel_stats(taps_s[k])[0]).norm()) for k in ("r11", "r21"))
        assert dist(y) < 0.7 * dist(swapped)
    with pytest.raises(TypeError):
        multi(x, ins[0])


def test_multi_exports_to_openvino(shared_weights: Path, content_photo: np.ndarray, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from rtstyle.stylizer import Stylizer

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared_weights))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    style, frame = np.ascontiguousarray(content_photo[::-1]), np.ascontiguousarray(content_photo[:96, :128])
    outs = {}
    for backend in ("eager", "openvino"):
        st = Stylizer("styleswap.multi", style_image=style, frame_size=(128, 96), backend=backend, precision="fp32")
        try:
            outs[backend] = st.stylize(frame).astype(np.float64)
            assert type(st.state.runner).__module__.endswith(backend)
        finally:
            st.close()
    mse = float(np.mean((outs["eager"] - outs["openvino"]) ** 2))
    assert 10 * np.log10(255.0 ** 2 / max(mse, 1e-12)) > 35

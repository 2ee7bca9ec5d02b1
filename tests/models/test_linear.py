"""linear.r31: the Newton-Schulz transform, its identity and covariance contracts, controls, export parity."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from rtstyle.models.linear import LinearNet, LinearTransform, compressed_stats, load_transform, save_transform, sqrt_and_inv_sqrt


def _cov(f: torch.Tensor) -> torch.Tensor:
    x = (f - f.mean((2, 3), keepdim=True))[0].flatten(1)
    return x @ x.t() / x.shape[1]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# --------------------------------------------------------------------------- no shared data needed

def test_newton_schulz_square_roots() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 16, 40, generator=g)
    cov = a @ a.transpose(1, 2) / 40
    r, ir = sqrt_and_inv_sqrt(cov.double(), iters=30, ridge=1e-3)
    reg = cov.double() + 1e-3 * (cov.double() * torch.eye(16)).sum((1, 2), keepdim=True) / 16 * torch.eye(16)
    assert _rel(r @ r, reg) < 1e-6
    assert _rel(ir @ reg @ ir, torch.eye(16).expand(3, 16, 16).double()) < 1e-6
    with pytest.raises(ValueError, match="N, k, k"):
        sqrt_and_inv_sqrt(torch.zeros(4, 4))


def test_identity_covariance_style_gives_identity_transform() -> None:
    """Content and style whose compressed features have identity covariance: T = I, and the
    output is the content projected on the subspace, moved to the style's mean."""
    tr = LinearTransform(channels=64, k=8)
    basis = tr.unzip.weight[:, :, 0, 0]  # (64, 8), orthonormal columns; compress = basis^T
    g = torch.Generator().manual_seed(0)

    def identity_cov_features(mean: float) -> torch.Tensor:
        z = torch.randn(8, 400, generator=g, dtype=torch.float64)
        z = z - z.mean(1, keepdim=True)
        val, vec = torch.linalg.eigh(z @ z.t() / 400)
        z = (vec @ torch.diag(val.rsqrt()) @ vec.t()) @ z  # exactly whitened
        return (basis.double() @ z).float().reshape(1, 64, 20, 20) + mean

    fc, fs = identity_cov_features(0.3), identity_cov_features(1.5)
    mean_s, color = tr.style_side(fs)
    t, _, _ = tr.matrix(fc, color)
    assert torch.allclose(t[0], torch.eye(8), atol=1e-4)
    out = tr(fc, mean_s, color)
    assert torch.allclose(out, fc - fc.mean((2, 3), keepdim=True) + mean_s, atol=1e-4)


def test_transform_file_round_trip(tmp_path: Path) -> None:
    tr = LinearTransform(channels=32, k=4, iters=12, ridge=2e-3)
    with torch.no_grad():
        tr.compress.weight.mul_(1.5)
    p = save_transform(tr, tmp_path / "t.safetensors", {"steps": "7"})
    back, meta = load_transform(p)
    assert (back.k, back.iters, back.ridge, meta["steps"]) == (4, 12, 2e-3, "7")
    assert torch.equal(back.compress.weight, tr.compress.weight)
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError):
        load_transform(tmp_path / "bad.safetensors")


# --------------------------------------------------------------------------- real features

@pytest.fixture(scope="module")
def styles(shared: Path, read_rgb: Callable[..., np.ndarray]) -> dict[str, np.ndarray]:
    root = shared / "media" / "styles"
    return {n: read_rgb(root / f"{n}.jpg", (192, 160)) for n in ("starry_night", "the_scream", "mondrian")}


@pytest.fixture(scope="module")
def content(content_photo: np.ndarray, rgb_tensor: Callable[..., torch.Tensor]) -> torch.Tensor:
    return rgb_tensor(content_photo)  # 160x120


@pytest.fixture(scope="module")
def model(lst: dict[str, Path]) -> LinearNet:
    from rtstyle.models import create_model, list_models

    if "linear.r31" not in list_models():
        pytest.skip("linear.r31 is not shipped in rtstyle/weights_data")
    return create_model("linear.r31", **lst)  # type: ignore[return-value]


def test_output_covariance_approaches_the_style(lst: dict[str, Path], content: torch.Tensor,
                                                styles: dict[str, np.ndarray],
                                                rgb_tensor: Callable[..., torch.Tensor]) -> None:
    from rtstyle.models.lst import load_encoder

    enc = load_encoder(31, lst["encoder_path"])
    with torch.no_grad():
        fc = enc(content)
        fs = enc(rgb_tensor(styles["starry_night"]))
        tr = LinearTransform()
        tr.init_pca(torch.cat([fc, torch.nn.functional.interpolate(fs, size=fc.shape[-2:])]))
        mean, color = tr.style_side(fs)
        out = tr(fc, mean, color)
        # the compressed covariance is the style's (up to the regulariser and the iteration) ...
        _, _, c_out = compressed_stats(out, tr.compress)
        _, _, c_sty = compressed_stats(fs, tr.compress)
        assert _rel(c_out, c_sty) < 0.02
        # ... and the full 256-channel covariance moves most of the way from the content's to the style's
        before, after = _rel(_cov(fc), _cov(fs)), _rel(_cov(out), _cov(fs))
        assert after < 0.4 * before, (before, after)
        assert torch.allclose(out.mean((2, 3)), fs.mean((2, 3)), atol=1e-3 * float(fs.abs().max()))


def test_same_statistics_give_identity_on_real_features(model: LinearNet, content: torch.Tensor) -> None:
    with torch.no_grad():
        f = model.encoder(content)
        mean, color = model.transform.style_side(f)
        t, _, _ = model.transform.matrix(f, color)
    assert torch.allclose(t[0], torch.eye(t.shape[-1]), atol=2e-3)


def test_shipped_model_contract(model: LinearNet, content: torch.Tensor, styles: dict[str, np.ndarray],
                                rgb_tensor: Callable[..., torch.Tensor]) -> None:
    from rtstyle.models import get_spec

    spec = get_spec("linear.r31")
    assert spec.needs_style_image and spec.input_range == (0.0, 1.0) and spec.weights == "linear_r31.safetensors"
    held = spec.extra["held_out_styles"]
    assert "Mary_Cassatt_Summertime_1894" in held
    ins = model.encode_style(rgb_tensor(styles["starry_night"]))
    with torch.no_grad():
        y = model(content, *ins)
        y2 = model(content, *model.encode_style(rgb_tensor(styles["mondrian"])))
    assert y.shape == content.shape
    assert float((y - content).abs().mean()) > 0.05  # stylised, not passed through
    assert float((y - y2).abs().mean()) > 0.03  # another painting, another output


def test_alpha_zero_is_the_reconstruction(model: LinearNet, content: torch.Tensor, styles: dict[str, np.ndarray],
                                          rgb_tensor: Callable[..., torch.Tensor]) -> None:
    m0 = model.with_controls(alpha=0.0)
    with torch.no_grad():
        y = m0(content, *m0.encode_style(rgb_tensor(styles["the_scream"])))
        rec = model.decoder(model.encoder(content))
    assert torch.allclose(y, rec, atol=1e-5)


def test_luminance_keeps_content_chroma(model: LinearNet, content: torch.Tensor, styles: dict[str, np.ndarray],
                                        rgb_tensor: Callable[..., torch.Tensor]) -> None:
    m = model.with_controls(color="luminance")
    with torch.no_grad():
        y = m(content, *m.encode_style(rgb_tensor(styles["mondrian"])))
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    chroma = lambda x: x - (x * luma).sum(1, keepdim=True)  # noqa: E731
    assert torch.allclose(chroma(y), chroma(content), atol=1e-5)


def test_weighted_styles_interpolate(model: LinearNet, content: torch.Tensor, styles: dict[str, np.ndarray]) -> None:
    imgs = [styles["starry_night"], styles["mondrian"]]
    with torch.no_grad():
        only_a = model(content, *model.encode_styles(imgs, [1.0, 0.0]))
        alone = model(content, *model.encode_styles(imgs[:1]))
        half = model(content, *model.encode_styles(imgs, [0.5, 0.5]))
        only_b = model(content, *model.encode_styles(imgs, [0.0, 1.0]))
    assert torch.allclose(only_a, alone, atol=1e-5)
    d_ab = float((only_a - only_b).abs().mean())
    assert float((half - only_a).abs().mean()) < d_ab and float((half - only_b).abs().mean()) < d_ab
    with pytest.raises(ValueError, match="weights"):
        model.encode_styles(imgs, [1.0])


def test_mask_puts_each_style_in_its_region(model: LinearNet, content: torch.Tensor,
                                            styles: dict[str, np.ndarray]) -> None:
    h, w = content.shape[-2:]
    labels = np.zeros((h, w), np.int64)
    labels[:, w // 2:] = 1
    m = model.with_controls(mask=labels)
    imgs = [styles["starry_night"], styles["mondrian"]]
    with torch.no_grad():
        y = m(content, *m.encode_styles(imgs))
        a = model(content, *model.encode_styles(imgs[:1]))
        b = model(content, *model.encode_styles(imgs[1:]))
    left, right = slice(0, w // 2 - 16), slice(w // 2 + 16, w)
    assert float((y[..., left] - a[..., left]).abs().mean()) < float((y[..., left] - b[..., left]).abs().mean())
    assert float((y[..., right] - b[..., right]).abs().mean()) < float((y[..., right] - a[..., right]).abs().mean())


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_export_parity(backend: str, model: LinearNet, content: torch.Tensor, styles: dict[str, np.ndarray],
                       tmp_path: Path, rgb_tensor: Callable[..., torch.Tensor]) -> None:
    pytest.importorskip("onnxruntime" if backend == "onnx" else "openvino")
    from helpers import assert_export_parity

    m = model.with_controls(alpha=0.8)
    # a new style: the same graph, other inputs
    assert_export_parity(backend, m, content, [m.encode_style(rgb_tensor(styles[n])) for n in ("starry_night", "the_scream")],
                         tmp_path)


def test_style_image_is_encoded_at_the_frames_scale(model: LinearNet, shared: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the Stylizer a style image's longer side is the frames' internal shorter side, within
    ``[min_style_side, max_style_side]``; before the frame size is known, the cap."""
    from rtstyle.models._abilities import StyleSideFollowsContent
    from rtstyle.stylizer import Stylizer

    assert isinstance(model, StyleSideFollowsContent)
    assert [model.style_side_for(n) for n in (100, 256, 341, 512, 2000)] == [256, 256, 341, 512, 512]
    assert LinearNet(model.encoder, model.decoder, model.transform, min_style_side=512).style_side_for(341) == 512
    with pytest.raises(ValueError, match="min_style_side"):
        LinearNet(model.encoder, model.decoder, model.transform, min_style_side=8)
    seen: list[tuple[int, ...]] = []
    real = type(model).encode_style

    def recording(self, style):  # type: ignore[no-untyped-def]
        seen.append(tuple(style.shape))
        return real(self, style)

    monkeypatch.setattr(type(model), "encode_style", recording)
    painting = str(shared / "media" / "styles" / "starry_night.jpg")  # 1024 px wide
    st = Stylizer(model, style_image=painting, backend="eager", size=96)  # frame size unknown: the cap
    assert max(seen[-1][2:]) == 512
    st.set_frame_size(640, 480)  # internal 128x96
    st.prepare(model.with_controls(alpha=0.9), style_image=painting)
    assert max(seen[-1][2:]) == 256
    st.close()
    st = Stylizer(model, style_image=painting, backend="eager", size=300, frame_size=(640, 480))  # internal 400x300
    assert max(seen[-1][2:]) == 300
    st.close()


def test_commands_prepare_the_first_style_at_the_sources_size(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rtstyle stylize`` / ``live`` know the source's size before the first frame: the first style image
    is encoded at the frames' scale, not at the cap (and an unknown size, 0x0, is the cap)."""
    from rtstyle.jobs import StylizerSettings, build_stylizer

    seen: list[tuple[int, ...]] = []
    real = LinearNet.encode_style

    def recording(self, style):  # type: ignore[no-untyped-def]
        seen.append(tuple(style.shape))
        return real(self, style)

    monkeypatch.setattr(LinearNet, "encode_style", recording)
    settings = StylizerSettings(model="linear.r31", style=(str(shared / "media" / "styles" / "wave.jpg"),),
                                size=300, backend="eager")
    for size, side in (((640, 480), 300), ((0, 0), 512)):
        st = build_stylizer(settings, frame_size=size)
        assert max(seen[-1][2:]) == side, size
        st.close()

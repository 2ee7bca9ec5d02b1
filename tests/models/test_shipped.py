"""The models shipped in the package: listed, checksummed, and visibly stylising real photos."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.cli import DEFAULT_MODEL, main
from rtstyle.models import create_model, get_spec, list_models
from rtstyle.stylizer import Stylizer, load_style_image
from rtstyle.weights import sha256_file

SHIPPED = ["johnson.starry_night_lite", "johnson.wave_lite"]


def test_default_and_shipped_are_registered() -> None:
    assert DEFAULT_MODEL in SHIPPED
    assert set(SHIPPED) <= set(list_models("johnson.*"))
    for name in SHIPPED:
        spec = get_spec(name)
        assert spec.weights and spec.sha256 and spec.default_size
        assert "training_command" in spec.extra and spec.extra["steps"] > 0
        assert "public-domain" in spec.licence
        ref = resources.files("rtstyle.weights_data").joinpath(spec.weights)
        with resources.as_file(ref) as p:
            assert sha256_file(p) == spec.sha256
            assert Path(p).stat().st_size < 2_000_000


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_carry_their_style(name: str, content_photo: np.ndarray) -> None:
    out = Stylizer(name).stylize(content_photo)
    assert out.shape == content_photo.shape
    diff = np.abs(out.astype(float) - content_photo.astype(float)).mean()
    assert diff > 15, f"{name} barely changes the photo (mean abs diff {diff:.1f})"
    # and it is not noise: the output keeps the photo's structure (edges correlate)
    import cv2

    e_in = cv2.Laplacian(cv2.cvtColor(content_photo, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    e_out = cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    assert np.corrcoef(np.abs(e_in).ravel(), np.abs(e_out).ravel())[0, 1] > 0.2


def test_tampered_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from rtstyle.models import _registry

    entry = _registry._MODELS[SHIPPED[0]]
    bad = dataclasses.replace(entry.spec, sha256="0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        entry.factory(bad)


def test_demo_runs_on_the_embedded_default(tmp_path: Path) -> None:
    assert main(["-q", "demo", "-o", str(tmp_path), "--size", "120"]) == 0
    rep = json.loads((tmp_path / "demo_report.json").read_text())
    assert rep["model"] == DEFAULT_MODEL and rep["frames_out"] == rep["frames_in"] == 100
    assert (tmp_path / "demo.mp4").stat().st_size > 10_000 and (tmp_path / "demo_grid.jpg").exists()
    m = create_model(DEFAULT_MODEL)
    assert m.spec.name == DEFAULT_MODEL


def test_shipped_adain_decoder_is_pinned_to_its_encoder_and_stylizes(shared: Path, content_photo: np.ndarray,
                                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2
    import torch

    from rtstyle.models.vgg_adain import EncoderMismatchError
    from rtstyle.quality import QualityMeter

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    spec = get_spec("adain.vgg16")
    assert spec.needs_style_image and spec.sha256 and spec.size_multiple == 8
    assert spec.extra["encoder_sha256"] == sha256_file(shared / "weights" / "vgg16_imagenet_to_relu4_3.pth")
    assert "starry_night" in spec.extra["held_out_styles"]
    with resources.as_file(resources.files("rtstyle.weights_data").joinpath(spec.weights)) as p:
        assert sha256_file(p) == spec.sha256 and Path(p).stat().st_size < 4_000_000
    # a held-out painting: the output's style statistics move well towards the painting, structure stays
    style = shared / "media" / "styles" / "starry_night.jpg"
    out = Stylizer("adain.vgg16", style_image=str(style), frame_size=(160, 120)).stylize(content_photo)
    meter = QualityMeter()
    s_img = cv2.cvtColor(cv2.imread(str(style)), cv2.COLOR_BGR2RGB)
    base = meter.measure(content_photo, content_photo, s_img)["style_meanstd"]
    styled = meter.measure(out, content_photo, s_img)["style_meanstd"]
    assert styled < 0.6 * base, (styled, base)
    e_in = cv2.Laplacian(cv2.cvtColor(content_photo, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    e_out = cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    assert np.corrcoef(np.abs(e_in).ravel(), np.abs(e_out).ravel())[0, 1] > 0.1
    # another VGG16 file (here: the same weights, one value changed) is refused with a clear message
    sd = torch.load(shared / "weights" / "vgg16_imagenet_to_relu4_3.pth", weights_only=True)
    sd["features.0.bias"] = sd["features.0.bias"] + 1e-3
    other = tmp_path / "vgg16_other.pth"
    torch.save(sd, other)
    with pytest.raises(EncoderMismatchError, match="trained against"):
        create_model("adain.vgg16", encoder_path=other)


def test_shipped_msgnet_bank_styles_carry_their_palettes(content_photo: np.ndarray) -> None:
    spec = get_spec("msgnet.lite")
    assert len(spec.styles) == 16 and {"starry_night", "the_scream", "mondrian", "wave"} <= set(spec.styles)
    assert spec.sha256 and "public-domain" in spec.licence and spec.extra["steps"] > 0
    assert "training_command" in spec.extra
    with resources.as_file(resources.files("rtstyle.weights_data").joinpath(spec.weights)) as p:
        assert sha256_file(p) == spec.sha256 and Path(p).stat().st_size < 4_000_000
    st = Stylizer("msgnet.lite")
    outs = {}
    for name in ("starry_night", "the_scream"):
        st.activate(st.prepare(st.state.model, style_vector=name))
        outs[name] = st.stylize(content_photo).astype(float)
        assert np.abs(outs[name] - content_photo).mean() > 15
    # The Scream's orange sky vs The Starry Night's blues: red-minus-blue of the whole output
    def red_minus_blue(img: np.ndarray) -> float:
        return float(img[..., 0].mean() - img[..., 2].mean())

    assert red_minus_blue(outs["the_scream"]) - red_minus_blue(outs["starry_night"]) > 25


def test_shipped_metanet_generates_nets_that_carry_unseen_styles(shared: Path, content_photo: np.ndarray,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``metanet.lite``: checksummed, within the 25 MB budget, names no non-public-domain training
    image; nets generated from paintings it never saw move the photo's style statistics well towards
    each painting and keep the photo's structure; The Scream's net is redder than The Starry Night's."""
    import cv2

    from rtstyle.quality import QualityMeter

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    spec = get_spec("metanet.lite")
    assert spec.needs_style_image and spec.sha256 and spec.extra["steps"] > 0 and "training_command" in spec.extra
    assert "style_images" not in spec.extra and "public-domain" not in spec.licence
    assert {"starry_night", "Utagawa_Hiroshige_Horse_mackerel_and_Prawn_1840"} <= {Path(n).stem for n in spec.extra["held_out_styles"]}
    with resources.as_file(resources.files("rtstyle.weights_data").joinpath(spec.weights)) as p:
        assert sha256_file(p) == spec.sha256 and Path(p).stat().st_size < 25_000_000
    styles = shared / "media" / "styles"
    meter = QualityMeter()
    outs = {}
    for path in (styles / "starry_night.jpg", styles / "public_domain" / "Utagawa_Hiroshige_Horse_mackerel_and_Prawn_1840.jpg",
                 styles / "the_scream.jpg"):
        out = Stylizer("metanet.lite", style_image=str(path), frame_size=(160, 120)).stylize(content_photo)
        outs[path.stem] = out.astype(float)
        s_img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        base = meter.measure(content_photo, content_photo, s_img)["style_meanstd"]
        styled = meter.measure(out, content_photo, s_img)["style_meanstd"]
        assert styled < 0.6 * base, (path.stem, styled, base)  # measured 0.29x and 0.26x for the unseen two
        e_in = cv2.Laplacian(cv2.cvtColor(content_photo, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
        e_out = cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.CV_32F)
        assert np.corrcoef(np.abs(e_in).ravel(), np.abs(e_out).ravel())[0, 1] > 0.1

    def red_minus_blue(img: np.ndarray) -> float:
        return float(img[..., 0].mean() - img[..., 2].mean())

    assert red_minus_blue(outs["the_scream"]) - red_minus_blue(outs["starry_night"]) > 25  # measured ~60


def test_shipped_metanet_int8_style_encoder_keeps_each_painting_apart(shared: Path, content_photo: np.ndarray,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The live mode's int8 style encoder: each painting's int8 features stay far closer to its own
    fp32 features than to another painting's, and the generated net's output moves far less than
    between two paintings (measured: features 5.9 vs >= 30 apart, outputs RMS 4.5 vs >= 22)."""
    from rtstyle.models._style_encoder import int8_available
    from rtstyle.models.metanet import resize_long

    if not int8_available():
        pytest.skip("OpenVINO + NNCF not installed")
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    fp32, int8 = create_model("metanet.lite"), create_model("metanet.lite", style_encoder="int8")
    assert int8.encoder_precision == "int8"
    styles = shared / "media" / "styles"
    imgs = []
    for name in ("starry_night", "the_scream", "wave"):
        img = load_style_image(str(styles / f"{name}.jpg"), max_side=fp32.style_image_side)
        imgs.append(resize_long(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255, fp32.arch.style_size))
    with torch.no_grad():
        f32 = [fp32.encode(x) for x in imgs]
        f8 = [int8.encode(x) for x in imgs]
        z = lambda f: (f - fp32.feat_shift) / fp32.feat_scale  # noqa: E731
        photo = torch.from_numpy(content_photo).permute(2, 0, 1)[None].float()
        photo = photo[:, :, : photo.shape[2] // 4 * 4, : photo.shape[3] // 4 * 4]
        outs32 = [fp32.generate_from_features(f)(photo).clamp(0, 255) for f in f32]
        for i, f in enumerate(f8):
            own = float((z(f) - z(f32[i])).norm())
            others = [float((z(f) - z(g)).norm()) for j, g in enumerate(f32) if j != i]
            assert own < 0.35 * min(others), (i, own, others)
            out = fp32.generate_from_features(f)(photo).clamp(0, 255)
            moved = float((out - outs32[i]).pow(2).mean().sqrt())
            apart = min(float((outs32[j] - outs32[i]).pow(2).mean().sqrt()) for j in range(len(f32)) if j != i)
            assert moved < 0.35 * apart, (i, moved, apart)

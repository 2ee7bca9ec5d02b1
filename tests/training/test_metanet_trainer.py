"""A few real MetaNet training steps on tiny real data: style blocks, guards, resume, report, load, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.models import create_model
from rtstyle.models.metanet import MetaNet
from rtstyle.training.metanet import MetaNetTrainConfig, flat_mask, rotate_hue, train_metanet

TINY = dict(batch=2, size=48, style_size=64, style_every=3, width=4, n_res=1, hidden=8, lr=1e-2,
            checkpoint_every=4, preview_every=6, command="test")


def _photos(shared: Path, folder: Path, n: int) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(sorted((shared / "media" / "photos" / "train_256").glob("*"))[:n]):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.resize(cv2.imread(str(p)), (80, 64)))


def _flat(folder: Path, values: tuple[int, ...]) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for v in values:
        cv2.imwrite(str(folder / f"flat_{v}.png"), np.full((64, 80, 3), v, np.uint8))


@pytest.fixture()
def styles(shared: Path, tmp_path: Path) -> Path:
    import cv2

    folder = tmp_path / "styles"
    folder.mkdir()
    for name in ("starry_night", "mondrian", "wave"):  # wave is held out
        img = cv2.imread(str(shared / "media" / "styles" / f"{name}.jpg"))
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.resize(img, (128, 96)))
    return folder


def test_flat_mask() -> None:
    x = torch.rand(3, 3, 8, 8)
    x[1] = 0.5
    x[2] = 0.5 + 0.001 * torch.randn(3, 8, 8)
    assert flat_mask(x, 0.02).tolist() == [False, True, True]


def test_train_resume_report_and_load(vgg16_path: Path, shared: Path, styles: Path, tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "run"
    _photos(shared, data, 6)
    cfg = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(out), name="metanet.tiny",
                             vgg=str(vgg16_path), exclude=("wave",), steps=12, **dict(TINY, style_crop=1.0))
    path = train_metanet(cfg, progress=False)
    assert path == out / "metanet_tiny.safetensors"
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == list(range(1, 13))
    for b in range(4):  # the style changes every 3 steps, never inside a block
        assert len({h["style_index"] for h in hist[3 * b : 3 * b + 3]}) == 1
    assert {h["style_index"] for h in hist} == {0, 1}  # two training styles (wave is held out), each per round
    assert all(np.isfinite([h["content"], h["style"], h["gen_norm"], h["grad_norm"]]).all() for h in hist)
    assert all(0.5 < h["gen_norm"] < 10 for h in hist)
    for k in (0, 1):  # whole style images: fixed targets; each style's loss falls from its first block to its second
        blocks = [[h["content"] + h["style"] for h in hist[3 * b : 3 * b + 3]]
                  for b in range(4) if hist[3 * b]["style_index"] == k]
        assert np.mean(blocks[1]) < 0.98 * np.mean(blocks[0]), f"style {k}: loss did not fall {blocks}"
    assert (out / "preview_000006.jpg").exists() and (out / "preview_000012.jpg").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["trained_steps"] == 12 and report["nonfinite_batches"] == 0 and report["flat_batches"] == 0

    meta = create_model(f"metanet:{path}", vgg=vgg16_path)
    assert isinstance(meta, MetaNet) and meta.spec.family == "metanet" and meta.spec.needs_style_image
    extra = meta.spec.extra
    assert extra["steps"] == 12 and extra["held_out_styles"] == ["wave.jpg"]
    assert sorted(extra["style_images"]) == ["mondrian.jpg", "starry_night.jpg"]
    assert extra["architecture"]["width"] == 4 and extra["training_report"]["trained_steps"] == 12
    assert meta.vgg_sha256 == extra["vgg_sha256"]
    assert meta.feat_scale.min() > 0 and not torch.equal(meta.feat_scale, torch.ones_like(meta.feat_scale))
    assert meta.feat_shift.abs().sum() > 0  # centred on the training styles
    from rtstyle.image import read_image

    net = meta.generate(read_image(styles / "wave.jpg"), name="wave")  # an unseen style
    assert net.spec.family == "johnson" and net.width == 4

    cfg.steps = 14  # resume continues from the step-12 checkpoint
    train_metanet(cfg, progress=False)
    hist2 = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist2] == list(range(1, 15)) and hist2[:12] == hist
    assert json.loads((out / "report.json").read_text())["trained_steps"] == 14  # counters resumed

    cfg.hidden = 16  # another architecture cannot resume this run
    with pytest.raises(ValueError, match="hidden"):
        train_metanet(cfg, progress=False)


def test_flat_content_is_skipped_and_counted(vgg16_path: Path, shared: Path, styles: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _photos(shared, data, 2)
    _flat(data, (0, 128, 255))  # 3 of 5 images are constant: most batches hold one
    cfg = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "run"), vgg=str(vgg16_path),
                             steps=8, **dict(TINY, preview_every=0))
    train_metanet(cfg, progress=False)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert report["flat_images"] > 0 and report["nonfinite_batches"] == 0
    assert report["trained_steps"] + report["flat_batches"] == 8 == len(hist) + report["flat_batches"]
    assert any(h["batch"] < 2 for h in hist)  # flat images were dropped from mixed batches
    assert all(np.isfinite([h["content"], h["style"], h["gen_norm"]]).all() for h in hist)

    only_flat = tmp_path / "flat_only"
    _flat(only_flat, (0, 77, 255))
    cfg = MetaNetTrainConfig(content=str(only_flat), styles=str(styles), out=str(tmp_path / "run2"),
                             vgg=str(vgg16_path), steps=3, **dict(TINY, preview_every=0))
    path = train_metanet(cfg, progress=False)  # nothing to learn from, but no crash
    report = json.loads((tmp_path / "run2" / "report.json").read_text())
    assert report == dict(report, flat_images=6, flat_batches=3, trained_steps=0)
    meta = create_model(path, vgg=vgg16_path)
    assert all(torch.isfinite(v).all() for v in meta.state_dict().values())


def test_non_finite_loss_skips_the_batch(vgg16_path: Path, shared: Path, styles: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import rtstyle.training.metanet as tm

    data = tmp_path / "data"
    _photos(shared, data, 4)
    calls = {"n": 0}
    real = tm.content_loss

    def poisoned(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return real(a, b) * (float("nan") if calls["n"] in (2, 3) else 1.0)

    monkeypatch.setattr(tm, "content_loss", poisoned)
    cfg = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "run"), vgg=str(vgg16_path),
                             steps=5, **dict(TINY, preview_every=0))
    path = train_metanet(cfg, progress=False)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["nonfinite_batches"] == 2 and report["trained_steps"] == 3
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["step"] for h in hist] == [1, 4, 5]
    meta = create_model(path, vgg=vgg16_path)
    assert all(torch.isfinite(v).all() for v in meta.state_dict().values())


def test_weight_norm_bound_warns_and_counts(vgg16_path: Path, shared: Path, styles: Path, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    _photos(shared, data, 4)
    cfg = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "run"), vgg=str(vgg16_path),
                             steps=3, weight_norm_bound=0.1, **dict(TINY, preview_every=0))
    with caplog.at_level("WARNING", logger="rtstyle.training.metanet"):
        train_metanet(cfg, progress=False)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["weight_norm_warnings"] == 3 and report["max_gen_norm"] > 0.1
    assert any("exceeds the bound" in r.getMessage() for r in caplog.records)


def test_cli_trains_metanet(vgg16_path: Path, shared: Path, styles: Path, tmp_path: Path) -> None:
    from rtstyle.cli import main

    data = tmp_path / "data"
    _photos(shared, data, 3)
    out = tmp_path / "run"
    rc = main(["-q", "train", "metanet", "--content", str(data), "--styles", str(styles), "--out", str(out),
               "--exclude", "wave", "--exclude", "mondrian.jpg", "--name", "metanet.cli", "--vgg", str(vgg16_path),
               "--steps", "2", "--batch", "1", "--size", "32", "--style-size", "48", "--style-every", "1",
               "--width", "4", "--n-res", "1", "--hidden", "4", "--rank", "2", "--preview-every", "0"])
    assert rc == 0
    meta = create_model(out / "metanet_cli.safetensors", vgg=vgg16_path)
    assert meta.arch.rank == 2 and meta.arch.style_size == 48
    assert meta.spec.extra["style_images"] == ["starry_night.jpg"]
    assert sorted(meta.spec.extra["held_out_styles"]) == ["mondrian.jpg", "wave.jpg"]
    assert main(["-q", "train", "metanet", "--content", str(tmp_path / "nope"), "--styles", str(styles),
                 "--out", str(out)]) != 0


def test_warm_start_from_a_johnson_checkpoint(vgg16_path: Path, shared: Path, styles: Path, tmp_path: Path) -> None:
    """``init_from``: the trained meta network's nets start as the given Johnson net (with no style
    gain and no learning they stay it, for every style); the spec records it; a wrong size is refused."""
    from rtstyle.models._spec import ModelSpec
    from rtstyle.models.johnson import TransformerNet, save_rtstyle_weights

    torch.manual_seed(3)
    base = TransformerNet(4, 1).eval()
    spec = ModelSpec(name="johnson.base", family="johnson", description="test base", size_multiple=4,
                     styles=("base",), licence="test")
    ckpt = save_rtstyle_weights(base, spec, tmp_path / "base.safetensors")
    data = tmp_path / "data"
    _photos(shared, data, 3)
    cfg = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "run"), vgg=str(vgg16_path),
                             steps=2, init_from=str(ckpt), init_style_gain=0.0,
                             **dict(TINY, lr=0.0, preview_every=0))
    meta = create_model(train_metanet(cfg, progress=False), vgg=vgg16_path).float()
    assert meta.spec.extra["initialised_from"] == str(ckpt)
    x = torch.rand(1, 3, 32, 48) * 255
    with torch.no_grad():
        ref = base(x)
        for f in (torch.randn(1, 1920), torch.randn(1, 1920)):
            torch.testing.assert_close(meta.stylize(x, f), ref, rtol=0, atol=0.05 * float(ref.abs().mean()))
    bad = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "run2"), vgg=str(vgg16_path),
                             steps=1, init_from="johnson.wave_lite", **dict(TINY, preview_every=0))
    with pytest.raises(ValueError, match="warm start needs"):
        train_metanet(bad, progress=False)


def test_rotate_hue_keeps_luma_and_turns_colors(shared: Path) -> None:
    from rtstyle.image import read_image

    img = torch.from_numpy(read_image(shared / "media" / "styles" / "mondrian.jpg", max_side=64)).permute(2, 0, 1)[None]
    img = img.float() / 255.0
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close(rotate_hue(img, 0.0), img, rtol=0, atol=1e-5)
    torch.testing.assert_close(rotate_hue(img, 2 * np.pi), img, rtol=0, atol=1e-5)
    half = rotate_hue(img, np.pi)
    inside = ((half > 0.001) & (half < 0.999)).all(1, keepdim=True)  # not clipped
    torch.testing.assert_close(((half * luma).sum(1, keepdim=True))[inside], ((img * luma).sum(1, keepdim=True))[inside],
                               rtol=0, atol=1e-4)
    # pure red turns towards cyan half way round
    red = torch.tensor([0.8, 0.2, 0.2]).view(1, 3, 1, 1)
    r, g, b = rotate_hue(red, np.pi).flatten().tolist()
    assert g > r and b > r


def test_warm_start_from_a_meta_network_adds_style_norms(vgg16_path: Path, shared: Path, styles: Path,
                                                          tmp_path: Path) -> None:
    """``init_from`` a trained meta network (file): the run starts as that network (its feature scaling
    too); with ``style_norms`` the new head learns while everything else is carried over; resumable."""
    data = tmp_path / "data"
    _photos(shared, data, 4)
    first = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "a"), vgg=str(vgg16_path),
                               steps=3, exclude=("wave",), **dict(TINY, preview_every=0))
    a = create_model(train_metanet(first, progress=False), vgg=vgg16_path).float()
    frozen = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "b"), vgg=str(vgg16_path),
                                steps=2, init_from=f"metanet:{tmp_path / 'a' / 'metanet_lite.safetensors'}",
                                style_norms=True, style_hue=1.0, **dict(TINY, lr=0.0, preview_every=0))
    b = create_model(train_metanet(frozen, progress=False), vgg=vgg16_path).float()
    assert b.arch.style_norms and not a.arch.style_norms
    torch.testing.assert_close(b.feat_scale, a.feat_scale)
    x = torch.rand(1, 3, 32, 48) * 255
    f = torch.randn(1, 1920)
    with torch.no_grad():
        torch.testing.assert_close(b.stylize(x, f), a.stylize(x, f), rtol=0, atol=0.02)
    learn = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "c"), vgg=str(vgg16_path),
                               steps=3, init_from=frozen.init_from, style_norms=True, style_hue=0.5,
                               **dict(TINY, preview_every=0))
    c = create_model(train_metanet(learn, progress=False), vgg=vgg16_path).float()
    assert float(c.norm_head.weight.abs().max()) > 0
    learn.steps = 5  # resume: the checkpoint carries the style-norm head
    c5 = create_model(train_metanet(learn, progress=False), vgg=vgg16_path).float()
    assert c5.spec.extra["steps"] == 5 and c5.spec.extra["style_hue"] == 0.5
    bad = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "d"), vgg=str(vgg16_path),
                             steps=1, init_from=frozen.init_from, **dict(TINY, hidden=4, preview_every=0))
    with pytest.raises(ValueError, match="hidden"):
        train_metanet(bad, progress=False)
    with pytest.raises(ValueError, match="style_hue"):
        train_metanet(MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "e"),
                                         vgg=str(vgg16_path), steps=1, style_hue=1.5, **TINY), progress=False)


def test_distillation_from_a_teacher(vgg16_path: Path, shared: Path, styles: Path, tmp_path: Path) -> None:
    """``teacher``: the generated nets learn to match an arbitrary-style model's output; the term is added on
    top of the others (same first-step losses), logged, recorded in the spec, and a model that takes no
    style image is refused."""
    from rtstyle.training.distill import load_teacher

    with pytest.raises(ValueError, match="no style image"):
        load_teacher("johnson.wave_lite", "cpu")
    data = tmp_path / "data"
    _photos(shared, data, 4)
    base = dict(TINY, style_crop=1.0, style_every=100, checkpoint_every=100, preview_every=0)
    off = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "off"), name="metanet.tiny",
                             vgg=str(vgg16_path), exclude=("wave", "mondrian"), steps=2, **base)
    train_metanet(off, progress=False)
    on = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "on"), name="metanet.tiny",
                            vgg=str(vgg16_path), exclude=("wave", "mondrian"), steps=2, teacher="linear.r31",
                            teacher_weight=1e5, teacher_style_size=96, **base)
    path = train_metanet(on, progress=False)
    h_off = json.loads((tmp_path / "off" / "history.json").read_text())
    h_on = json.loads((tmp_path / "on" / "history.json").read_text())
    assert all(h["teacher"] > 0 for h in h_on) and all("teacher" not in h for h in h_off)
    assert (h_on[0]["content"], h_on[0]["style"]) == pytest.approx((h_off[0]["content"], h_off[0]["style"]))
    extra = create_model(f"metanet:{path}", vgg=vgg16_path).spec.extra
    assert extra["teacher"] == {"model": "linear.r31", "weight": 1e5, "layers": ["relu2_2", "relu3_3"],
                                "style_size": 96}
    assert extra["style_images"] == ["starry_night.jpg"]  # the teacher saw only the training style

    # with only the distillation term, training moves the generated net's output towards the teacher's
    only = MetaNetTrainConfig(content=str(data), styles=str(styles), out=str(tmp_path / "only"), name="metanet.tiny",
                              vgg=str(vgg16_path), exclude=("wave", "mondrian"), steps=16, teacher="linear.r31",
                              teacher_weight=1e5, teacher_style_size=96, content_weight=0.0, style_weight=0.0,
                              **dict(base, lr=3e-2))
    train_metanet(only, progress=False)
    h = [s["teacher"] for s in json.loads((tmp_path / "only" / "history.json").read_text())]
    assert np.mean(h[-4:]) < 0.9 * np.mean(h[:4]), h  # (seeded: the same crops every run)

"""``--amp``: the choice per (mocked) host, its real effect on dtypes and layout, and ``--report`` from
short real training runs of every family."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.host import HostISA, detect_host, use_host
from rtstyle.training._loop import StepTimer, resolve_amp


def test_auto_per_host() -> None:
    amx = resolve_amp("auto", "cpu", HostISA.mock("amx"))
    assert (amx.mode, amx.channels_last, amx.scaler) == ("bf16", True, None) and "AMX" in amx.reason
    # bf16 in hardware without AMX (AMD Zen 4, Cooper Lake): bf16 too (measured 1.7-2.1x fp32 there)
    zen = resolve_amp("auto", "cpu", HostISA.mock("avx512_bf16"))
    assert (zen.mode, zen.channels_last) == ("bf16", True) and "AVX512_BF16" in zen.reason
    denied = resolve_amp("auto", "cpu", HostISA.mock("amx_denied"))  # tiles denied, AVX512_BF16 still there
    assert denied.mode == "bf16" and "AVX512_BF16" in denied.reason
    for kind in ("avx512", "avx2"):  # bf16 emulated: fp32, NCHW unless asked
        plan = resolve_amp("auto", "cpu", HostISA.mock(kind))
        assert (plan.mode, plan.scaler, plan.channels_last) == ("fp32", None, False) and "fp32" in plan.reason, kind
        assert resolve_amp("auto", "cpu", HostISA.mock(kind), channels_last=True).channels_last
    assert not resolve_amp("auto", "cpu", HostISA.mock("amx"), channels_last=False).channels_last
    with use_host(HostISA.mock("amx")):  # the host comes from rtstyle.host when not given
        assert resolve_amp("auto", "cpu").mode == "bf16"
    with use_host(HostISA.mock("avx512")):
        assert resolve_amp("auto", "cpu").mode == "fp32"


def test_explicit_modes() -> None:
    host = HostISA.mock("avx512")
    assert resolve_amp("bf16", "cpu", host).mode == "bf16" and resolve_amp("bf16", "cpu", host).channels_last
    assert resolve_amp("fp32", "cpu", HostISA.mock("amx")).mode == "fp32"
    assert resolve_amp("off", "cpu", host).mode == "fp32"  # configs written before --amp fp32 existed
    with pytest.raises(ValueError, match="fp16 needs a CUDA"):
        resolve_amp("fp16", "cpu", host)
    with pytest.raises(ValueError, match="--amp must be one of"):
        resolve_amp("int4", "cpu", host)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_on_cuda() -> None:
    plan = resolve_amp("auto", "cuda")
    assert plan.mode == ("bf16" if torch.cuda.is_bf16_supported() else "fp16") and plan.channels_last
    assert (plan.scaler is not None) == (plan.mode == "fp16")


def test_plan_really_changes_dtype_and_layout() -> None:
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.rand(2, 3, 32, 32)
    bf = resolve_amp("bf16", "cpu", HostISA.mock("amx"))
    m = bf.module(conv)
    xb = bf.batch(x)
    assert xb.is_contiguous(memory_format=torch.channels_last)
    with bf.autocast():
        y = m(xb)
    assert y.dtype == torch.bfloat16
    fp = resolve_amp("fp32", "cpu")
    with fp.autocast():
        y = fp.module(torch.nn.Conv2d(3, 8, 3, padding=1))(fp.batch(x))
    assert y.dtype == torch.float32
    assert fp.batch(x) is x and not fp.channels_last  # fp32 on the CPU leaves the layout alone by default


def test_step_timer_drops_warmup() -> None:
    t = StepTimer()
    t.times = [5.0, 3.0, 1.0, 1.2, 0.8]
    assert t.median_after_warmup() == 1.0
    t.times = [5.0]
    assert t.median_after_warmup() == 5.0
    t.times = []
    assert t.median_after_warmup() is None


# ---------------------------------------------------------------------------------- real runs

def _photos(shared: Path, folder: Path, n: int) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(sorted((shared / "media" / "photos" / "train_256").glob("*.jpg"))[:n]):
        cv2.imwrite(str(folder / f"{i}.jpg"), cv2.resize(cv2.imread(str(p)), (80, 64)))
    return folder


def _styles(shared: Path, folder: Path) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("starry_night", "mondrian"):
        cv2.imwrite(str(folder / f"{name}.jpg"), cv2.resize(cv2.imread(str(shared / "media" / "styles" / f"{name}.jpg")), (128, 96)))
    return folder


def _check(rep_path: Path, steps: int, amp: str, family: str) -> dict:
    rep = json.loads(rep_path.read_text())
    assert rep["steps"] == steps and rep["end_step"] == steps and rep["amp"] == amp
    assert rep["wall_s"] > 0 and 0 < rep["step_s_median"] < rep["wall_s"]
    assert rep["channels_last"] == (family == "johnson" or (amp != "fp32" and family != "msgnet"))
    return rep


@pytest.mark.parametrize("family", ["johnson", "msgnet", "adain", "metanet", "linear"])
def test_train_report_every_family(family: str, shared: Path, vgg16_path: Path, tmp_path: Path) -> None:
    from rtstyle.cli import main

    data, styles = _photos(shared, tmp_path / "data", 4), _styles(shared, tmp_path / "styles")
    out, rep = tmp_path / "run", tmp_path / "report.json"
    common = ["--out", str(out), "--vgg", str(vgg16_path), "--steps", "4", "--batch", "1", "--size", "32",
              "--preview-every", "0", "--report", str(rep)]
    args = {
        "johnson": ["--style", str(styles / "mondrian.jpg"), "--data", str(data), "--style-size", "64", "--width", "4",
                    "--n-res", "1"],
        "msgnet": ["--styles", str(styles), "--data", str(data), "--style-sizes", "48", "--bank-sizes", "48",
                   "--ngf", "8", "--n-blocks", "1", "--stem", "8", "--down1", "4", "--up1", "4", "--up2", "4"],
        "adain": ["--content", str(data), "--styles", str(styles), "--base", "4"],
        "metanet": ["--content", str(data), "--styles", str(styles), "--style-size", "48", "--style-every", "1",
                    "--width", "4", "--n-res", "1", "--hidden", "4", "--rank", "2"],
        "linear": ["--content", str(data), "--styles", str(styles), "--k", "8", "--pca-images", "4"],
    }[family]
    with use_host(detect_host()):  # the real host's choice
        assert main(["-q", "train", family, *args, *common]) == 0
    want = "bf16" if detect_host().native_bf16 else "fp32"
    got = _check(rep, 4, want, family)
    assert got["family"] == family and "auto on" in got["amp_reason"]
    if family == "johnson":  # bf16 forced on any host trains too, with finite losses
        rep2 = tmp_path / "report_bf16.json"
        assert main(["-q", "train", family, *args, *common[:-1], str(rep2), "--out", str(tmp_path / "run_bf16"),
                     "--amp", "bf16"]) == 0
        _check(rep2, 4, "bf16", family)
        hist = json.loads((tmp_path / "run_bf16" / "history.json").read_text())
        assert len(hist) == 4 and all(np.isfinite(h["style"]) and h["style"] > 0 for h in hist)

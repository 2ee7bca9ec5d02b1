"""Stylizer: contract-driven pre/post-processing, internal size, atomic swaps, crossfade."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle.frame import Frame
from rtstyle.models import create_model
from rtstyle.stylizer import Stylizer


def test_matches_direct_model_call(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    st = Stylizer(str(tiny_johnson))
    out = st(Frame(content_photo, 0))
    net = create_model(str(tiny_johnson))
    with torch.no_grad():
        ref = net(torch.from_numpy(content_photo).permute(2, 0, 1)[None].float()).clamp(0, 255)
    ref = ref[0].permute(1, 2, 0).add(0.5).byte().numpy()
    assert out.image.shape == content_photo.shape and out.image.dtype == np.uint8
    assert np.abs(out.image.astype(int) - ref.astype(int)).max() <= 1
    assert {"t_pre", "t_infer", "t_post", "style"} <= set(out.meta)


def test_odd_sizes_are_padded_and_cropped(tiny_johnson: Path) -> None:
    st = Stylizer(str(tiny_johnson))
    img = (np.random.default_rng(0).random((37, 53, 3)) * 255).astype(np.uint8)
    assert st.stylize(img).shape == (37, 53, 3)


def test_internal_size(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    st = Stylizer(str(tiny_johnson), size=60)
    assert st.internal_size(640, 480) == (80, 60)
    assert st.stylize(content_photo).shape == content_photo.shape
    st2 = Stylizer(str(tiny_johnson), scale=0.5)
    assert st2.internal_size(640, 480) == (320, 240)
    with pytest.raises(ValueError):
        Stylizer(str(tiny_johnson), size=60, scale=0.5)


def test_swap_is_atomic_and_crossfades(tiny_johnson: Path, engstrom_udnie: Path, content_photo: np.ndarray) -> None:
    st = Stylizer(str(tiny_johnson), crossfade=0)
    first = st.state
    a = st.stylize(content_photo)
    state_b = st.prepare(str(engstrom_udnie))
    assert st.stylize(content_photo).tobytes() == a.tobytes(), "prepare must not change the active style"
    st.activate(state_b, crossfade=3)
    fades = [st.stylize(content_photo) for _ in range(4)]
    b = fades[-1]
    assert np.abs(b.astype(int) - a.astype(int)).mean() > 5
    # crossfade frames lie between a and b, moving towards b
    d = [np.abs(f.astype(int) - b.astype(int)).mean() for f in fades]
    assert d[0] > d[1] > d[2] > d[3] == 0
    # switching back uses the cached state (no rebuild), and that state stylises as it did
    back = st.prepare(str(tiny_johnson))
    assert back is first and back.runner is first.runner
    st.activate(back, crossfade=0)
    assert st.stylize(content_photo).tobytes() == a.tobytes()
    st.activate(state_b, crossfade=0)
    assert st.stylize(content_photo).tobytes() == b.tobytes()
    fut = st.set_style(str(tiny_johnson), crossfade=0)
    fut.result(timeout=30)
    assert st.stylize(content_photo).tobytes() == a.tobytes()


def test_style_image_rejected_for_single_style_model(tiny_johnson: Path, content_photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match="takes no style image"):
        Stylizer(str(tiny_johnson), style_image=content_photo)


def test_style_encoder_precision_reaches_the_model(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``style_encoder="int8"`` is set on models with a style encoder (MetaNet) built by name, also for
    later style changes; other models ignore it; unknown values are refused."""
    from rtstyle.models._style_encoder import int8_available

    with pytest.raises(ValueError, match="style_encoder"):
        Stylizer("johnson.wave_lite", style_encoder="fp16")
    Stylizer("johnson.wave_lite", style_encoder="int8", frame_size=(64, 48)).close()  # no encoder: ignored
    if not int8_available():
        pytest.skip("OpenVINO + NNCF not installed")
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    styles = shared / "media" / "styles"
    st = Stylizer("metanet.lite", style_image=str(styles / "wave.jpg"), style_encoder="int8", frame_size=(64, 48))
    meta = st.state.model
    assert meta.encoder_precision == "int8"
    st.set_style(style_image=str(styles / "udnie.jpg"), wait=True)
    assert st.state.model is meta and "udnie" in st.state.name
    assert meta.vgg.__dict__["_rtstyle_metanet_encoder_int8"].used == "openvino-int8"
    st.close()


def test_bank_style_switch_reuses_the_runner_and_matches_a_fresh_prepare(content_photo: np.ndarray) -> None:
    """A style that is only an input (MSG-Net's bank) reuses the prepared runner of the same module,
    and stylises exactly as a Stylizer prepared for that style from scratch."""
    img = np.ascontiguousarray(content_photo[:96, :128])
    st = Stylizer("msgnet.lite", frame_size=(128, 96))
    first = st.state.runner
    before = st.stylize(img)
    st.set_style(style_vector="the_scream", wait=True)
    assert st.state.runner is first and "the_scream" in st.state.name
    after = st.stylize(img)
    ref = Stylizer("msgnet.lite", frame_size=(128, 96))
    ref.set_style(style_vector="the_scream", wait=True)
    assert ref.state.runner is not first
    np.testing.assert_array_equal(after, ref.stylize(img))
    assert np.abs(after.astype(float) - before.astype(float)).mean() > 5
    st.set_style("johnson.wave_lite", wait=True)  # another module: its own runner
    assert st.state.runner is not first
    st.close()
    ref.close()


def test_prepared_styles_are_kept_least_recently_used_first_never_the_active_one(content_photo: np.ndarray) -> None:
    """The style cache is bounded: the least recently used state goes first, the active one stays, and a
    shared runner is dropped with the last state that uses it."""
    img = np.ascontiguousarray(content_photo[:96, :128])
    st = Stylizer("msgnet.lite", frame_size=(128, 96))
    st.max_cached_styles = 2
    active = st.state  # the default bank style, prepared first: the oldest entry
    scream = st.prepare("msgnet.lite", style_vector="the_scream")
    st.prepare("msgnet.lite", style_vector="wave")  # over the limit: the active state is skipped
    assert len(st._cache) == 2 and active in st._cache.values() and scream not in st._cache.values()
    assert st.prepare("msgnet.lite", style_vector="the_scream") is not scream  # prepared again
    st.stylize(img)
    assert st.state is active
    st.set_style("johnson.wave_lite", wait=True)
    for _ in range(2):  # the MSG-Net states leave; so does their shared runner
        st.prepare("johnson.starry_night_lite")
        st.prepare("johnson.wave_lite")
    assert all(s.spec.family == "johnson" for s in st._cache.values())
    assert not st._runners  # Johnson nets have no style inputs: nothing shared is kept
    assert st.stylize(img).shape == img.shape
    st.close()


def test_background_style_build_never_holds_process_exit():
    """A user who quits while a style is still being built must not wait for the build."""
    import subprocess
    import sys
    import time

    code = (
        "import time\n"
        "from rtstyle.stylizer import _Preparer\n"
        "p = _Preparer()\n"
        "assert p.submit(lambda: 41 + 1).result() == 42\n"
        "slow = p.submit(lambda: time.sleep(60))\n"
        "queued = p.submit(lambda: 5)\n"
        "time.sleep(0.2)\n"
        "p.shutdown(wait=False, cancel_futures=True)\n"
        "assert queued.cancelled() and not slow.done()\n"
        "print('exiting')\n"
    )
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "exiting"
    assert time.monotonic() - t0 < 45  # the 60 s build was not joined


def test_stylizer_probes_at_most_three_model_attributes() -> None:
    """Model abilities are declared (rtstyle.models._abilities) and tested with ``isinstance``; the
    Stylizer discovers at most three attributes with ``getattr``/``hasattr`` (on anything but itself)."""
    import ast

    import rtstyle.stylizer as mod

    tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
    probes = [n.lineno for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "hasattr")
              and not (n.args and isinstance(n.args[0], ast.Name) and n.args[0].id == "self")]
    assert len(probes) <= 3, f"rtstyle/stylizer.py probes attributes at lines {probes}: declare an ability instead"

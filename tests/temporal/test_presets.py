"""Mode presets: plain data that resolves to a model, a backend and a fresh stabiliser."""
from __future__ import annotations

import pytest

from rtstyle.models import list_models
from rtstyle.temporal import FlowStabilizer
from rtstyle.temporal.presets import MODE_PRESETS, get_mode_preset
from rtstyle.temporal.stabilize import PRESETS


def test_stable_preset_resolves() -> None:
    p = get_mode_preset("stable")
    assert p.model in list_models() and p.temporal_preset in PRESETS
    assert p.model == "adain.r31"  # the most stable arbitrary-style family in docs/temporal.md
    kw = p.stylizer_kwargs()
    assert kw["backend"] == "eager" and isinstance(kw["temporal"], FlowStabilizer)
    assert kw["temporal"].config.gate
    # a fresh filter per stream: state must never leak between two videos
    assert p.temporal() is not p.temporal()
    assert p.stylizer_kwargs(backend="openvino")["backend"] == "openvino"


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="known: " + ", ".join(MODE_PRESETS)):
        get_mode_preset("steady")


def test_stable_preset_stylizes_a_real_clip(shared_weights, content_photo, monkeypatch) -> None:
    import numpy as np

    from rtstyle.stylizer import Stylizer

    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared_weights))
    p = get_mode_preset("stable")
    kw = p.stylizer_kwargs()
    st = Stylizer(p.model, style_image=np.ascontiguousarray(content_photo[::-1]), frame_size=(96, 64), **kw)
    try:
        frames = [np.ascontiguousarray(content_photo[10:74, x:x + 96]) for x in (0, 2, 4)]
        outs = [st.stylize(f) for f in frames]
    finally:
        st.close()
    assert all(o.shape == (64, 96, 3) and o.dtype == np.uint8 for o in outs)
    assert kw["temporal"].carried > 0.5  # a slow pan: the gated stabiliser carries most of the frame

"""evaluate_temporal: one stylisation pass, all variants, JSON-ready results."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtstyle.temporal import read_flo
from rtstyle.temporal.evaluate import evaluate_temporal, load_frames, resize_flow


def test_resize_flow_scales_vectors() -> None:
    f = np.zeros((10, 20, 2), np.float32)
    f[..., 0], f[..., 1] = 4.0, -2.0
    g = resize_flow(f, (10, 5))
    assert g.shape == (5, 10, 2)
    np.testing.assert_allclose(g[..., 0], 2.0)
    np.testing.assert_allclose(g[..., 1], -1.0)


def test_evaluate_on_synthetic_with_exact_flow(shared: Path, tiny_johnson: Path) -> None:
    d = shared / "media" / "flow" / "synthetic"
    frames = load_frames(d, max_frames=3)
    flows = [read_flo(d / f"flow_{t:04d}_{t + 1:04d}.flo") for t in range(2)]
    res = evaluate_temporal(frames, str(tiny_johnson), temporal=0.8, flow="gt", flows=flows,
                            extra_flow=("dis",), max_size=(192, 108))
    json.dumps(res)
    assert res["frames"] == 3 and res["size"] == [192, 108] and res["source_size"] == [384, 216]
    v = res["variants"]
    assert set(v) == {"per_frame", "file", "live"}
    assert set(v["per_frame"]["warping_error_by_flow"]) == {"gt", "dis"}
    assert len(v["per_frame"]["pair_errors"]) == 2
    for label in ("file", "live"):
        assert v[label]["stabilize"]["median_s"] > 0
        assert v[label]["warping_error"] <= v["per_frame"]["warping_error"] * 1.01
        assert "warping_error_reduction" in v[label]
    assert "style_loss" not in v["per_frame"]  # no style image given


def test_argument_checks(tiny_johnson: Path) -> None:
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    with pytest.raises(ValueError, match="ground-truth"):
        evaluate_temporal(frames, str(tiny_johnson), flow="gt")
    with pytest.raises(ValueError, match="flow must be"):
        evaluate_temporal(frames, str(tiny_johnson), flow="raft")
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_temporal(frames[:1], str(tiny_johnson))

"""The held-out matrix metric: accuracy and matched ratio on constructed cases and real paintings."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from rtstyle.eval.arbitrary import HELD_OUT_STYLES, gram_distances, held_out_paths, markdown_table, matrix_scores


def test_scores_of_a_constructed_matrix() -> None:
    # 2 contents x 3 paintings; output [c, s] is nearest to painting s except for one cell
    d = np.full((2, 3, 3), 5.0)
    for s in range(3):
        d[:, s, s] = 1.0
    d[1, 2, 0] = 0.5  # content 1 with painting 2 came out nearer to painting 0: a miss
    c2s = np.full((2, 3), 4.0)
    acc, ratio = matrix_scores(d, c2s)
    assert acc == pytest.approx(5 / 6)
    assert ratio == pytest.approx(0.25)


def test_a_tie_is_a_miss_and_bad_shapes_fail() -> None:
    d = np.ones((1, 2, 2))
    assert matrix_scores(d, np.ones((1, 2)))[0] == 0.0
    with pytest.raises(ValueError):
        matrix_scores(np.ones((1, 2, 3)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="undefined"):
        matrix_scores(d, np.zeros((1, 2)))


@pytest.fixture(scope="module")
def meter(vgg16_path: Path):  # type: ignore[no-untyped-def]
    from rtstyle.quality import QualityMeter
    from rtstyle.nn import load_vgg16

    return QualityMeter(load_vgg16(vgg16_path, taps=("relu1_2", "relu2_2", "relu3_3", "relu4_1", "relu4_3")))


def test_an_output_equal_to_a_painting_is_classified_to_it(meter, shared: Path, content_photo: np.ndarray,  # type: ignore[no-untyped-def]
                                                           read_rgb: Callable[..., np.ndarray]) -> None:
    paintings = [read_rgb(p, (160, 120)) for p in held_out_paths(shared / "media" / "styles")]
    s_stats = [meter.stats(p) for p in paintings]
    c_stats = [meter.stats(content_photo)]
    # "outputs" that are the paintings themselves: each is at distance 0 from its own painting
    outs = np.stack([gram_distances(meter, s_stats, s_stats)])
    assert np.allclose(np.diagonal(outs[0]), 0.0)
    acc, ratio = matrix_scores(outs, gram_distances(meter, c_stats, s_stats))
    assert acc == 1.0 and ratio == pytest.approx(0.0, abs=1e-9)
    # and outputs that are the content photo for every painting: ratio 1, nothing carried
    same = np.stack([gram_distances(meter, c_stats * 3, s_stats)])
    acc0, ratio0 = matrix_scores(same, gram_distances(meter, c_stats, s_stats))
    assert ratio0 == pytest.approx(1.0) and acc0 <= 1 / 3 + 1e-9


def test_held_out_paintings_are_public_domain_files(shared: Path) -> None:
    paths = held_out_paths(shared / "media" / "styles")
    assert [p.stem for p in paths] == list(HELD_OUT_STYLES)
    assert all(p.parent.name == "public_domain" for p in paths)
    with pytest.raises(FileNotFoundError, match="not_a_painting"):
        held_out_paths(shared / "media" / "styles", ["not_a_painting"])


def test_markdown_table_marks_the_goal() -> None:
    from rtstyle.eval.arbitrary import MatrixResult

    good = MatrixResult("a.good", [], [], np.zeros((0, 2, 2)), np.zeros((0, 2)), 0.89, 0.5, 0.01)
    bad = MatrixResult("b.bad", [], [], np.zeros((0, 2, 2)), np.zeros((0, 2)), 0.89, 0.7)
    text = markdown_table([good, bad])
    assert "| `a.good` | 0.89 | 0.50 | yes |" in text and "| `b.bad` | 0.89 | 0.70 | no |" in text

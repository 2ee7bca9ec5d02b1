"""rtstyle.eval's loss tables: the training loss as a metric, model entries, style identification."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rtstyle.eval import LossWeights, ModelEntry, StyleIdentification, TrainingLoss, markdown_table, parse_model_entry


class _TinyFeatures(nn.Module):
    """A fixed random conv stack returning named taps, standing in for the VGG16."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        fa = torch.relu(self.a(x))
        fb = torch.relu(self.b(fa))
        return {"relu1_2": fa, "relu2_2": fb}


def _img(seed: int, h: int = 32, w: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def loss() -> TrainingLoss:
    w = LossWeights(content=2.0, style=3.0, content_layer="relu2_2", style_layers=("relu1_2", "relu2_2"))
    return TrainingLoss(w, vgg=_TinyFeatures())


def test_default_weights_are_the_training_configs() -> None:
    from rtstyle.training.johnson import JohnsonTrainConfig

    cfg = JohnsonTrainConfig(style="s.jpg", data="d", out="o")
    w = LossWeights()
    assert (w.content, w.style) == (cfg.content_weight, cfg.style_weight)
    assert w.content_layer == "relu2_2" and w.style_layers == ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def test_score_is_zero_on_itself_and_weighted(loss: TrainingLoss) -> None:
    a, b = _img(1), _img(2)
    ta, tb = loss.style_target(a, None), loss.style_target(b, None)
    c, (s_a, s_b) = loss.score(a, loss.content_features(a), [ta, tb])
    assert c == 0.0 and s_a == pytest.approx(0.0, abs=1e-12) and s_b > 0
    c2, (s2,) = loss.score(b, loss.content_features(a), [ta])
    assert c2 > 0 and s2 == pytest.approx(s_b, rel=1e-5)  # Gram distance is symmetric
    # the weights scale the terms linearly
    loss1 = TrainingLoss(LossWeights(1.0, 1.0, "relu2_2", ("relu1_2", "relu2_2")), vgg=loss.vgg)
    c1, (s1,) = loss1.score(b, loss1.content_features(a), [ta])
    assert c2 == pytest.approx(2.0 * c1) and s2 == pytest.approx(3.0 * s1)


def test_score_refuses_different_sizes(loss: TrainingLoss) -> None:
    with pytest.raises(ValueError, match="differ in size"):
        loss.score(_img(1, 32, 48), loss.content_features(_img(1, 64, 48)), [])


def test_model_entries() -> None:
    assert parse_model_entry("Johnson lite=johnson.{style}_lite") == ModelEntry("Johnson lite", "johnson.{style}_lite", "")
    assert parse_model_entry("M = msgnet.lite#bank") == ModelEntry("M", "msgnet.lite", "bank")
    for bad in ("nolabel", "=x", "a=b#what"):
        with pytest.raises(ValueError):
            parse_model_entry(bad)


def test_markdown_table() -> None:
    rows = [{"style": "wave", "model": "J", "content": 2.09e5, "style_loss": 9.46e4, "total": 3.036e5}]
    assert markdown_table(rows).splitlines() == ["| style | model | content loss | style loss | total |",
                                                 "|---|---|---|---|---|", "| wave | J | 2.09e+05 | 9.46e+04 | 3.04e+05 |"]


def test_style_identification_ranks_and_margins() -> None:
    loss = np.array([[1.0, 3.0, 2.0], [4.0, 2.0, 1.0], [5.0, 6.0, 2.5]])
    r = StyleIdentification(["a", "b", "c"], loss, np.zeros(3), [1, 2, 1], [[], [], []], [])
    assert r.carried == 2
    assert r.margins() == pytest.approx([2.0, 0.5, 2.0])
    assert r.to_json()["rank_of_own_style"] == [1, 2, 1]

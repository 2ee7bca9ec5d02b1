"""Fixtures of the model tests."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def lst(shared_weights: Path) -> dict[str, Path]:
    """The pretrained relu3_1 encoder/decoder files, as the ``*_path`` options of the LST-based models."""
    d = shared_weights / "lst"
    return {"encoder_path": d / "vgg_r31.pth", "decoder_path": d / "dec_r31.pth"}

"""linear.r31 training: held-out paintings never enter the style list; the config documents its flags."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rtstyle.eval.arbitrary import HELD_OUT_STYLES
from rtstyle.training.linear import LinearTrainConfig, training_styles


def test_held_out_names_never_enter_the_training_list(tmp_path: Path) -> None:
    import cv2

    for sub, stem in [("", "wave"), ("public_domain", HELD_OUT_STYLES[0]), ("public_domain", "Renoir"),
                      ("extra", HELD_OUT_STYLES[1]), ("extra", "sketch")]:
        (tmp_path / sub).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / sub / f"{stem}.jpg"), np.full((8, 8, 3), 128, np.uint8))
    files = training_styles(tmp_path, LinearTrainConfig.__dataclass_fields__["exclude"].default)
    assert sorted(p.stem for p in files) == ["Renoir", "sketch", "wave"]
    with pytest.raises(FileNotFoundError, match="no style images left"):
        training_styles(tmp_path / "extra", ("sketch", HELD_OUT_STYLES[1]))


def test_held_out_names_are_absent_from_the_shared_training_list(shared: Path) -> None:
    files = training_styles(shared / "media" / "styles", HELD_OUT_STYLES)
    stems = {p.stem for p in files}
    assert stems.isdisjoint(HELD_OUT_STYLES)
    assert len(files) >= 100  # classic + public_domain/ + extra/


def test_shipped_transform_records_its_held_out_list() -> None:
    from rtstyle.models import get_spec, list_models

    assert "linear.r31" in list_models()  # shipped in rtstyle/weights_data
    extra = get_spec("linear.r31").extra
    assert set(HELD_OUT_STYLES) <= set(extra["held_out_styles"])
    assert "--exclude" not in extra["training_command"] or all(n in extra["training_command"] for n in HELD_OUT_STYLES)


def test_every_config_field_but_the_recorded_command_is_a_flag() -> None:
    from rtstyle.cli import build_parser
    from rtstyle.cli.train import config_from_args

    no_help = {f.name for f in dataclasses.fields(LinearTrainConfig) if not f.metadata.get("help")}
    assert no_help == {"command"}
    args = build_parser().parse_args(["train", "linear", "--content", "c", "--styles", "s", "--out", "o",
                                      "--exclude", "a", "--exclude", "b", "--k", "16"])
    cfg = config_from_args(LinearTrainConfig, args)
    assert (tuple(cfg.exclude), cfg.k, cfg.out) == (("a", "b"), 16, "o")

"""tools/eval_arbitrary.py: the held-out matrix of one arbitrary-style model on tiny inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_small_run(tool, tmp_path: Path, shared: Path, vgg16_path: Path, photo_files,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    photos = photo_files(1, (128, 96))
    styles = [shared / "media" / "styles" / f"{n}.jpg" for n in ("wave", "mondrian")]
    out = tmp_path / "arb"
    assert tool("eval_arbitrary").main(["--model", "adain.vgg16", "--contents", *map(str, photos),
                                        "--styles", *map(str, styles), "--size", "64", "--cell", "64",
                                        "--vgg", str(vgg16_path), "--out", str(out)]) == 0
    rep = json.loads((out / "arbitrary.json").read_text())
    (res,) = rep["results"]
    assert res["model"] == "adain.vgg16" and rep["failed"] == {}
    assert 0.0 <= res["accuracy"] <= 1.0 and res["matched_ratio"] > 0
    assert sorted(c["style"] for c in res["cells"]) == ["mondrian", "wave"]
    assert all(len(c["gram_to_each"]) == 2 for c in res["cells"])
    assert "adain.vgg16" in (out / "arbitrary.md").read_text()
    assert (out / "grid.jpg").is_file()
    # --style-size: the models get the paintings at another size, the distances stay against --size
    out2 = tmp_path / "arb2"
    assert tool("eval_arbitrary").main(["--model", "adain.vgg16", "--contents", *map(str, photos),
                                        "--styles", *map(str, styles), "--size", "64", "--style-size", "160",
                                        "--cell", "64", "--vgg", str(vgg16_path), "--out", str(out2)]) == 0
    rep2 = json.loads((out2 / "arbitrary.json").read_text())
    assert (rep["style_size"], rep2["style_size"]) == (64, 160)
    (res2,) = rep2["results"]
    assert [c["gram_to_each"] for c in res2["cells"]] != [c["gram_to_each"] for c in res["cells"]]

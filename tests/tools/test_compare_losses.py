"""tools/compare_losses.py: the training loss of shipped nets through the Stylizer, as a table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_own_style_net_scores_best(tool, tmp_path: Path, shared: Path, vgg16_path: Path, photo_files,
                                   capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_WEIGHTS", str(shared / "weights"))
    photo_files(2, (128, 96))
    out = tmp_path / "losses.json"
    assert tool("compare_losses").main([
        "--styles", "wave", "--style-dir", str(shared / "media" / "styles"),
        "--model", "wave net=johnson.{style}_lite", "--model", "starry net=johnson.starry_night_lite",
        "--contents", str(tmp_path), "--size", "96", "--vgg", str(vgg16_path), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    rows = {r["model"]: r for r in rep["rows"]}
    assert rep["photos"] == 2 and set(rows) == {"wave net", "starry net"}
    assert rows["wave net"]["spec"] == "johnson.wave_lite"
    # the net trained on The Great Wave is closer to it than the Starry Night net
    assert rows["wave net"]["style_loss"] < 0.5 * rows["starry net"]["style_loss"]
    for r in rows.values():
        assert r["total"] == pytest.approx(r["content"] + r["style_loss"])
        assert len(r["per_photo"]["style"]) == 2
    assert rep["settings"]["content_weight"] == "100000.0"  # the training config's weight
    assert "| wave | wave net |" in capsys.readouterr().out


def test_bad_model_entry(tool, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        tool("compare_losses").main(["--styles", "wave", "--model", "x=johnson.wave_lite#nope",
                                     "--contents", str(tmp_path)])
    assert e.value.code == 2

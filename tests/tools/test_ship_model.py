"""tools/ship_model.py copies a trained file into a weights folder and records it in the manifest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from rtstyle.weights import sha256_file

PKG = Path(__file__).resolve().parents[2] / "rtstyle" / "weights_data"


def test_ships_into_a_weights_folder(tool, tmp_path: Path) -> None:
    manifest = json.loads((PKG / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["spec"]["name"] == "johnson.wave_lite")
    trained = tmp_path / "run" / entry["spec"]["weights"]
    trained.parent.mkdir()
    shutil.copyfile(PKG / entry["spec"]["weights"], trained)  # a file written by `rtstyle train` (spec in metadata)
    pkg = tmp_path / "weights_data"
    pkg.mkdir()
    other = {"spec": {"name": "someone.else"}, "bytes": 1}
    (pkg / "manifest.json").write_text(json.dumps({"models": [other]}))

    assert tool("ship_model").main([str(trained), "--default-size", "200", "--package-dir", str(pkg)]) == 0

    got = json.loads((pkg / "manifest.json").read_text())["models"]
    assert [m["spec"]["name"] for m in got] == ["johnson.wave_lite", "someone.else"]  # sorted, the other kept
    spec = got[0]["spec"]
    assert spec["default_size"] == 200
    assert spec["sha256"] == sha256_file(pkg / spec["weights"]) == sha256_file(trained)
    assert got[0]["bytes"] == trained.stat().st_size
    assert not list(pkg.glob(".*.part"))

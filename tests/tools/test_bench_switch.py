"""tools/bench_switch.py: style switches of MSG-Net's bank in a running live pipeline."""
from __future__ import annotations

import json
from pathlib import Path


def test_bank_switches(tool, tmp_path: Path) -> None:
    out = tmp_path / "sw.json"
    assert tool("bench_switch").main(["--model", "msgnet.lite", "--bank", "wave", "udnie", "--backend", "eager",
                                      "--size", "160x120", "--internal", "64", "--warmup", "0.5", "--settle", "0.1",
                                      "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    rows = rep["rows"]
    assert [(r["pass"], json.loads(r["switch"])["style_vector"]) for r in rows] == [
        (1, "wave"), (1, "udnie"), (2, "wave"), (2, "udnie")]
    assert all(r["latency_ms"] > 0 for r in rows)
    assert rep["summary"]["pass1"]["max_latency_ms"] >= rep["summary"]["pass1"]["median_latency_ms"]


def test_model_options_build_the_model_switched(tool, tmp_path: Path) -> None:
    out = tmp_path / "sw.json"
    assert tool("bench_switch").main(["--model", "msgnet.lite", "--model-option", "brush=192", "--bank", "wave",
                                      "--backend", "eager", "--size", "160x120", "--internal", "64", "--warmup", "0.5",
                                      "--settle", "0.1", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["model_options"] == ["brush=192"] and {r["model"] for r in rep["rows"]} == {"msgnet.lite"}


def test_needs_something_to_switch_to(tool) -> None:
    import pytest

    with pytest.raises(SystemExit) as e:
        tool("bench_switch").main(["--model", "msgnet.lite"])
    assert e.value.code == 2

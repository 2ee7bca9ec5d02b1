"""tools/soak.py for a few seconds: a real live run, real control requests, the JSON it writes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.network
def test_soak_smoke(tmp_path: Path) -> None:
    pytest.importorskip("av")
    pytest.importorskip("aiohttp")  # the control endpoint
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "soak.py"), "--minutes", "0.1", "--sample-s", "1",
                           "--size", "64", "--source", "synthetic:160x120@25", "--backend", "eager",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    c = r["control"]
    assert c["style_changes_sent"] >= 4 and c["style_changes_answered"] == c["style_changes_sent"]
    assert c["status_answered"] == c["status_sent"] >= 4
    assert r["exit_code"] == 0 and r["token_flag"] is True
    # every style change reached the stylizer
    assert r["live_report"]["swaps"] >= c["style_changes_answered"] - 1
    samples = r["samples"]
    assert len(samples) >= 4 and all(s["rss_mb"] and s["rss_mb"] > 50 for s in samples)
    assert r["rss_first_mb"]["count"] >= 1 and r["rss_last_mb"]["count"] >= 1
    assert r["latency_p95_over_time"] and all(b["p95_ms_median"] > 0 for b in r["latency_p95_over_time"])
    # the UDP sink kept sending during the run (how steadily depends on the machine's load)
    assert r["udp_bytes_received"] > 5_000 and samples[-1]["udp_bytes"] > samples[0]["udp_bytes"]
    assert 0 <= r["udp_silent_samples"] < len(samples)

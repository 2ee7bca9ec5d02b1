"""The live control endpoint on 127.0.0.1: status, style swap, pause, stop."""
from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from rtstyle.control import ControlServer
from rtstyle.io import SyntheticSource
from rtstyle.io.null import NullSink
from rtstyle.pipeline import Pipeline
from rtstyle.stylizer import Stylizer


def _call(port: int, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_control_endpoint_swaps_pauses_and_stops(tiny_johnson: Path, engstrom_udnie: Path) -> None:
    sink = NullSink(lossless=False)
    st = Stylizer(str(tiny_johnson))
    with SyntheticSource(96, 64, fps=30, live=True) as src:
        pipe = Pipeline(src, st, [sink], live=True, styles=[str(tiny_johnson), str(engstrom_udnie)])
        pipe.start()
        with ControlServer(pipe, port=0) as ctl:
            time.sleep(0.3)
            s = _call(ctl.port, "/status")
            assert s["frames_out"] > 0 and s["style"] == str(tiny_johnson)
            r = _call(ctl.port, "/style", {"model": str(engstrom_udnie)})
            assert r["ok"] and r["style"] == str(engstrom_udnie)
            time.sleep(0.3)
            assert sink.last is not None and sink.last.meta["style"] == str(engstrom_udnie)
            _call(ctl.port, "/pause", {})
            time.sleep(0.2)
            n = sink.count
            time.sleep(0.3)
            assert sink.count == n, "paused pipeline must not output frames"
            _call(ctl.port, "/pause", {})
            _call(ctl.port, "/next", {})
            _call(ctl.port, "/stop", {})
            assert pipe.wait(10)
        pipe.stats.ended = time.perf_counter()
    assert st.swaps >= 1

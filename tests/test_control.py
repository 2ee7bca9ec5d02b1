"""The live control endpoint on a real running pipeline: its refusals, and what it does with the token."""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("aiohttp", reason="the control endpoint needs aiohttp (pip install 'rtstyle[control]')")

from rtstyle.control import ControlServer  # noqa: E402
from rtstyle.io import NullSink, SyntheticSource  # noqa: E402
from rtstyle.pipeline import Pipeline  # noqa: E402
from rtstyle.stylizer import Stylizer  # noqa: E402

from helpers import wait_for  # noqa: E402

CYCLE = ["johnson.wave_lite", "johnson.starry_night_lite"]


class Live:
    """A running pipeline (synthetic source, shipped lite models, null sink) behind a ControlServer."""

    def __init__(self, pipe: Pipeline, sink: NullSink, ctl: ControlServer) -> None:
        self.pipe, self.sink, self.ctl = pipe, sink, ctl

    def call(self, path: str, body: dict | None = None, *, method: str | None = None,
             headers: dict[str, str] | None = None, token: bool = True) -> tuple[int, dict, Any]:
        h = {"Authorization": f"Bearer {self.ctl.token}"} if token else {}
        h.update(headers or {})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.ctl.port}{path}", data=data, headers=h,
                                     method=method or ("GET" if body is None else "POST"))
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                raw, status, hdrs = r.read(), r.status, dict(r.headers)
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, dict(e.headers)
        is_json = hdrs.get("Content-Type", "").startswith("application/json")
        return status, hdrs, json.loads(raw) if is_json else raw

    def raw(self, head: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send a hand-made request (``{port}``/``{token}`` filled in); the status and the headers.
        A server that waited for a body it was never sent would trip the socket timeout."""
        req = head.replace("{port}", str(self.ctl.port)).replace("{token}", self.ctl.token)
        with socket.create_connection(("127.0.0.1", self.ctl.port), timeout=20) as s:
            s.sendall(req.replace("\n", "\r\n").encode() + b"\r\n" + body)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return int(data.split(b" ", 2)[1]), data

    def status(self) -> dict:
        code, _, body = self.call("/status")
        assert code == 200, body
        return body


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    sink = NullSink(lossless=False)
    st = Stylizer(CYCLE[0])
    with SyntheticSource(96, 64, fps=15, live=True) as src:
        pipe = Pipeline(src, st, [sink], live=True, styles=CYCLE)
        pipe.start()
        try:
            with ControlServer(pipe, port=0) as ctl:
                lv = Live(pipe, sink, ctl)
                wait_for(lambda: sink.count > 0, "the first output frame")
                yield lv
        finally:
            pipe.stop()
            pipe.wait(30)
            st.close()


def _unchanged(live: Live) -> Callable[[], None]:
    before = (live.pipe.stylizer.swaps, live.pipe.paused.is_set(), live.pipe._stop.is_set())

    def check() -> None:
        assert (live.pipe.stylizer.swaps, live.pipe.paused.is_set(), live.pipe._stop.is_set()) == before, \
            "a refused request changed the run"
    return check


REFUSALS = {
    "no token": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Length: 0\n", 401),
    "wrong token": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer nope-nope-nope\n"
                    "Content-Length: 0\n", 403),
    "wrong token in the URL": ("POST /pause?token=nope-nope-nope HTTP/1.1\nHost: 127.0.0.1:{port}\n"
                               "Content-Length: 0\n", 403),
    # what any web page can send without a CORS preflight, as in the issue: refused even with the token
    "foreign Origin": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nOrigin: http://evil.example\n"
                       "Content-Type: text/plain\nAuthorization: Bearer {token}\nContent-Length: 2\n", 403),
    "Origin null": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nOrigin: null\nAuthorization: Bearer {token}\n"
                    "Content-Length: 0\n", 403),
    "same-site fetch (another port)": ("GET /preview.jpg HTTP/1.1\nHost: 127.0.0.1:{port}\nSec-Fetch-Site: same-site\n"
                                       "Authorization: Bearer {token}\n", 403),
    "cross-site fetch": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nSec-Fetch-Site: cross-site\n"
                         "Authorization: Bearer {token}\nContent-Length: 0\n", 403),
    # DNS rebinding: a foreign name that resolves to 127.0.0.1
    "foreign Host": ("POST /pause HTTP/1.1\nHost: evil.example:{port}\nAuthorization: Bearer {token}\n"
                     "Content-Length: 0\n", 421),
    "Host without the port": ("POST /pause HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {token}\n"
                              "Content-Length: 0\n", 421),
    "negative Content-Length": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {token}\n"
                                "Content-Length: -1\n", 400),
    "malformed Content-Length": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {token}\n"
                                 "Content-Length: 12abc\n", 400),
    "two Content-Lengths": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {token}\n"
                            "Content-Length: 2\nContent-Length: 3\n", 400),
    "oversized Content-Length": ("POST /pause HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {token}\n"
                                 "Content-Length: 1000000000\n", 413),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_answer_at_once_and_change_nothing(live: Live, case: str, caplog: pytest.LogCaptureFixture) -> None:
    head, want = REFUSALS[case]
    check = _unchanged(live)
    with caplog.at_level(logging.WARNING, logger="rtstyle.control"):
        code, _ = live.raw(head, b"{}" if case == "foreign Origin" else b"")
        # the log line is written on the server's thread, right before the reply goes out
        wait_for(lambda: [r for r in caplog.records if r.name == "rtstyle.control"], "the refusal's log line", 10)
    assert code == want, f"{case}: got {code}"
    lines = [r for r in caplog.records if r.name == "rtstyle.control"]
    assert len(lines) == 1 and lines[0].exc_info is None and "\n" not in lines[0].getMessage(), \
        [r.getMessage() for r in lines]
    assert live.ctl.token not in lines[0].getMessage()
    check()


def test_chunked_body_over_the_limit_is_refused(live: Live) -> None:
    check = _unchanged(live)
    chunk = b"x" * 70000
    body = b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"
    code, _ = live.raw("POST /style HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {token}\n"
                       "Transfer-Encoding: chunked\n", body)
    assert code == 413
    check()


def test_bad_bodies_get_400(live: Live) -> None:
    check = _unchanged(live)
    assert live.raw("POST /style HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {token}\n"
                    "Content-Length: 5\n", b"{nope")[0] == 400
    assert live.call("/style", {"crossfade": 3})[0] == 400  # nothing to switch to
    assert live.call("/style", {"model": "no.such_model"})[0] == 400
    assert live.call("/style", {"options": "brush"})[0] == 400
    code, _, body = live.call("/style", {"options": {"brush": 300}})  # johnson nets have no controls
    assert code == 400 and "controls" in body["error"]
    check()


def test_the_token_is_accepted_as_bearer_query_or_cookie(live: Live) -> None:
    t = live.ctl.token
    assert live.call("/status")[0] == 200
    assert live.call(f"/status?token={t}", token=False)[0] == 200
    assert live.call("/status", token=False, headers={"Cookie": f"rtstyle_control_{live.ctl.port}={t}"})[0] == 200
    assert live.call("/status", token=False, headers={"Cookie": f"rtstyle_control_1={t}"})[0] == 401
    # the same origin (what the page sends) and the other loopback names are fine
    assert live.call("/status", headers={"Origin": f"http://127.0.0.1:{live.ctl.port}"})[0] == 200
    for host in ("localhost", "[::1]"):
        code, _ = live.raw(f"GET /status HTTP/1.1\nHost: {host}:{{port}}\nAuthorization: Bearer {{token}}\n")
        assert code == 200, host


def test_no_content_length_means_an_empty_body(live: Live) -> None:
    code, data = live.raw("POST /style HTTP/1.1\nHost: 127.0.0.1:{port}\nAuthorization: Bearer {token}\n")
    assert code == 400 and b"give 'model'" in data  # parsed as {} at once, not waited for


def test_style_swap_reaches_the_frames(live: Live) -> None:
    code, _, body = live.call("/style", {"model": CYCLE[1]})
    assert code == 200 and body["ok"] and body["style"] == CYCLE[1]
    assert live.status()["style"] == CYCLE[1]
    wait_for(lambda: live.sink.last.meta["style"] == CYCLE[1], "a frame in the new style")


def test_next_and_previous_step_through_the_cycle(live: Live) -> None:
    cur = live.status()["style"]
    assert cur in CYCLE and live.status()["cycle"] == CYCLE
    swaps = live.status()["swaps"]
    code, _, body = live.call("/next", {"wait": True})
    assert code == 200 and body["style"] in CYCLE and body["style"] == live.status()["style"]
    assert live.status()["swaps"] == swaps + 1
    wait_for(lambda: live.sink.last.meta["style"] == body["style"], "a frame in the style /next chose")
    code, _, back = live.call("/previous", {"wait": True})
    assert code == 200 and back["style"] != body["style"] and live.status()["style"] == back["style"]
    code, _, again = live.call("/next", {"wait": True})
    assert again["style"] == body["style"], "next after previous must come back"


def test_pause_holds_the_output(live: Live) -> None:
    assert live.call("/pause", {})[2]["paused"] is True
    try:
        n = live.sink.count
        seen = live.pipe.stats.frames_in
        # the source keeps producing: let 10 more frames arrive, at most the one in flight may come out
        wait_for(lambda: live.pipe.stats.frames_in >= seen + 10, "10 more source frames")
        assert live.sink.count <= n + 1, "a paused pipeline must not output frames"
        assert live.status()["paused"] is True
    finally:
        assert live.call("/pause", {})[2]["paused"] is False
    n = live.sink.count
    wait_for(lambda: live.sink.count > n + 2, "frames after resuming")


def test_status_and_preview(live: Live) -> None:
    s = live.status()
    assert s["frames_out"] > 0 and s["latency_ms_p50"] is not None and s["latency_ms_p95"] >= s["latency_ms_p50"]
    assert s["controls"] == {} and s["bank"] == [] and s["running"] is True
    code, hdrs, data = live.call("/preview.jpg")
    assert code == 200 and hdrs["Content-Type"] == "image/jpeg" and hdrs["Cache-Control"] == "no-store"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (64, 96, 3) and hdrs["X-Style"] in CYCLE and int(hdrs["X-Frame-Index"]) >= 0
    assert img.std() > 5, "the preview must be a real frame"


def test_mjpeg_stream(live: Live) -> None:
    """``/preview.mjpg``: a multipart stream of JPEG frames, newer ones as they come out."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", live.ctl.port, timeout=30)
    try:
        conn.request("GET", "/preview.mjpg", headers={"Authorization": f"Bearer {live.ctl.token}"})
        r = conn.getresponse()
        assert r.status == 200 and r.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
        rest = b""
        while rest.count(b"--frame\r\n") < 3:
            chunk = r.read1(65536)
            assert chunk, "the stream ended"
            rest += chunk
    finally:
        conn.close()
    parts = [p for p in rest.split(b"--frame\r\n") if p][:2]
    imgs = []
    for part in parts:
        hdr, _, body = part.partition(b"\r\n\r\n")
        n = int(re.search(rb"Content-Length: (\d+)", hdr)[1])
        imgs.append(cv2.imdecode(np.frombuffer(body[:n], np.uint8), cv2.IMREAD_COLOR))
    assert all(i is not None and i.shape == (64, 96, 3) for i in imgs)
    assert not np.array_equal(imgs[0], imgs[1]), "each part is a newer frame"


def test_models_list_the_registry(live: Live) -> None:
    from rtstyle.models import list_models

    code, _, body = live.call("/models")
    names = [m["name"] for m in body["models"]]
    assert code == 200 and names == list_models()
    msg = next(m for m in body["models"] if m["name"] == "msgnet.lite")
    assert "wave" in msg["bank"] and msg["thumbs"] == []  # no painting folder given
    assert live.call("/thumb/wave.jpg")[0] == 404


def test_bank_controls_and_thumbnails(tmp_path: Any) -> None:
    """msgnet.lite: /next walks its bank, brush/alpha are reported and changed, thumbnails come from
    the painting folder."""
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "wave.jpg"), rng.integers(0, 255, (300, 200, 3), dtype=np.uint8))
    sink = NullSink(lossless=False)
    st = Stylizer("msgnet.lite")
    with SyntheticSource(96, 64, fps=15, live=True) as src:
        pipe = Pipeline(src, st, [sink], live=True)
        pipe.start()
        try:
            with ControlServer(pipe, port=0, style_images=tmp_path) as ctl:
                lv = Live(pipe, sink, ctl)
                s = lv.status()
                assert s["controls"] == {"alpha": 1.0, "brush": 256.0} and "wave" in s["bank"]
                code, _, body = lv.call("/next", {"wait": True})
                assert code == 200 and body["style"] == f"msgnet.lite[{s['bank'][1]}]"
                assert lv.status()["bank_style"] == s["bank"][1]
                code, _, body = lv.call("/style", {"style": "wave", "options": {"brush": 384, "alpha": 0.5}})
                s2 = lv.status()
                assert code == 200 and s2["bank_style"] == "wave" and s2["controls"] == {"alpha": 0.5, "brush": 384.0}
                code, _, body = lv.call("/brush/larger", {"wait": True})
                assert code == 200 and lv.status()["controls"]["brush"] == 480.0 and lv.status()["bank_style"] == "wave"
                models = lv.call("/models")[2]["models"]
                assert next(m for m in models if m["name"] == "msgnet.lite")["thumbs"] == ["wave"]
                code, hdrs, data = lv.call("/thumb/wave.jpg")
                thumb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                assert code == 200 and max(thumb.shape[:2]) == 160
                assert lv.call("/thumb/..%2Fwave.jpg")[0] == 404
                ok, png = cv2.imencode(".png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
                code, _, body = lv.call("/style/image", method="POST", headers={"Content-Type": "image/png"})
                assert code == 400  # no image in the body
                req_body = png.tobytes()
                req = urllib.request.Request(f"http://127.0.0.1:{ctl.port}/style/image", data=req_body, method="POST",
                                             headers={"Authorization": f"Bearer {ctl.token}", "Content-Type": "image/png"})
                with urllib.request.urlopen(req, timeout=120) as r:
                    assert r.status == 200 and json.loads(r.read())["ok"]
                assert lv.status()["bank_style"] is None  # a style image of its own now
        finally:
            pipe.stop()
            pipe.wait(30)
            st.close()


def test_beyond_loopback_needs_a_token(caplog: pytest.LogCaptureFixture) -> None:
    sink = NullSink(lossless=False)
    st = Stylizer(CYCLE[0])
    with SyntheticSource(64, 48, fps=15, live=True) as src:
        pipe = Pipeline(src, st, [sink], live=True)
        with pytest.raises(ValueError, match="--control-token"):
            ControlServer(pipe, port=0, host="0.0.0.0")
        with pytest.raises(ValueError, match="at least 8"):
            ControlServer(pipe, port=0, token="short")
        with caplog.at_level(logging.WARNING, logger="rtstyle.control"):
            ctl = ControlServer(pipe, port=0, host="0.0.0.0", token="a-fixed-token-for-tests")
        try:
            assert any("0.0.0.0" in r.getMessage() for r in caplog.records)
            assert ctl.url.endswith(f":{ctl.port}/?token=a-fixed-token-for-tests")
        finally:
            ctl.close()
    st.close()


def test_stop_ends_the_run() -> None:
    sink = NullSink(lossless=False)
    st = Stylizer(CYCLE[0])
    with SyntheticSource(64, 48, fps=15, live=True) as src:
        pipe = Pipeline(src, st, [sink], live=True)
        pipe.start()
        with ControlServer(pipe, port=0) as ctl:
            lv = Live(pipe, sink, ctl)
            wait_for(lambda: sink.count > 0, "the first output frame")
            assert lv.call("/stop", {})[0] == 200
            assert pipe.wait(30)
            assert lv.status()["running"] is False
    st.close()


def test_cli_prints_the_url_once_and_keeps_tracebacks_off_the_console(tmp_path: Any) -> None:
    """A real ``rtstyle live`` process: the URL is printed once, bad requests are refused with one log
    line each and no traceback, /stop ends the run normally."""
    out = tmp_path / "o.mp4"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "rtstyle.cli", "live", "--source", "synthetic:96x64@15",
                             "--sink", str(out), "-m", CYCLE[0], "--control-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        before = []
        for line in iter(proc.stderr.readline, ""):
            m = re.fullmatch(r"control page: http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_\-]{20,})\n", line)
            if m:
                break
            before.append(line)
        assert m, "".join(before)
        port, token = int(m[1]), m[2]
        bad = [
            b"POST /style HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: -1\r\n\r\n" % port,
            b"POST /style HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 10000000\r\n\r\n" % port,
            b"POST /next HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n" % port,
            b"GET /status HTTP/1.1\r\nHost: evil.example:%d\r\n\r\n" % port,
            b"GARBAGE\r\n\r\n",
        ]
        for req in bad:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                s.sendall(req)
                assert s.recv(100).split(b" ")[1][:1] == b"4"
        req = urllib.request.Request(f"http://127.0.0.1:{port}/stop", data=b"", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200
        stdout, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, rest
    assert "Traceback" not in rest + "".join(before) and "control page" not in rest
    lines = [ln for ln in rest.splitlines() if ln.startswith("WARNING rtstyle.control")]
    # one line each; the non-HTTP garbage is logged at debug level by aiohttp (port scanners)
    assert len(lines) == 4, rest
    assert token not in rest and "live:" in stdout


@pytest.mark.parametrize("argv, want", [
    (["--control-port", "0", "--control-host", "0.0.0.0"], "give --control-token too"),
    (["--control-token", "a-fixed-token-for-tests"], "need --control-port"),
    (["--control-port", "0", "--control-token", "a b&c=d#"], "at least 8 characters"),
    (["--control-port", "0", "--style-images", "/no/such/folder"], "not a folder"),
])
def test_cli_refuses_bad_control_flags(argv: list[str], want: str, tmp_path: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from rtstyle.cli import main

    out = tmp_path / "o.mp4"
    assert main(["live", "--source", "synthetic:64x48@15", "--sink", str(out), "-m", CYCLE[0], "--duration", "5", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rtstyle: error:") and want in err[0], err
    assert not out.exists()

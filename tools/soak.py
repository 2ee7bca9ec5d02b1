"""Soak test: a long live run with a style change every second through the control endpoint.

    python tools/soak.py --minutes 60 --out docs/soak.json

Runs ``rtstyle live`` as a child process, from the synthetic source to the UDP sink (a socket here
receives the stream and counts its bytes, so a sink that stops sending shows), with
``--control-port`` and its own ``--control-token``. Every ``--interval`` seconds it POSTs
``/style`` with the next of ``--styles``; every ``--sample-s`` seconds it records the child's
resident set size (``/proc/PID/status``) and ``GET /status`` (fps, recent p95 latency, counters);
the clock starts when the first frame is out (model loading is not part of the soak).
At the end it stops the run through ``POST /stop`` and writes one JSON file: RSS in the first and
last ten minutes (``--minutes`` / 6 each for shorter runs), p95 latency over time, and control
requests sent / answered. Exit code 1 when a control request went unanswered or the run failed.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("soak")

REPO = Path(__file__).resolve().parents[1]


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` in MiB (Linux ``/proc``); ``None`` when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class _UdpCounter:
    """Receives the UDP stream on loopback and counts bytes, so that a sink that stopped sending shows."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.5)
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-udp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.bytes += len(self.sock.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class _Control:
    """HTTP calls to the control endpoint, each one counted as answered or not."""

    def __init__(self, port: int, token: str | None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout: float = 10.0) -> tuple[bool, int | None, str]:
        """``(answered, HTTP status, error text)``; answered means a 2xx reply with a JSON body."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                json.loads(r.read() or b"{}")
                return 200 <= r.status < 300, r.status, ""
        except urllib.error.HTTPError as e:
            return False, e.code, e.read()[:200].decode(errors="replace")
        except (OSError, ValueError) as e:  # refused, timed out, or not JSON
            return False, None, f"{type(e).__name__}: {e}"

    def status(self) -> dict[str, Any] | None:
        req = urllib.request.Request(self.base + "/status")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None


def _live_supports(flag: str) -> bool:
    out = subprocess.run([sys.executable, "-m", "rtstyle.cli", "live", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    return flag in out.stdout


def _window(samples: list[dict[str, Any]], key: str, t0: float, t1: float) -> dict[str, Any]:
    vals = np.array([s[key] for s in samples if t0 <= s["t"] <= t1 and s.get(key) is not None], float)
    if not vals.size:
        return {"from_s": round(t0, 1), "to_s": round(t1, 1), "count": 0}
    return {"from_s": round(t0, 1), "to_s": round(t1, 1), "count": int(vals.size),
            "min": round(float(vals.min()), 2), "median": round(float(np.median(vals)), 2),
            "max": round(float(vals.max()), 2)}


def _summary(samples: list[dict[str, Any]], requests: list[dict[str, Any]], total_s: float) -> dict[str, Any]:
    win = min(600.0, total_s / 6)
    end = samples[-1]["t"] if samples else total_s
    first = _window(samples, "rss_mb", 0.0, win)
    last = _window(samples, "rss_mb", end - win, end)
    growth = (round(last["median"] - first["median"], 2) if first.get("count") and last.get("count") else None)
    # p95 latency over time: each sample is /status's p95 over its recent frames; bucket per minute
    minute = 60.0 if total_s >= 600 else max(1.0, total_s / 10)
    buckets: dict[int, list[float]] = {}
    for s in samples:
        if s.get("latency_ms_p95") is not None:
            buckets.setdefault(int(s["t"] // minute), []).append(s["latency_ms_p95"])
    over_time = [{"from_s": round(k * minute, 1), "p95_ms_median": round(float(np.median(v)), 1),
                  "p95_ms_max": round(float(max(v)), 1)} for k, v in sorted(buckets.items())]
    styles = [r for r in requests if r["path"] == "/style"]
    answered = [r for r in styles if r["answered"]]
    rtt = np.array([r["ms"] for r in answered], float)
    return {
        "rss_window_s": round(win, 1),
        "rss_first_mb": first,
        "rss_last_mb": last,
        "rss_growth_mb": growth,
        "latency_p95_over_time": over_time,
        "control": {
            "style_changes_sent": len(styles),
            "style_changes_answered": len(answered),
            "status_sent": sum(r["path"] == "/status" for r in requests),
            "status_answered": sum(r["path"] == "/status" and r["answered"] for r in requests),
            "reply_ms_p50": round(float(np.percentile(rtt, 50)), 1) if rtt.size else None,
            "reply_ms_p95": round(float(np.percentile(rtt, 95)), 1) if rtt.size else None,
            "reply_ms_max": round(float(rtt.max()), 1) if rtt.size else None,
            "late_sends": sum(r.get("late", False) for r in styles),
            "unanswered": [r for r in styles if not r["answered"]][:20],
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the run (default 60)")
    ap.add_argument("--out", type=Path, default=Path("soak.json"), help="JSON result (default soak.json)")
    ap.add_argument("--styles", default="johnson.starry_night_lite,johnson.wave_lite",
                    help="comma-separated models to cycle through, one per --interval")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between style changes")
    ap.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS / status samples")
    ap.add_argument("--source", default="synthetic:640x480@30")
    ap.add_argument("--size", type=int, default=240, help="internal short side (rtstyle live --size)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for the endpoint")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s soak: %(message)s")
    if a.minutes <= 0 or a.interval <= 0 or a.sample_s <= 0:
        ap.error("--minutes, --interval and --sample-s must be > 0")
    styles = [s.strip() for s in a.styles.split(",") if s.strip()]
    if len(styles) < 2:
        ap.error("--styles needs at least two models to change between")
    total_s = 60.0 * a.minutes
    a.out.parent.mkdir(parents=True, exist_ok=True)
    work = a.out.with_name(a.out.stem + "_run")
    work.mkdir(exist_ok=True)

    udp_port, ctl_port = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    token = secrets.token_urlsafe(18)
    with_token = _live_supports("--control-token")
    cmd = [sys.executable, "-m", "rtstyle.cli", "live", "--source", a.source, "--sink", f"udp://127.0.0.1:{udp_port}",
           "--size", str(a.size), "--backend", a.backend, "--control-port", str(ctl_port),
           "--duration", str(total_s + a.startup_timeout + 120),  # a safety net: the run ends by POST /stop
           "--report", str(work / "live_report.json")]
    for m in styles:
        cmd += ["-m", m]
    if with_token:
        cmd += ["--control-token", token]
    udp = _UdpCounter(udp_port)
    errlog = open(work / "live_stderr.log", "w")
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=errlog)
    log.info("rtstyle live pid %d: %s", child.pid, " ".join(cmd[2:]).replace(token, "***"))
    samples: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    lock = threading.Lock()
    try:
        ctl = _Control(ctl_port, token if with_token else None)
        deadline = time.monotonic() + a.startup_timeout
        while True:
            if child.poll() is not None:
                raise SystemExit(f"soak: rtstyle live exited with {child.returncode} before the endpoint answered "
                                 f"(see {work / 'live_stderr.log'})")
            if not with_token and ctl.token is None:  # an endpoint without --control-token prints its own
                m = re.search(r"[?&]token=([\w\-.~%]+)", (work / "live_stderr.log").read_text())
                ctl.token = m.group(1) if m else None
            st = ctl.status()
            if st is not None and st.get("frames_out"):  # the clock starts with the first frame out
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"soak: no frames through the control endpoint within {a.startup_timeout:g} s")
            time.sleep(0.5)
        t0 = time.monotonic()
        stop = threading.Event()

        def record(path: str, t: float, answered: bool, code: int | None, err: str, ms: float, **kw: Any) -> None:
            with lock:
                requests.append({"t": round(t, 3), "path": path, "answered": answered, "status": code,
                                 "ms": round(ms, 1), **({"error": err} if err else {}), **kw})

        def changer() -> None:
            k = 0
            while not stop.is_set():
                due = t0 + k * a.interval
                late = time.monotonic() - due > a.interval
                if stop.wait(max(0.0, due - time.monotonic())):
                    return
                model = styles[(k + 1) % len(styles)]
                ts = time.monotonic()
                ok, code, err = ctl.call("POST", "/style", {"model": model})
                record("/style", ts - t0, ok, code, err, 1000 * (time.monotonic() - ts), model=model, late=late)
                k += 1

        th = threading.Thread(target=changer, name="soak-style", daemon=True)
        th.start()
        next_sample = t0
        while (now := time.monotonic()) - t0 < total_s:
            if child.poll() is not None:
                log.error("rtstyle live exited early with %d", child.returncode)
                break
            if now >= next_sample:
                ts = time.monotonic()
                st = ctl.status()
                record("/status", ts - t0, st is not None, 200 if st else None, "", 1000 * (time.monotonic() - ts))
                st = st or {}
                samples.append({"t": round(ts - t0, 2), "rss_mb": rss_mb(child.pid),
                                "fps": st.get("fps"), "latency_ms_p95": st.get("latency_ms_p95"),
                                "latency_ms_p50": st.get("latency_ms_p50"), "frames_out": st.get("frames_out"),
                                "frames_dropped": st.get("frames_dropped"), "swaps": st.get("swaps"),
                                "udp_bytes": udp.bytes})
                if len(samples) % max(1, int(60 / a.sample_s)) == 0:
                    s = samples[-1]
                    log.info("t=%.0f s rss %.1f MB fps %s p95 %s ms", s["t"], s["rss_mb"] or -1, s["fps"],
                             s["latency_ms_p95"])
                next_sample += a.sample_s
            time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        stop.set()
        th.join(timeout=15)
        run_s = time.monotonic() - t0
        ok, _, err = ctl.call("POST", "/stop")
        if not ok:
            log.warning("POST /stop not answered (%s); terminating", err)
            child.terminate()
        try:
            rc = child.wait(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
            rc = child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        errlog.close()
        udp.close()

    report_path = work / "live_report.json"
    live_report = json.loads(report_path.read_text()) if report_path.is_file() else None
    udp_steps = np.diff([s["udp_bytes"] for s in samples]) if len(samples) > 1 else np.array([])
    result = {
        "command": "python tools/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "host": {"cpus": os.cpu_count(), "platform": sys.platform},
        "minutes": a.minutes, "run_s": round(run_s, 1), "interval_s": a.interval, "sample_s": a.sample_s,
        "styles": styles, "token_flag": with_token, "exit_code": rc,
        **_summary(samples, requests, run_s),
        "udp_bytes_received": udp.bytes,
        "udp_silent_samples": int((udp_steps == 0).sum()),
        "live_report": live_report,
        "samples": samples,
    }
    tmp = a.out.with_suffix(a.out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, a.out)
    c = result["control"]
    log.info("wrote %s: %d/%d style changes answered, RSS %s -> %s MB (median of first/last %.0f s), exit %d",
             a.out, c["style_changes_answered"], c["style_changes_sent"], result["rss_first_mb"].get("median"),
             result["rss_last_mb"].get("median"), result["rss_window_s"], rc)
    return 0 if rc == 0 and c["style_changes_sent"] and c["style_changes_answered"] == c["style_changes_sent"] else 1


if __name__ == "__main__":
    sys.exit(main())

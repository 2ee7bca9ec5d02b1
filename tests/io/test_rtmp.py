"""RTMP round trip through a real nginx-rtmp server on loopback, with a server restart mid-stream.

The test starts and stops its own nginx (Debian: ``nginx`` + ``libnginx-mod-rtmp``) with its own
config in a temp folder; it skips when either is missing.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

av = pytest.importorskip("av")

REPO = Path(__file__).resolve().parents[2]
_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules")


def _rtmp_module() -> Path | None:
    for d in _MODULE_DIRS:
        p = Path(d) / "ngx_rtmp_module.so"
        if p.is_file():
            return p
    # Debian names it in modules-available/mod-rtmp.conf ("load_module modules/ngx_rtmp_module.so;")
    conf = Path("/usr/share/nginx/modules-available/mod-rtmp.conf")
    if conf.is_file():
        rel = conf.read_text().split("load_module", 1)[-1].strip().rstrip(";").strip()
        for base in ("/usr/share/nginx", "/usr/lib/nginx", "/etc/nginx"):
            if (Path(base) / rel).is_file():
                return Path(base) / rel
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Nginx:
    """One nginx-rtmp server on ``127.0.0.1:port``, run in the foreground from ``root``."""

    def __init__(self, root: Path, port: int) -> None:
        nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
        module = _rtmp_module()
        if nginx is None:
            pytest.skip("needs nginx (Debian: apt-get install nginx libnginx-mod-rtmp)")
        if module is None:
            pytest.skip("needs the nginx RTMP module (Debian: apt-get install libnginx-mod-rtmp)")
        self.nginx, self.root, self.port = nginx, root, port
        self.conf = root / "nginx.conf"
        self.conf.write_text(
            f"load_module {module};\n"
            "daemon off;\n"
            "worker_processes 1;\n"
            f"pid {root / 'nginx.pid'};\n"
            f"error_log {root / 'error.log'} info;\n"
            "events { worker_connections 64; }\n"
            f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.nginx, "-c", str(self.conf), "-p", str(self.root),
                                      "-e", str(self.root / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                pytest.skip(f"nginx did not start: {err.strip().splitlines()[-1:] or self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail("nginx did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown, every connection is cut
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


class _Player:
    """Plays the stream back with PyAV, reconnecting when the server goes away; counts frames per
    server "epoch" (bumped by the test when it restarts the server)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.epoch = 0
        self.frames: dict[int, list[tuple[int, int]]] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with av.open(self.url, timeout=(3, 3)) as c:
                    for vf in c.decode(video=0):
                        self.frames.setdefault(self.epoch, []).append((vf.width, vf.height))
                        if self._stop.is_set():
                            return
            except (av.error.FFmpegError, OSError) as exc:  # server restarting / publisher not back yet
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(0.2)

    def wait_for(self, epoch: int, n: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.frames.get(epoch, [])) < n:
            time.sleep(0.1)
        return len(self.frames.get(epoch, []))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)


@pytest.mark.network
def test_rtmp_stream_survives_a_server_restart(tmp_path: Path) -> None:
    port = _free_port()
    server = _Nginx(tmp_path, port)
    server.start()
    url = f"rtmp://127.0.0.1:{port}/live/test"
    report = tmp_path / "report.json"
    live = None
    player = None
    try:
        live = subprocess.Popen(
            [sys.executable, "-m", "rtstyle.cli", "--quiet", "live", "--source", "synthetic:320x240@25",
             "--sink", url, "--size", "96", "--duration", "25", "--report", str(report)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        player = _Player(url)
        before = player.wait_for(0, 25, timeout=60)
        assert before >= 25, f"no stream before the restart ({before} frames); {player.errors[-3:]}"

        player.epoch = 1
        server.stop()
        time.sleep(1.0)  # the server is away for a moment
        assert live.poll() is None, "rtstyle live died when the server went away"
        server.start()
        after = player.wait_for(1, 25, timeout=25)
        assert after >= 25, f"no stream after the restart ({after} frames); {player.errors[-3:]}"
        assert all(size == (320, 240) for e in (0, 1) for size in player.frames[e])
        player.stop()
        out, err = live.communicate(timeout=90)
    finally:
        if player is not None:
            player.stop()
        if live is not None and live.poll() is None:
            live.kill()
            live.wait(timeout=10)
        server.stop()
    assert live.returncode == 0, err.decode(errors="replace")[-2000:]
    rep = json.loads(report.read_text())
    (stream,) = rep["sink_recovery"]
    assert stream["sink"] == url
    assert stream["reconnects"] >= 1 and stream["outages"] == stream["reconnects"]
    assert 0.5 < stream["outage_s"] < 20
    assert stream["frames_dropped"] >= 1  # frames during the outage were dropped, not queued
    assert rep["frames_out"] > 50 and stream["frames_dropped"] < rep["frames_out"]

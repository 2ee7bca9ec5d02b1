"""Joining a running Ray cluster (``--ray HOST:PORT``, ``--ray auto``, ``--ray ray://HOST:PORT``).

The module starts its own head with ``ray start --head --block`` in a short temp dir on free ports,
in a process group of its own, without the RTSTYLE_* settings (the job must forward them), and with
token authentication on its own token (Ray >= 2.5x turns token auth on for any head once a token
exists in ~/.ray, which every embedded ``ray.init()`` writes; a driver given an explicit address
sends its token only with ``RAY_AUTH_MODE=token``). Each job is an ``rtstyle stylize`` process of
its own with that environment (Ray caches a process's token). The head is stopped by killing its
group, not with ``ray stop``, which would stop every Ray process on the machine. Ray registers the
head under this machine's routable address even when told 127.0.0.1 (``resolve_ip_for_localhost``);
a driver given 127.0.0.1 is handed that address back, which works wherever the machine can reach
its own interface.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from helpers import audio_packets as _audio, input_pts as _input_pts, psnr as _psnr, video_frames as _frames  # noqa: E402
from rtstyle.cli import main as _main  # noqa: E402

FAST = ["-b", "eager", "--size", "120"]

pytestmark = pytest.mark.slow  # a head start-up, jobs on it and its shutdown: ~1 min on the loaded 2-core box


def main(argv: list[str]) -> int:
    return _main(["-q", *argv])


@dataclass(frozen=True)
class Head:
    address: str  # 127.0.0.1:PORT
    client_port: int  # the Ray Client server (ray://)
    temp_dir: Path
    pgid: int
    env: dict[str, str]  # the environment of the head and its drivers (the token)

    def stylize(self, argv: list[str], *, cwd: Path, drop: tuple[str, ...] = (), **env: str
                ) -> subprocess.CompletedProcess[str]:
        """``rtstyle -q stylize ARGV`` as a driver process of its own (without the variables in ``drop``)."""
        full = {k: v for k, v in {**os.environ, **self.env, **env}.items() if k not in drop}
        if "RTSTYLE_WEIGHTS" in full:  # relative to this process's folder, not the driver's
            full["RTSTYLE_WEIGHTS"] = str(Path(full["RTSTYLE_WEIGHTS"]).absolute())
        return subprocess.run([sys.executable, "-m", "rtstyle.cli", "-q", "stylize", *argv], cwd=cwd, env=full,
                              capture_output=True, text=True, timeout=400)

    def ran_here(self, pid: int) -> bool:
        """Whether ``pid`` was a worker of this cluster (its core-worker log is in the head's session)."""
        return any((self.temp_dir / "session_latest" / "logs").glob(f"python-core-worker-*_{pid}.log"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_in(temp_dir: Path) -> list[int]:
    """Processes whose command line names ``temp_dir`` (the head's own, wherever their group is)."""
    found = []
    needle = str(temp_dir).encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                continue
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    # short: Ray's unix socket paths under it must stay below 108 bytes
    temp_dir = Path(tempfile.mkdtemp(prefix="rtray", dir="/tmp"))
    port, client_port = _free_port(), _free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RTSTYLE_", "RAY_"))} | auth
    cmd = [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
           f"--ray-client-server-port={client_port}", f"--dashboard-port={_free_port()}",
           f"--dashboard-agent-listen-port={_free_port()}", "--include-dashboard=false", "--num-cpus=2",
           f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    log = open(temp_dir / "start.log", "w")  # noqa: SIM115 - the head writes it while the module runs
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=temp_dir, start_new_session=True)
    try:
        deadline = time.time() + 180
        while not (temp_dir / "ray_current_cluster").exists() or "Ray runtime started" not in \
                (temp_dir / "start.log").read_text():
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"ray start --head failed: {(temp_dir / 'start.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield Head(f"127.0.0.1:{port}", client_port, temp_dir, proc.pid, auth)
    finally:
        # this head only: its process group (ray start --block and all it started), then anything
        # of its session that left the group
        with_group = _group_alive(proc.pid)
        if with_group:
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline and _group_alive(proc.pid):
            proc.poll()
            time.sleep(0.5)
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in _processes_in(temp_dir):
            os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
        time.sleep(1)
        left = _processes_in(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"processes of the test's Ray head still running: {left}"


@pytest.fixture(scope="module")
def clip(shared: Path) -> Path:
    p = shared / "media" / "videos" / "imageio_realshort.mp4"  # 36 frames at 30.02 fps, 320x240, AAC audio
    if not p.exists():
        pytest.skip(f"needs {p}")
    return p


@pytest.fixture(scope="module")
def single(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-process output the joined runs are compared with."""
    import torch

    out = tmp_path_factory.mktemp("single") / "single.mp4"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker has
    try:
        assert main(["stylize", str(clip), "-o", str(out), *FAST]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _check_output(out: Path, clip: Path, single: Path) -> None:
    pts, imgs = _frames(out)
    assert len(pts) == 36 and pts == _input_pts(clip) == _frames(single)[0]  # every frame at its input timestamp
    _, ref = _frames(single)
    worst = min(_psnr(a, b) for a, b in zip(imgs, ref))
    assert worst >= 35.0, f"worst frame {worst:.1f} dB from the one-process output"
    assert _audio(out) and _audio(out) == _audio(single)  # the input's audio, once


def test_joins_a_running_cluster_by_host_port(head: Head, clip: Path, single: Path, tmp_path: Path) -> None:
    """``--ray 127.0.0.1:PORT`` with relative paths from another folder: the chunks run on the test's
    head (their workers' logs are in its session), nothing is started here, and the joined file is
    frame-exact with the input's timestamps (30.02 fps: not whole milliseconds) and audio."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(clip, work / "in.mp4")
    res = head.stylize(["in.mp4", "-o", "out.mp4", *FAST, "--ray", head.address, "--chunk-seconds", "0.4",
                        "--report", "r.json"], cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    rep = json.loads((work / "r.json").read_text())
    assert rep["cluster"]["started_here"] is False and rep["cluster"]["address"] == head.address
    assert rep["chunks"] == 3 and rep["frames_out"] == rep["frames_expected"] == 36 and rep["failed"] == []
    pids = {c["pid"] for c in rep["chunk_times"]}
    assert all(head.ran_here(pid) for pid in pids), f"chunk workers {pids} are not the head's"
    _check_output(work / "out.mp4", work / "in.mp4", single)
    assert sorted(p.name for p in work.iterdir()) == ["in.mp4", "out.mp4", "r.json"]  # no chunk folder left


@pytest.mark.parametrize("how", ["auto", "ray_client"])
def test_joins_with_auto_and_ray_client(how: str, head: Head, clip: Path, single: Path, tmp_path: Path) -> None:
    """``--ray auto`` finds the head through RAY_ADDRESS; ``--ray ray://HOST:PORT`` drives it through
    the Ray Client server (``rtstyle[ray]`` installs ``ray[client]``). One task for the whole file."""
    env = {}
    if how == "auto":
        env["RAY_ADDRESS"], address = head.address, "auto"
    else:
        pytest.importorskip("grpc", reason="ray:// needs ray[client] (grpcio)")
        address = f"ray://127.0.0.1:{head.client_port}"
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    res = head.stylize([str(clip), "-o", str(out), *FAST, "--ray", address, "--chunk-seconds", "0", "--report",
                        str(report)], cwd=tmp_path, **env)
    assert res.returncode == 0, res.stderr[-2000:]
    rep = json.loads(report.read_text())
    assert rep["cluster"]["started_here"] is False and rep["cluster"]["cpus"] == 2.0
    assert rep["written"] == 1 and rep["chunks"] == 0 and rep["frames_out"] == 36
    pids = rep["files"][0]["pids"]
    assert pids and all(head.ran_here(pid) for pid in pids), f"file task worker {pids} is not the head's"
    _check_output(out, clip, single)


def test_local_starts_its_own_cluster_even_with_ray_address_set(head: Head, clip: Path, tmp_path: Path) -> None:
    """``--ray`` (local) starts an embedded cluster and shuts it down, whatever RAY_ADDRESS says."""
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    res = head.stylize([str(clip), "-o", str(out), *FAST, "--ray", "--chunk-seconds", "0", "--report", str(report)],
                       cwd=tmp_path, RAY_ADDRESS=head.address)
    assert res.returncode == 0, res.stderr[-2000:]
    rep = json.loads(report.read_text())
    assert rep["cluster"]["started_here"] is True and rep["frames_out"] == 36
    assert not any(head.ran_here(pid) for pid in rep["files"][0]["pids"])


def test_a_token_cluster_joined_without_ray_auth_mode_is_one_line_naming_it(head: Head, clip: Path,
                                                                             tmp_path: Path) -> None:
    """Ray sends the token to an explicit address only with RAY_AUTH_MODE=token; without it the head
    refuses the driver, and the error names the setting (Ray's own retry warnings come before it)."""
    out = tmp_path / "out.mp4"
    res = head.stylize([str(clip), "-o", str(out), *FAST, "--ray", head.address], cwd=tmp_path, drop=("RAY_AUTH_MODE",))
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rtstyle: error: cannot connect to Ray at {head.address}") and "RAY_AUTH_MODE=token" in last
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_ray_client_join_retries_only_a_failed_server_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ray client server can fail to start this driver's server process on a busy head
    ("Initialization failure from server"): that, and only that, is retried, a bounded number of times."""
    from rtstyle.distributed import cluster

    monkeypatch.setattr(cluster.time, "sleep", lambda s: None)

    class FakeRay:
        def __init__(self, failures: int, message: str) -> None:
            self.failures, self.message, self.calls = failures, message, 0

        def init(self, address: str, **kw: object) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise ConnectionAbortedError(self.message)

    flaky = FakeRay(2, "Initialization failure from server:\nTimed out")
    cluster._join(flaky, "ray://head:10001", {})
    assert flaky.calls == 3
    for ray, address in [(FakeRay(5, "Initialization failure from server:\nx"), "ray://head:10001"),  # bounded
                         (FakeRay(1, "Initialization failure from server:\nx"), "head:6379"),  # not a client join
                         (FakeRay(1, "failed to connect"), "ray://head:10001")]:  # another error
        with pytest.raises(ConnectionError):
            cluster._join(ray, address, {})
        assert ray.calls == (cluster._CLIENT_ATTEMPTS if ray.failures == 5 else 1)

"""Host ISA detection: the real CPU flags, the AMX permission probe, and the ways to mock a host."""
from __future__ import annotations

import platform
import sys

import pytest

from rtstyle.host import RELEVANT, HostISA, amx_permission, detect_host, use_host


def _cpuinfo_flags() -> set[str]:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


linux_x86 = pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
                               reason="Linux x86_64 only")


@linux_x86
def test_detect_reads_this_cpus_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTSTYLE_HOST_FLAGS", raising=False)
    host = detect_host(refresh=True)
    assert host.source == "cpuinfo"
    assert host.flags == frozenset(_cpuinfo_flags() & set(RELEVANT))
    # AMX counts only with the OS permission: asked for exactly when the CPU has tiles
    if "amx_tile" in host.flags:
        assert host.amx_permitted in (True, False)
        assert host.amx == bool(host.amx_permitted)
    else:
        assert host.amx_permitted is None and not host.amx and host.kind != "amx"


@linux_x86
def test_amx_permission_matches_torch() -> None:
    import torch

    got = amx_permission()
    assert got in (True, False)  # the kernel answers on Linux x86_64
    if "amx_tile" in _cpuinfo_flags():
        assert got == torch.cpu._init_amx()  # PyTorch makes the same arch_prctl request
    else:
        assert got is False


def test_mocked_kinds() -> None:
    amx = HostISA.mock("amx")
    assert amx.kind == "amx" and amx.amx_bf16 and amx.amx_int8 and amx.native_bf16 and amx.vnni
    denied = HostISA.mock("amx_denied")
    assert not denied.amx and denied.kind == "avx512_bf16" and "refuses" in denied.describe()
    dev_box = HostISA.mock("avx512")
    assert dev_box.kind == "avx512" and not dev_box.native_bf16 and dev_box.vnni and not dev_box.amx
    old = HostISA.mock("avx2")
    assert old.kind == "avx2" and not old.vnni and not old.native_bf16
    assert "AMX host" in amx.describe() and "non-AMX" in dev_box.describe()
    with pytest.raises(ValueError, match="unknown host kind"):
        HostISA.mock("quantum")


def test_use_host_overrides_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTSTYLE_HOST_FLAGS", raising=False)
    real = detect_host()
    fake = HostISA.mock("amx")
    with use_host(fake):
        assert detect_host() is fake
        with use_host(HostISA.mock("avx2")):
            assert detect_host().kind == "avx2"
        assert detect_host() is fake
    assert detect_host() == real


def test_env_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_HOST_FLAGS", "avx512f, amx_tile,amx_bf16,not_a_flag")
    host = detect_host()
    assert host.source == "env" and host.flags == {"avx512f", "amx_tile", "amx_bf16"}
    assert host.amx_bf16 and not host.amx_int8 and host.kind == "amx"
    monkeypatch.setenv("RTSTYLE_HOST_FLAGS", "")
    assert detect_host().kind == "basic"

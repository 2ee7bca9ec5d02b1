"""What this CPU can do fast: instruction-set features and the OS permission to use AMX tiles.

Precision choices (``--precision auto``, ``--amp auto``) depend on the host: bf16 is fast with AMX
(``amx_bf16``) and slower than fp32 on plain AVX-512; int8 wants VNNI or AMX-INT8. Nothing here is
assumed: the CPU flags come from ``/proc/cpuinfo`` (Linux) or PyTorch's cpuinfo probes (elsewhere),
and on Linux AMX also needs the kernel's permission for tile data (``arch_prctl``
``ARCH_REQ_XCOMP_PERM``), which a kernel without AMX support (or a container policy) refuses.

:func:`detect_host` is cheap (no torch import on Linux) and cached. Tests and A/B runs replace the
answer with :func:`use_host` (a context manager) or ``$RTSTYLE_HOST_FLAGS`` (a comma-separated flag
list, for subprocesses); :meth:`HostISA.mock` builds a host of a named kind.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

__all__ = ["HostISA", "detect_host", "use_host", "amx_permission"]

log = logging.getLogger(__name__)

# flags that matter for precision choices, in /proc/cpuinfo spelling
RELEVANT = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni",
            "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")

# arch_prctl codes and the XSAVE feature number of AMX tile data (Linux uapi asm/prctl.h)
_SYS_ARCH_PRCTL = 158  # x86_64
_ARCH_GET_XCOMP_SUPP = 0x1021
_ARCH_GET_XCOMP_PERM = 0x1022
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


@dataclass(frozen=True)
class HostISA:
    """The CPU's precision-relevant features.

    Attributes:
        cpu: the CPU model name.
        flags: the relevant CPU flags present (``/proc/cpuinfo`` spelling, see ``RELEVANT``).
        amx_permitted: whether the OS lets this process use AMX tile data: ``True``/``False``, or
            ``None`` where it cannot be asked (not Linux x86_64) and the flags are taken at face value.
        source: where the answer came from: ``cpuinfo``, ``torch``, ``env`` or ``mock``.
    """

    cpu: str
    flags: frozenset[str] = field(default_factory=frozenset)
    amx_permitted: bool | None = None
    source: str = "cpuinfo"

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def amx_bf16(self) -> bool:
        """AMX bf16 tiles usable by this process (CPU flag and OS permission)."""
        return {"amx_tile", "amx_bf16"} <= self.flags and self.amx_permitted is not False

    @property
    def amx_int8(self) -> bool:
        return {"amx_tile", "amx_int8"} <= self.flags and self.amx_permitted is not False

    @property
    def amx(self) -> bool:
        return self.amx_bf16 or self.amx_int8

    @property
    def native_bf16(self) -> bool:
        """bf16 arithmetic in hardware (AMX or AVX-512 BF16); without it bf16 is emulated and slow."""
        return self.amx_bf16 or self.has("avx512_bf16")

    @property
    def vnni(self) -> bool:
        """int8 dot products in hardware (AVX-512 VNNI, AVX-VNNI or AMX-INT8)."""
        return self.has("avx512_vnni") or self.has("avx_vnni") or self.amx_int8

    @property
    def kind(self) -> str:
        """A short name of the host class: ``amx``, ``avx512_bf16``, ``avx512``, ``avx2`` or ``basic``."""
        if self.amx:
            return "amx"
        for k in ("avx512_bf16", "avx512f", "avx2"):
            if self.has(k):
                return "avx512" if k == "avx512f" else k
        return "basic"

    def describe(self) -> str:
        """One line for reports: ``AMX host (amx_bf16, amx_int8, avx512_bf16, ...)``."""
        label = {"amx": "AMX host", "avx512_bf16": "non-AMX host with AVX512_BF16",
                 "avx512": "non-AMX AVX-512 host", "avx2": "non-AMX AVX2 host", "basic": "non-AMX host"}[self.kind]
        note = ""
        if {"amx_tile"} <= self.flags and self.amx_permitted is False:
            note = "; AMX present but the OS refuses tile data"
        return f"{label} ({', '.join(sorted(self.flags)) or 'no relevant flags'}{note})"

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "kind": self.kind, "flags": sorted(self.flags), "amx_permitted": self.amx_permitted,
                "source": self.source}

    @classmethod
    def mock(cls, kind: str, **overrides: Any) -> "HostISA":
        """A host of a named kind for tests: ``amx`` (Sapphire Rapids-like), ``avx512_bf16``,
        ``avx512`` (AVX-512 + VNNI, no bf16: the dev box), ``avx2``, ``amx_denied`` (AMX flags, the
        OS refuses tile data)."""
        base = {"avx2", "avx512f", "avx512_vnni"}
        presets = {
            "amx": base | {"avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"},
            "amx_denied": base | {"avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"},
            "avx512_bf16": base | {"avx512_bf16"},
            "avx512": base,
            "avx2": {"avx2"},
        }
        if kind not in presets:
            raise ValueError(f"unknown host kind {kind!r}; choose from {', '.join(presets)}")
        host = cls(cpu=f"mock {kind} CPU", flags=frozenset(presets[kind]),
                   amx_permitted=False if kind == "amx_denied" else ("amx_tile" in presets[kind] or None), source="mock")
        return replace(host, **overrides) if overrides else host


def amx_permission(request: bool = True) -> bool | None:
    """Whether this process may use AMX tile data (Linux x86_64), asking the kernel if ``request``.

    oneDNN and OpenVINO make the same ``ARCH_REQ_XCOMP_PERM`` request before their first AMX kernel;
    asking earlier changes nothing else (the permission only enlarges the signal frame).

    Returns:
        ``True``/``False``, or ``None`` where the question cannot be asked (not Linux x86_64).
    """
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    mask = ctypes.c_ulong(0)
    if syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_SUPP, ctypes.byref(mask)) != 0:
        return False  # a kernel older than 5.16 (no dynamic XSTATE): no AMX for user space
    if not mask.value >> _XFEATURE_XTILEDATA & 1:
        return False  # the kernel (or hypervisor) does not offer tile data
    perm = ctypes.c_ulong(0)
    if syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, ctypes.byref(perm)) == 0 and perm.value >> _XFEATURE_XTILEDATA & 1:
        return True
    if not request:
        return False
    return syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, ctypes.c_ulong(_XFEATURE_XTILEDATA)) == 0


def _cpuinfo() -> tuple[str, set[str]] | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
        if model and flags:
            break
    return (model or platform.processor() or "cpu", flags) if flags else None


def _torch_flags() -> set[str]:
    """PyTorch's own cpuinfo probes, for platforms without /proc/cpuinfo (imports torch)."""
    import torch

    probes = {"avx2": "_is_avx2_supported", "avx512f": "_is_avx512_supported",
              "avx512_bf16": "_is_avx512_bf16_supported", "avx512_vnni": "_is_vnni_supported",
              "amx_tile": "_is_amx_tile_supported", "amx_fp16": "_is_amx_fp16_supported"}
    out = set()
    for flag, fn in probes.items():
        probe = getattr(torch.cpu, fn, None)
        try:
            if probe is not None and probe():
                out.add(flag)
        except RuntimeError:
            continue
    if "amx_tile" in out:  # torch probes the tile unit; every AMX CPU so far has bf16 and int8 with it
        out |= {"amx_bf16", "amx_int8"}
    return out


_override: list[HostISA] = []
_detected: list[HostISA] = []


def _from_env(text: str) -> HostISA:
    flags = {f.strip().lower() for f in text.split(",") if f.strip()}
    return HostISA(cpu="$RTSTYLE_HOST_FLAGS", flags=frozenset(flags & set(RELEVANT)),
                   amx_permitted=True if "amx_tile" in flags else None, source="env")


def detect_host(refresh: bool = False) -> HostISA:
    """This host's :class:`HostISA` (cached; ``refresh`` probes again).

    :func:`use_host` and ``$RTSTYLE_HOST_FLAGS`` take precedence, in that order.
    """
    if _override:
        return _override[-1]
    env = os.environ.get("RTSTYLE_HOST_FLAGS")
    if env is not None:
        return _from_env(env)
    if _detected and not refresh:
        return _detected[0]
    info = _cpuinfo()
    if info is not None:
        cpu, flags = info
        source = "cpuinfo"
    else:
        cpu, flags, source = platform.processor() or platform.machine() or "cpu", _torch_flags(), "torch"
    relevant = frozenset(flags & set(RELEVANT))
    permitted = amx_permission() if "amx_tile" in relevant else None
    host = HostISA(cpu=cpu, flags=relevant, amx_permitted=permitted, source=source)
    log.debug("host: %s", host.describe())
    _detected[:] = [host]
    return host


@contextlib.contextmanager
def use_host(host: HostISA) -> Iterator[HostISA]:
    """Make :func:`detect_host` answer ``host`` inside the block (tests, A/B measurements)."""
    _override.append(host)
    try:
        yield host
    finally:
        _override.remove(host)

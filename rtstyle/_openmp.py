"""OpenMP thread-pool hygiene for pipelines that run PyTorch in a worker thread.

PyTorch's CPU wheels for Linux parallelise with GNU OpenMP (libgomp). libgomp keeps one worker pool
*per thread* that ever ran a parallel region, and counts every pooled thread in the process. Once
that count exceeds the number of CPUs, every idle worker in the process spins only ~100 iterations
before sleeping on a futex, so each of the hundreds of small parallel regions in a forward pass pays a
futex wake-up. That is exactly the state of a pipeline: the main thread built the models (its pool
exists), the stylize thread runs them (a second pool), the style-preparation thread encodes styles
(a third).

On the 2-core dev box a net run from a second thread was markedly slower while the main thread's
pool existed, and back to the main thread's speed once that pool was released
(``omp_pause_resource_all`` from the main thread; figures in docs/benchmarks.md, "OpenMP pools").
So the pipeline releases the calling thread's pool when it starts its stages, and the
Stylizer releases the preparation thread's pool after each style it prepares: only the stylize
thread keeps one, and it keeps the fast spin-wait.

Only libgomp is handled: its ``omp_pause_resource_all`` frees the *calling thread's* pool and nothing
else, so it is safe while other threads compute. LLVM's libomp and Intel's libiomp pause the whole
runtime instead, so with them (and on platforms without OpenMP) :func:`release_thread_pool` does
nothing. ``RTSTYLE_KEEP_OMP_POOLS=1`` turns it off (for A/B measurements).
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

__all__ = ["release_thread_pool"]

log = logging.getLogger(__name__)
_OMP_PAUSE_SOFT = 1


_found: list[Any] = []  # the function once found (not cached while libgomp is not loaded yet)


def _libgomp() -> Any:
    """``omp_pause_resource_all`` of the libgomp loaded in this process (PyTorch's), or ``None``."""
    if _found:
        return _found[0]
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "libgomp" in line and line.rstrip().endswith((".so.1", ".so"))}
    except OSError:
        return None
    for path in sorted(paths):
        if not os.path.basename(path).startswith("libgomp"):
            continue
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle, no second runtime
            fn = lib.omp_pause_resource_all
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        _found.append(fn)
        return fn
    return None


def release_thread_pool() -> bool:
    """Free the calling thread's OpenMP worker pool (libgomp only); returns whether it did.

    The next parallel region this thread runs recreates its pool (thread creation, well under a
    millisecond). Call it from threads that ran PyTorch CPU work and now hand the computing over to
    another thread.
    """
    if os.environ.get("RTSTYLE_KEEP_OMP_POOLS") == "1":
        return False
    fn = _libgomp()
    if fn is None:
        return False
    try:
        ok = fn(_OMP_PAUSE_SOFT) == 0  # -1 inside a parallel region: nothing freed
    except Exception as e:  # noqa: BLE001 - an optimisation only: never fail the caller
        log.debug("omp_pause_resource_all failed: %s", e)
        return False
    return ok

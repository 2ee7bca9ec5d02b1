"""OpenMP pool hygiene: releasing a thread's libgomp pool ends its worker threads, and the pipeline
and the Stylizer's preparation thread leave only the stylize thread with a pool."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from rtstyle._openmp import _libgomp, release_thread_pool
from rtstyle.stylizer import Stylizer


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _parallel_work() -> None:
    with torch.no_grad():
        torch.nn.functional.conv2d(torch.rand(1, 16, 96, 96), torch.rand(16, 16, 3, 3), padding=1)


needs_gomp = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or _libgomp() is None or torch.get_num_threads() < 2,
    reason="needs Linux, PyTorch on libgomp and >= 2 threads",
)


@needs_gomp
def test_release_ends_the_calling_threads_pool_workers() -> None:
    got: dict[str, int] = {}

    def in_thread() -> None:
        _parallel_work()  # this thread's pool: torch.get_num_threads() - 1 workers
        got["with_pool"] = _threads()
        got["released"] = int(release_thread_pool())
        got["after"] = _threads()
        _parallel_work()  # recreated on demand
        got["again"] = _threads()
        release_thread_pool()

    release_thread_pool()
    before = _threads()
    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    workers = torch.get_num_threads() - 1
    assert got["released"] == 1
    assert got["with_pool"] == before + 1 + workers
    assert got["after"] == before + 1
    assert got["again"] == before + 1 + workers


@needs_gomp
def test_style_preparation_thread_keeps_no_pool(tiny_johnson: Path) -> None:
    st = Stylizer(str(tiny_johnson), frame_size=(64, 48))  # prepared in this thread
    release_thread_pool()
    before = _threads()
    st.set_style(str(tiny_johnson), wait=True)  # cached: no work
    st.set_style("johnson.wave_lite", wait=True)  # a real preparation on the executor thread
    assert _threads() == before + 1  # the executor thread itself, no OpenMP workers of its own
    st.stylize(np.zeros((48, 64, 3), np.uint8))
    st.close()


def test_release_is_harmless_without_a_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTSTYLE_KEEP_OMP_POOLS", raising=False)
    x, w = torch.rand(1, 8, 24, 24), torch.rand(8, 8, 3, 3)
    with torch.no_grad():
        ref = torch.nn.functional.conv2d(x, w, padding=1)
    release_thread_pool()
    before = _threads()
    # a second release, with no pool left: the same answer (libgomp says yes, elsewhere a no-op), no thread lost
    assert release_thread_pool() is (_libgomp() is not None)
    assert _threads() == before
    with torch.no_grad():  # PyTorch recreates the pool and computes as before
        assert torch.equal(torch.nn.functional.conv2d(x, w, padding=1), ref)


@needs_gomp
def test_keep_pools_switch_turns_release_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSTYLE_KEEP_OMP_POOLS", "1")
    got: dict[str, int] = {}

    def in_thread() -> None:
        _parallel_work()
        got["with_pool"] = _threads()
        got["released"] = int(release_thread_pool())
        got["after"] = _threads()
        monkeypatch.delenv("RTSTYLE_KEEP_OMP_POOLS")
        release_thread_pool()  # leave no pool behind for the other tests

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert got["released"] == 0
    assert got["after"] == got["with_pool"]  # the workers are still there

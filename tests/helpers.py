"""Plain helpers shared by test modules (importable as ``helpers``: ``pythonpath = ["tests"]`` in
pyproject.toml, since ``--import-mode=importlib`` gives test modules no package to import from)."""
from __future__ import annotations

import time
from typing import Any, Callable

__all__ = ["wait_for"]


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``cond`` until it returns something truthy and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)

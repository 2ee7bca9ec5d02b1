"""The errors a distributed job raises at its edges (importable without Ray or torch)."""
from __future__ import annotations

__all__ = ["BatchError", "RayUnavailableError"]


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster cannot be started or reached; the message is one line."""


class BatchError(RuntimeError):
    """A job that cannot start (an output that is the input, an output in the way); one line."""

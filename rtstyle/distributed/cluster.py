"""Ray, imported lazily, and the cluster a job runs on: embedded local, or an existing one."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import RayUnavailableError

__all__ = ["INSTALL_HINT", "RayUnavailableError", "connect", "import_ray"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'rtstyle[ray]'"

# Settings the workers must see as the driver does (weights search path, engine cache); a local
# cluster inherits them anyway, a remote one gets them through the job's runtime environment.
_FORWARDED_ENV = ("RTSTYLE_WEIGHTS", "RTSTYLE_ENGINES", "RTSTYLE_KEEP_OMP_POOLS")


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayUnavailableError` naming the extra to install."""
    try:
        import ray
    except ImportError as e:
        raise RayUnavailableError(f"--ray needs Ray ({e}): {INSTALL_HINT}") from None
    return ray


def _absolute(value: str) -> str:
    """A relative path setting made absolute: a joined cluster's workers do not start in our folder."""
    p = Path(value)
    return str(p.absolute()) if value and not p.is_absolute() and p.exists() else value


@contextmanager
def connect(address: str | None = "local", *, num_cpus: int | None = None,
            env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Use a Ray cluster for the duration of the ``with`` block.

    Args:
        address: ``"local"`` or ``None``: start an embedded cluster on this machine, limited to its
            CPUs (or ``num_cpus``), shut down on exit. ``"auto"``, ``"HOST:PORT"`` or
            ``"ray://HOST:PORT"``: join an existing cluster (left running on exit). When this
            process is already connected (``ray.is_initialized()``), that connection is used.
        num_cpus: CPUs of the embedded cluster (default: all of this machine's).
        env: extra environment variables for the workers.

    Yields:
        ``{"address": ..., "started_here": bool, "cpus": float, "gpus": float}``.

    Raises:
        RayUnavailableError: Ray is missing or the cluster cannot be reached.
    """
    ray = import_ray()
    env_vars = {k: _absolute(os.environ[k]) for k in _FORWARDED_ENV if k in os.environ}
    env_vars.update(env or {})
    started = False
    owned = not ray.is_initialized()
    if owned:
        kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if env_vars:
            kw["runtime_env"] = {"env_vars": env_vars}
        try:
            if address in (None, "", "local"):
                # "local", not None: a RAY_ADDRESS in the environment must not turn this into a join
                ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, **kw)
            else:
                _join(ray, address, kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            local = address in (None, "", "local")
            where = "start a local Ray cluster" if local else f"connect to Ray at {address}"
            hint = ""
            if not local and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
                # Ray sends its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) to an explicit address only
                # when asked; without it a token-auth cluster refuses the driver with a bare "failed to connect"
                hint = " (if the cluster uses token authentication, set RAY_AUTH_MODE=token)"
            raise RayUnavailableError(f"cannot {where}: {' '.join(str(e).split())[:200]}{hint}") from None
        started = address in (None, "", "local")
    try:
        res = ray.cluster_resources()
        info = {"address": address or "local", "started_here": started, "cpus": float(res.get("CPU", 0)),
                "gpus": float(res.get("GPU", 0))}
        log.info("ray cluster %s: %.0f CPUs, %.0f GPUs%s", info["address"], info["cpus"], info["gpus"],
                 " (started here)" if started else "")
        yield info
    finally:
        # ray.init here -> ray.shutdown here: an embedded cluster stops, a joined one only loses
        # this driver; a connection the caller made stays theirs
        if owned and ray.is_initialized():
            ray.shutdown()


# A Ray client server (``ray://``) starts one server process per driver; on a busy head that start can
# time out ("Initialization failure from server"), which a second attempt usually gets past.
_CLIENT_RETRY_ON = "Initialization failure from server"
_CLIENT_ATTEMPTS = 3


def _join(ray: Any, address: str, kw: dict[str, Any]) -> None:
    """``ray.init(address, **kw)``; a ``ray://`` join is retried when the client server failed to start
    this driver's server process (transient on a loaded head), other errors are raised at once."""
    for attempt in range(1, _CLIENT_ATTEMPTS + 1):
        try:
            ray.init(address=address, **kw)
            return
        except ConnectionError as e:
            if not address.startswith("ray://") or _CLIENT_RETRY_ON not in str(e) or attempt == _CLIENT_ATTEMPTS:
                raise
            log.warning("Ray client server at %s: %s; retrying (%d/%d)", address, " ".join(str(e).split())[:200],
                        attempt + 1, _CLIENT_ATTEMPTS)
            time.sleep(1.0 * attempt)

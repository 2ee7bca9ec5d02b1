"""What a distributed job sends to its workers: how to build a Stylizer, and the job's settings.

Workers never receive a model object: a :class:`StylizerRecipe` names a module-level build
function (pickled by reference, imported by name on the worker) and plain-data arguments (model
names or paths, style image paths, numbers), so every worker builds its own Stylizer and backend,
sharing the on-disk engine cache.
"""
from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..backends import BackendOptions
    from ..stylizer import Stylizer

__all__ = ["BatchOptions", "StylizerRecipe", "plain_stylizer"]


def plain_stylizer(model: str, *, options: "BackendOptions", backend: str = "auto", device: str = "cpu",
                   precision: str = "fp32", size: int | tuple[int, int] | None = None, scale: float | None = None,
                   style_image: str | None = None, crossfade: int = 0, temporal: float | None = None,
                   temporal_preset: str = "file", style_encoder: str | None = None,
                   style_vector: str | None = None) -> "Stylizer":
    """Build a :class:`~rtstyle.stylizer.Stylizer` from plain settings (the default recipe).

    ``temporal``: stabiliser strength (``None``: off) with ``temporal_preset``; ``style_vector``:
    text the model parses (``"3:0.5,7:0.5"``, a bank style name).
    """
    from ..stylizer import Stylizer

    filt = None
    if temporal is not None:
        from ..temporal import make_temporal

        filt = make_temporal(temporal, temporal_preset)
    st = Stylizer(model, backend=backend, device=device, precision=precision, size=size, scale=scale,
                  style_image=style_image, crossfade=crossfade, options=options, temporal=filt,
                  style_encoder=style_encoder)
    if style_vector is not None:
        parse = getattr(st.state.model, "parse_style_vector", None)
        if parse is None:
            raise ValueError(f"model {st.spec.name} takes no style vector")
        st.set_style(style_vector=parse(style_vector), crossfade=0, wait=True)
    return st


@dataclass(frozen=True)
class StylizerRecipe:
    """How each worker builds its Stylizer: ``build(options=BackendOptions, **kwargs)``.

    Attributes:
        kwargs: plain data only (strings, numbers, tuples, dicts of those): it is pickled.
        build: a module-level function (workers import it by name); default :func:`plain_stylizer`,
            whose arguments are the Stylizer's (``model``, ``backend``, ``size``, ``temporal`` ...).
        crossfade: frames a style swap blends over (chunks warm up at least this long).
        temporal: whether the Stylizer carries state from frame to frame (chunks then warm up).
    """

    kwargs: Mapping[str, Any]
    build: Callable[..., "Stylizer"] = plain_stylizer
    crossfade: int = 0
    temporal: bool = False

    def __post_init__(self) -> None:
        fn = self.build
        mod, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
        try:
            found = importlib.import_module(mod) if mod else None
            for part in name.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
        if found is not fn or "<" in name:
            raise ValueError(f"StylizerRecipe.build must be a module-level function workers can import, got {fn!r}")
        try:
            pickle.dumps(dict(self.kwargs))
        except Exception as e:  # noqa: BLE001 - any pickling failure means the same thing here
            raise ValueError(f"StylizerRecipe.kwargs must be plain data (names, paths, numbers): {e}") from None
        for k, v in self.kwargs.items():
            if hasattr(v, "state_dict"):
                raise ValueError(f"StylizerRecipe.kwargs[{k!r}] is a module; pass its name or checkpoint path")

    @classmethod
    def plain(cls, model: str | Path, **kwargs: Any) -> "StylizerRecipe":
        """A recipe for :func:`plain_stylizer` (the Stylizer's own arguments)."""
        kw = {"model": str(model), **{k: (str(v) if isinstance(v, Path) else v) for k, v in kwargs.items()}}
        return cls(kwargs=kw, crossfade=int(kw.get("crossfade") or 0), temporal=kw.get("temporal") is not None)

    def make(self, options: "BackendOptions") -> "Stylizer":
        return self.build(options=options, **dict(self.kwargs))


@dataclass(frozen=True)
class BatchOptions:
    """Settings of a distributed stylisation job.

    Attributes:
        chunk_seconds: a job of one file is cut into chunks of about this length (``<= 0``: one
            task for the whole file). Jobs of several files run one task per file.
        warmup_frames: frames before each chunk that are stylised but not written, so stateful
            filters reach the boundary as in one process. ``None``: the recipe's crossfade, and
            one second of frames more with a temporal filter.
        overwrite: redo outputs that exist (otherwise complete ones are skipped, others refused).
        retries: extra attempts of a task whose worker died (killed, out of memory, node lost);
            an error of the task's own (a damaged input) is not retried: it would fail again.
        worker_cpus: CPUs (and threads) of each task.
        worker_gpus: GPUs of each task (1 with a CUDA device).
        swap: the ``--swap`` schedule text (:func:`rtstyle.schedule.parse_schedule`).
        max_frames: stylise only the first N frames of each file.
        crf / encoder_preset: encoder settings (the sink's defaults when ``None``).
        cache_dir: engine cache the workers share (default: the driver's, made absolute).
    """

    chunk_seconds: float = 10.0
    warmup_frames: int | None = None
    overwrite: bool = False
    retries: int = 2
    worker_cpus: float = 1.0
    worker_gpus: float = 0.0
    swap: str | None = None
    max_frames: int | None = None
    crf: int | None = None
    encoder_preset: str | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.worker_cpus <= 0:
            raise ValueError(f"worker_cpus must be > 0, got {self.worker_cpus}")
        if self.warmup_frames is not None and self.warmup_frames < 0:
            raise ValueError(f"warmup_frames must be >= 0, got {self.warmup_frames}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")

"""Engine cache: built artefacts (ONNX files, OpenVINO IR, TensorRT programs) keyed by what made them.

An entry is a folder ``<root>/<backend>/<model>-<precision>-<digest>/`` holding the backend's files
and a ``manifest.json`` with the key fields, so ``ls engines/*/*/manifest.json`` says what is there
and why. The digest covers every key field, so an entry is reused only when the model name, the
weights, the input shape range, the precision, the backend and its library version, and the device
are all the same. Entries are built in a temporary folder beside their final place and renamed into
it, so a crash or a concurrent build never leaves a half-written entry where :meth:`EngineCache.get`
would find it.

The root is, in order: an explicit ``root`` (``BackendOptions.cache_dir``), ``$RTSTYLE_ENGINES``,
or ``engines/`` in the current working directory. Deleting any entry (or the whole root) is always
safe: it is rebuilt on next use.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import time
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..engine_dir import default_cache_dir

__all__ = [
    "EngineCache",
    "EngineKey",
    "ShapeLRU",
    "default_cache_dir",
    "device_name",
    "engine_key",
    "format_shapes",
    "weights_hash",
]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_FORMAT = "rtstyle.engine/1"


# --------------------------------------------------------------------------- weights hash

# module -> (fingerprint of the tensors' identity and version counters, hash). The fingerprint is
# cheap (no data read), so the sha256 over all weight bytes runs once per module and again only
# after its tensors are replaced or modified in place (load_state_dict, an optimiser step).
_HASHES: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]]" = weakref.WeakKeyDictionary()


def _fingerprint(sd: Mapping[str, torch.Tensor]) -> tuple:
    return tuple((k, v.data_ptr(), v._version, tuple(v.shape), str(v.dtype)) for k, v in sd.items())


def weights_hash(model: nn.Module) -> str:
    """sha256 (hex) of a module's state dict: names, dtypes, shapes and raw tensor bytes.

    Computed once per module and remembered until its tensors change.
    """
    sd = model.state_dict()
    fp = _fingerprint(sd)
    hit = _HASHES.get(model)
    if hit is not None and hit[0] == fp:
        return hit[1]
    h = hashlib.sha256()
    for name in sorted(sd):
        t = sd[name].detach()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            # a uint8 view reads the raw bytes of any dtype (bf16 has no numpy equivalent)
            h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest = h.hexdigest()
    try:
        _HASHES[model] = (fp, digest)
    except TypeError:  # not weak-referenceable: just do not remember
        pass
    return digest


# --------------------------------------------------------------------------- device name

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: str | torch.device) -> str:
    """A stable human-readable name of the hardware an engine is built for.

    ``"cpu"`` gives the CPU model (``Intel(R) Xeon(R) ...``), ``"cuda:0"`` the GPU name and its
    compute capability; ``"any"`` is for device-independent artefacts such as an exported ONNX file.
    A string that is not a torch device is taken to be a name already and returned as is.
    """
    if isinstance(device, str):
        if device == "any":
            return "any"
        try:
            dev = torch.device(device)
        except RuntimeError:  # already a name (e.g. an OpenVINO device's FULL_DEVICE_NAME)
            return device
    else:
        dev = device
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(idx)
        return f"{torch.cuda.get_device_name(idx)} (sm_{major}{minor})"
    if dev.type == "cpu":
        return _cpu_model()
    return dev.type


# --------------------------------------------------------------------------- key

DimSpec = int | tuple[int | None, int | None] | None  # fixed size | (min, max) range | unbounded


def format_shapes(shapes: Sequence[Sequence[DimSpec]]) -> str:
    """Canonical text of input shapes: ``1x3x[64..1080]x[64..];1x512x1x1`` (``?`` = any size)."""
    out = []
    for shape in shapes:
        dims = []
        for d in shape:
            if d is None:
                dims.append("?")
            elif isinstance(d, (tuple, list)):
                lo, hi = (None if v is None else int(v) for v in d)
                if lo is not None and hi is not None and lo > hi:
                    raise ValueError(f"shape range min {lo} > max {hi}")
                dims.append(f"[{'' if lo is None else lo}..{'' if hi is None else hi}]")
            else:
                dims.append(str(int(d)))
        out.append("x".join(dims))
    return ";".join(out)


@dataclass(frozen=True)
class EngineKey:
    """Everything a built engine depends on. Two equal keys can share one engine.

    Attributes:
        model: model name (the spec's name, else the class name).
        weights: :func:`weights_hash` of the model.
        shapes: input shapes or shape ranges, see :func:`format_shapes`.
        precision: ``fp32``, ``bf16``, ``fp16``, ``int8``.
        backend: artefact kind, e.g. ``onnx-export``, ``openvino``, ``tensorrt``.
        backend_version: the library versions that built it.
        device: :func:`device_name` of the hardware (``any`` if device-independent).
        settings: other build settings that change the artefact (opset, refittable ...).
    """

    model: str
    weights: str
    shapes: str
    precision: str
    backend: str
    backend_version: str
    device: str
    settings: tuple[tuple[str, str], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = dict(self.settings)
        return d

    @property
    def digest(self) -> str:
        """20 hex digits of sha256 over all fields."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def dirname(self) -> str:
        """The entry's folder name: readable prefix plus digest."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model).strip("._-")[:48] or "model"
        return f"{slug}-{self.precision}-{self.digest}"


def engine_key(
    model: nn.Module,
    *,
    shapes: Sequence[Sequence[DimSpec]],
    precision: str,
    backend: str,
    backend_version: str,
    device: str | torch.device,
    settings: Mapping[str, Any] | None = None,
) -> EngineKey:
    """Build the cache key of an engine for ``model``.

    Args:
        model: the module; its name comes from ``model.spec.name`` when it has a spec.
        shapes: one shape per input; each dim is an int, a ``(min, max)`` range or ``None`` (any).
        precision: the artefact's precision.
        backend: artefact kind (folder under the cache root).
        backend_version: versions of the libraries that build and run it.
        device: a torch device, or ``"any"`` for device-independent artefacts.
        settings: further build settings that change the artefact.
    """
    spec = getattr(model, "spec", None)
    name = getattr(spec, "name", None) or type(model).__name__
    return EngineKey(
        model=str(name),
        weights=weights_hash(model),
        shapes=format_shapes(shapes),
        precision=str(precision),
        backend=str(backend),
        backend_version=str(backend_version),
        device=device_name(device),
        settings=tuple(sorted((str(k), str(v)) for k, v in (settings or {}).items())),
    )


# --------------------------------------------------------------------------- cache

class EngineCache:
    """Folder of built engines, one sub-folder per :class:`EngineKey`.

    Args:
        root: cache folder (default :func:`default_cache_dir`).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: EngineKey) -> Path:
        """Where ``key``'s entry lives (whether or not it exists)."""
        return self.root / re.sub(r"[^A-Za-z0-9._-]+", "_", key.backend) / key.dirname

    def get(self, key: EngineKey) -> Path | None:
        """The entry's folder if it is complete and made for exactly this key, else ``None``."""
        p = self.path(key)
        try:
            manifest = json.loads((p / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("key") != key.to_dict():  # digest prefix collision or hand-edited entry
            log.warning("engine cache entry %s does not match its key; ignoring it", p)
            return None
        return p

    def put(self, key: EngineKey, build_fn: Callable[[Path], Any]) -> Path:
        """Return the entry for ``key``, building it with ``build_fn(folder)`` if it is missing.

        ``build_fn`` writes the engine's files into the (temporary) folder it is given; the folder
        is renamed into place only after it returns, with the manifest written last.

        Returns:
            The entry's folder.
        """
        hit = self.get(key)
        if hit is not None:
            return hit
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        try:
            t0 = time.perf_counter()
            build_fn(tmp)
            manifest = {
                "format": _FORMAT,
                "key": key.to_dict(),
                "digest": key.digest,
                "files": sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()),
                "build_seconds": round(time.perf_counter() - t0, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "torch": torch.__version__,
            }
            _write_atomic(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            if final.exists():  # a stale or foreign entry (get() refused it), or a concurrent build
                if self.get(key) is not None:
                    return final
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except OSError:
                if self.get(key) is not None:  # another process renamed its copy first
                    return final
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("built engine %s in %.1f s", final, manifest["build_seconds"])
        return final

    def find_similar(self, key: EngineKey, ignore: Sequence[str] = ("weights",)) -> Path | None:
        """The newest complete entry whose key equals ``key`` except for the ``ignore`` fields.

        For refittable engines: an engine of the same architecture, shapes and settings built for
        other weights can be refitted instead of rebuilt.
        """
        want = {k: v for k, v in key.to_dict().items() if k not in ignore}
        best: tuple[float, Path] | None = None
        for m in (self.root / re.sub(r"[^A-Za-z0-9._-]+", "_", key.backend)).glob(f"*/{MANIFEST}"):
            try:
                got = json.loads(m.read_text()).get("key", {})
            except (OSError, ValueError):
                continue
            if {k: v for k, v in got.items() if k not in ignore} == want:
                t = m.stat().st_mtime
                if best is None or t > best[0]:
                    best = (t, m.parent)
        return best[1] if best else None

    def entries(self) -> list[dict[str, Any]]:
        """Manifests of all complete entries (for listing and cleanup)."""
        out = []
        for m in sorted(self.root.glob(f"*/*/{MANIFEST}")):
            try:
                d = json.loads(m.read_text())
            except (OSError, ValueError):
                continue
            d["path"] = str(m.parent)
            out.append(d)
        return out


class ShapeLRU:
    """The few most recently used per-shape objects (compiled models, sessions), built on demand.

    For backends that specialise an engine to one input shape: a live source changing resolution
    builds once per new shape and flipping back is free while the shape is still held.

    Args:
        build: ``build(shapes) -> object`` for a tuple of input shapes.
        size: how many to keep.
    """

    def __init__(self, build: Callable[[tuple[tuple[int, ...], ...]], Any], size: int = 4) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.build = build
        self.size = int(size)
        self._items: dict[tuple[tuple[int, ...], ...], Any] = {}
        self.builds = 0

    def get(self, shapes: tuple[tuple[int, ...], ...]) -> Any:
        item = self._items.pop(shapes, None)
        if item is None:
            item = self.build(shapes)
            self.builds += 1
            while len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))  # dicts keep insertion order: oldest first
        self._items[shapes] = item
        return item

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)

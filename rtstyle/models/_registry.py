"""Model registry: ``@register_model`` factories, ``create_model`` and ``list_models``.

Factories are registered under ``family.variant`` names. ``create_model`` also accepts a
checkpoint path (``path.pth``, ``path.safetensors``) or ``family:PATH``; the checkpoint
format is detected from its keys by the family's loader.
"""
from __future__ import annotations

import difflib
import fnmatch
import logging
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from torch import nn

from ..weights import check_weight_file
from ._spec import ModelSpec

__all__ = [
    "ModelEntry",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "list_models",
    "register_model",
    "register_path_loader",
]

log = logging.getLogger(__name__)


class UnknownModelError(KeyError):
    """Raised for a model name that is neither registered nor a readable checkpoint."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else "unknown model"


class Factory(Protocol):
    def __call__(self, spec: ModelSpec, **kwargs: object) -> nn.Module: ...


class PathLoader(Protocol):
    def __call__(self, path: Path, **kwargs: object) -> nn.Module | None: ...


@dataclass(frozen=True)
class ModelEntry:
    spec: ModelSpec
    factory: Factory


_MODELS: dict[str, ModelEntry] = {}
_CKPT_EXTS = {".pth", ".pt", ".model", ".safetensors", ".onnx", ".ckpt", ".bin"}
# family -> (priority, loader); tried by descending priority, then in registration order
_PATH_LOADERS: dict[str, tuple[int, PathLoader]] = {}


def register_model(spec: ModelSpec) -> Callable[[Factory], Factory]:
    """Register ``factory(spec, **kwargs) -> nn.Module`` under ``spec.name``."""

    def deco(factory: Factory) -> Factory:
        if spec.name in _MODELS:
            raise ValueError(f"model {spec.name!r} is registered twice")
        _MODELS[spec.name] = ModelEntry(spec, factory)
        return factory

    return deco


def register_path_loader(family: str, loader: PathLoader, *, priority: int = 0) -> None:
    """Register a loader that turns a checkpoint file into a model, or returns ``None``
    when the file is not of its format.

    Args:
        family: the ``family:PATH`` prefix that forces this loader.
        loader: ``loader(path, **kwargs) -> model | None``.
        priority: loaders are tried by descending priority, equal ones in registration order.
            A loader that declines every file but its own format cheaply (by suffix) should go
            before the checkpoint families, which open any file with ``torch.load`` and raise
            on one that is not theirs.
    """
    _PATH_LOADERS[family] = (int(priority), loader)


def _path_loaders() -> list[str]:
    """Registered families in the order their loaders are tried."""
    order = {f: i for i, f in enumerate(_PATH_LOADERS)}
    return sorted(_PATH_LOADERS, key=lambda f: (-_PATH_LOADERS[f][0], order[f]))


def _ensure_builtin() -> None:
    # Importing the families registers them; done lazily to keep ``import rtstyle`` light.
    from . import johnson  # noqa: F401
    from . import _foreign_builtin, foreign  # noqa: F401
    from . import styleswap  # noqa: F401
    from . import adain, linear, metanet, msgnet, vgg_adain, wct  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (e.g. ``"johnson.*"``)."""
    _ensure_builtin()
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model."""
    _ensure_builtin()
    try:
        return _MODELS[name].spec
    except KeyError:
        raise UnknownModelError(_unknown_message(name)) from None


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `rtstyle models`"
    return f"unknown model {name!r}{hint}"


# What torch.load(weights_only=True) says about a pickle holding more than tensors starts with
# advice to load it unsafely; the user gets what it means instead.
_UNSAFE_PICKLE = "Weights only load failed"
_FILE_RUNTIME_ERRORS = ("PytorchStreamReader", "loading state_dict", "zip archive", "unexpected EOF")


def _reason(exc: BaseException) -> str:
    """One short line out of a loader's error."""
    text = str(exc)
    if _UNSAFE_PICKLE in text:
        if "Unsupported global" in text or "GLOBAL" in text:
            return ("the file holds pickled Python objects, not only tensors (a whole pickled model?); "
                    "save its state_dict() instead")
        return "not a PyTorch checkpoint (unreadable pickle)"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    if first.endswith(":") and len(lines) > 1:  # "Error(s) in loading state_dict for X:" + the first error
        first = f"{first} {lines[1]}"
    return first if len(first) <= 200 else first[:197] + "..."


@contextmanager
def _load_errors(what: str) -> Iterator[None]:
    """Turn a damaged or foreign weight file's low-level error into one :class:`WeightFileError` line.

    Errors that already are user errors (a missing file, an unknown name, a wrong control) pass as
    they are; ValueErrors keep their message unless it is torch's unsafe-pickle essay.
    """
    from ..weights import WeightFileError

    try:
        yield
    except (FileNotFoundError, PermissionError, UnknownModelError, WeightFileError, TypeError):
        raise
    except ValueError as e:
        if _UNSAFE_PICKLE in str(e):
            raise WeightFileError(f"{what}: {_reason(e)}") from e
        raise
    except (pickle.UnpicklingError, EOFError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise WeightFileError(f"{what}: cannot load the weights ({_reason(e)})") from e
    except RuntimeError as e:
        # torch's reader of a broken zip and load_state_dict's size mismatches; other RuntimeErrors
        # (a backend, a device) are not about the file and keep their own message
        if any(m in str(e) for m in _FILE_RUNTIME_ERRORS):
            raise WeightFileError(f"{what}: cannot load the weights ({_reason(e)})") from e
        raise
    except Exception as e:
        # safetensors' error is a bare Exception subclass; matched by name so that this module
        # does not import the package just to name it
        if type(e).__name__ == "SafetensorError":
            raise WeightFileError(f"{what}: damaged safetensors file ({_reason(e)})") from e
        raise


def create_model(name: str | Path, **kwargs: object) -> nn.Module:
    """Build a model by registry name or from a checkpoint path.

    Args:
        name: a registered name (``johnson.starry_night_lite``), a checkpoint path, or
            ``family:PATH`` to force the loader of one family.
        **kwargs: passed to the factory or loader.

    Returns:
        An ``nn.Module`` in eval mode with a ``spec`` attribute (:class:`ModelSpec`).
    """
    _ensure_builtin()
    text = str(name)
    if text in _MODELS:
        entry = _MODELS[text]
        with _load_errors(text):
            model = entry.factory(entry.spec, **kwargs)
    else:
        family, _, rest = text.partition(":")
        if rest and family in _PATH_LOADERS:
            path = Path(rest).expanduser()
            families = [family]
        else:
            path = Path(text).expanduser()
            families = _path_loaders()
        if not path.exists():
            if any(sep in text for sep in ("/", "\\")) or path.suffix.lower() in _CKPT_EXTS:
                raise FileNotFoundError(f"model file not found: {path}")
            raise UnknownModelError(_unknown_message(text))
        if not path.is_file():
            raise UnknownModelError(f"model path {path} is not a file")
        check_weight_file(path)  # a truncated or foreign file: one line before any loader tries it
        model = None
        for fam in families:
            with _load_errors(str(path)):
                model = _PATH_LOADERS[fam][1](path, **kwargs)
            if model is not None:
                break
        if model is None:
            raise UnknownModelError(
                f"{path}: not a checkpoint of a known layout (tried {', '.join(families)})"
            )
    if not isinstance(getattr(model, "spec", None), ModelSpec):
        raise TypeError(f"factory for {text!r} returned a model without a ModelSpec")
    return model.eval()

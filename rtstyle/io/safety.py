"""Rules every file output follows: never the input, never an existing file unasked, never half a file.

The sinks call :func:`check_output` when they open and write through :func:`temp_path`: a hidden
file beside the target that is renamed over it (atomic on one file system) only once it is
complete, so a crash, a full disk or Ctrl-C never leaves a truncated file under the final name.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .base import SinkError

__all__ = ["OutputExistsError", "SameFileError", "check_output", "check_writable", "same_file", "temp_path"]

log = logging.getLogger(__name__)


class OutputExistsError(SinkError):
    """The output file exists and overwriting it was not asked for."""


class SameFileError(SinkError):
    """The output is the input file (same path, or a link to the same inode)."""


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: equal once resolved (symlinks followed), or the same inode
    (a hard link). A path that does not exist yet is compared by its resolved name only."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass  # unreadable metadata: fall back to comparing names
    return pa.resolve() == pb.resolve()


def check_output(path: str | os.PathLike[str], *, overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike[str] | None] = ()) -> None:
    """Refuse an output that is one of ``inputs`` (always) or that exists (unless ``overwrite``).

    Raises:
        SameFileError: ``path`` is one of the inputs.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    p = Path(path)
    for src in inputs:
        if src is not None and same_file(src, p):
            raise SameFileError(f"refusing to write {p}: it is the input file {src}")
    if not overwrite and (p.exists() or p.is_symlink()):
        raise OutputExistsError(f"refusing to overwrite {p}: it exists")


def check_writable(path: str | os.PathLike[str], *, folder: str | os.PathLike[str] | None = None) -> None:
    """Refuse an output file that cannot be created: ``path`` is a folder, its ``folder`` (default:
    its parent) is missing or not writable, or an existing ``path`` is read-only. With ``folder``
    given and ``path`` a folder (an image sink's output folder) only the folder is checked.

    Raises:
        SinkError: saying which of these it is.
    """
    p = Path(path)
    d = Path(folder) if folder is not None else (p.parent if str(p.parent) else Path("."))
    if folder is None and p.is_dir():
        raise SinkError(f"cannot write {p}: it is a folder")
    if not d.is_dir():
        raise SinkError(f"cannot write {p}: folder {d} does not exist")
    if not os.access(d, os.W_OK | os.X_OK):
        raise SinkError(f"cannot write {p}: folder {d} is not writable")
    if folder is None and p.exists() and not os.access(p, os.W_OK):
        raise SinkError(f"cannot write {p}: the existing file is read-only")


def temp_path(path: str | os.PathLike[str]) -> Path:
    """The hidden file ``path`` is written to before the rename: ``.NAME.part.EXT`` beside it (same
    folder, so the rename stays on one file system and is atomic)."""
    p = Path(path)
    return p.with_name(f".{p.stem}.part{p.suffix}")


def refuse_input_as_output(source_path: str | os.PathLike[str] | None, sinks: Iterable[object]) -> None:
    """Refuse file sinks that would write over the source file (a pipeline's input and outputs).

    Raises:
        SameFileError: a video or image file sink's path is the source file.
    """
    if not source_path:
        return
    from .images import ImageSink
    from .video import VideoFileSink

    for sink in sinks:
        if isinstance(sink, VideoFileSink) or (isinstance(sink, ImageSink) and not sink.folder_mode):
            check_output(sink.path, overwrite=True, inputs=(source_path,))

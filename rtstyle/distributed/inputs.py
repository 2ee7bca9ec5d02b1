"""The files of a batch job: a file, a folder, a glob pattern or a list file, and their outputs."""
from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from ..image import VIDEO_EXTENSIONS, VIDEO_INPUT_EXTENSIONS

__all__ = ["LIST_EXTENSIONS", "expand_inputs", "output_paths"]

#: A list file: one video path per line (``#`` comments, blank lines ignored; relative paths are
#: relative to the list file).
LIST_EXTENSIONS = (".txt", ".lst", ".list")


def _is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_INPUT_EXTENSIONS and p.is_file() and not p.name.startswith(".")


def expand_inputs(spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> tuple[list[Path], bool]:
    """The video files of ``spec``, and whether it names several (a folder, glob, list or sequence).

    Raises:
        FileNotFoundError: nothing matches (a missing file, an empty folder, a glob with no videos).
        ValueError: a single file that is not a video.
    """
    if not isinstance(spec, (str, os.PathLike)):
        files = [Path(s) for s in spec]
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"input not found: {f}")
        return files, True
    text = str(spec)
    p = Path(text)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if _is_video(f))
        if not files:
            raise FileNotFoundError(f"no video files ({' '.join(sorted(VIDEO_INPUT_EXTENSIONS))}) in {p}")
        return files, True
    if p.is_file() and p.suffix.lower() in LIST_EXTENSIONS:
        files = []
        for line in p.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                f = Path(line) if Path(line).is_absolute() else p.parent / line
                if not f.is_file():
                    raise FileNotFoundError(f"{p}: input not found: {line}")
                files.append(f)
        if not files:
            raise FileNotFoundError(f"{p} lists no files")
        return files, True
    if p.is_file():
        if p.suffix.lower() not in VIDEO_INPUT_EXTENSIONS:
            raise ValueError(f"batch jobs stylize video files ({' '.join(sorted(VIDEO_INPUT_EXTENSIONS))}); {p} is not one")
        return [p], False
    if glob.has_magic(text):
        files = sorted(Path(f) for f in glob.glob(text, recursive=True) if _is_video(Path(f)))
        if not files:
            raise FileNotFoundError(f"no video files match {text}")
        return files, True
    raise FileNotFoundError(f"input not found: {text}")


def output_paths(inputs: Sequence[Path], output: str | os.PathLike[str], many: bool) -> list[Path]:
    """Where each input's result goes: ``output`` itself for one file, else ``output/<input name>``.

    Raises:
        ValueError: one input but ``output`` is no video file name; several inputs but ``output``
            is a file; two inputs with the same name.
    """
    out = Path(output)
    if not many:
        if out.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ValueError(f"video input needs a video output ({', '.join(sorted(VIDEO_EXTENSIONS))}), got {out}")
        return [out]
    if out.exists() and not out.is_dir():
        raise ValueError(f"several inputs need an output folder, and {out} is a file")
    if out.suffix.lower() in VIDEO_EXTENSIONS:
        raise ValueError(f"several inputs need an output folder, got the file name {out}")
    names: dict[str, Path] = {}
    outs = []
    for f in inputs:
        if f.name in names:
            raise ValueError(f"two inputs are named {f.name}: {names[f.name]} and {f}")
        names[f.name] = f
        # containers the sink does not write (.mpg, .wmv, .3gp ...: not in VIDEO_EXTENSIONS) become .mp4
        outs.append(out / (f.name if f.suffix.lower() in VIDEO_EXTENSIONS else f.stem + ".mp4"))
    return outs

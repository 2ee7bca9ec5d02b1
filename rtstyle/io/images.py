"""Still images: :class:`ImageSource` (one file or a folder) and :class:`ImageSink`.

Reading and the extension set are :mod:`rtstyle.image`'s (re-exported here).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..frame import Frame
from ..image import IMAGE_EXTENSIONS, encode_image, read_image
from .base import Sink, SinkError, Source, SourceError, SourceInfo
from .safety import check_output, check_writable, temp_path

__all__ = ["IMAGE_EXTENSIONS", "ImageSink", "ImageSource", "list_images", "read_image", "write_image"]

log = logging.getLogger(__name__)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a ``uint8`` RGB image; the format follows the extension.

    The image goes to a hidden temporary file beside ``path`` that is renamed over it when complete,
    so ``path`` never holds half an image (a full disk, a crash).

    Raises:
        SinkError: the image cannot be encoded or written; nothing is left behind.
    """
    p = Path(path)
    buf = _encode(image, p.suffix)
    temp = temp_path(p)
    try:
        # open().write rather than ndarray.tofile: a full disk then says ENOSPC, not "N requested, M written"
        with open(temp, "wb") as f:
            f.write(buf)
        os.replace(temp, p)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise SinkError(f"cannot write {p}: {exc.strerror or exc}") from None


def _encode(image: np.ndarray, suffix: str) -> bytes:
    try:
        return encode_image(image, suffix)
    except ValueError as exc:
        raise SinkError(str(exc)) from None


def list_images(path: str | os.PathLike[str]) -> list[Path]:
    """The image files a user string names: a file, a folder (its images, sorted by name) or a glob
    pattern (``photos/*.jpg``, quoted so the shell leaves it alone).

    Raises:
        SourceError: nothing exists there, or the folder / pattern holds no images.
    """
    import glob

    raw = str(path)
    p = Path(raw).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
        if not files:
            raise SourceError(f"no images in folder {p}")
        return files
    if p.is_file():
        return [p]
    if glob.has_magic(raw):
        files = sorted(Path(f) for f in glob.glob(str(p)) if Path(f).suffix.lower() in IMAGE_EXTENSIONS
                       and Path(f).is_file())
        if not files:
            raise SourceError(f"no images match {raw}")
        return files
    raise SourceError(f"image not found: {p}")


class ImageSource(Source):
    """Frames from one image file, or from every image in a folder (sorted by name).

    Frames have ``index`` = position in the list, ``pts`` = ``None`` and ``meta["path"]`` = the
    file they came from. Images in a folder may differ in size; ``info`` gives the size of the
    first readable one.

    Args:
        path: an image file, a folder of images, a glob pattern, or a list of image files.
        skip_unreadable: a file that cannot be read is skipped (named in :attr:`failed` and in a
            warning) instead of ending the stream with an error: one bad photo does not cost the
            others. Default: True for several files, False for one.

    Raises:
        SourceError: the path does not exist, the folder holds no images, or no image (the first,
            when not skipping) is readable.
    """

    def __init__(self, path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                 skip_unreadable: bool | None = None) -> None:
        if isinstance(path, (str, os.PathLike)):
            label = str(path)
            files = list_images(path)
        else:
            files = [Path(f) for f in path]
            label = str(files[0].parent) if files else ""
            if not files:
                raise SourceError("no images given")
        self.files: list[Path] = files
        self.skip_unreadable = len(files) > 1 if skip_unreadable is None else bool(skip_unreadable)
        #: ``(file, reason)`` of every file skipped as unreadable so far.
        self.failed: list[tuple[Path, str]] = []
        self._next = 0
        self._first: np.ndarray | None = None
        while self._first is None:
            try:
                self._first = read_image(files[self._next])
            except SourceError as exc:
                if not self.skip_unreadable:
                    raise
                self._skip(files[self._next], exc)
                self._next += 1
                if self._next >= len(files):
                    raise SourceError(f"no readable image among the {len(files)} in {label}") from None
        h, w = self._first.shape[:2]
        self.info = SourceInfo(width=w, height=h, fps=0.0, live=False, frame_count=len(files), path=label)

    def _skip(self, file: Path, exc: SourceError) -> None:
        reason = str(exc).removeprefix(f"cannot decode {file}: ").removeprefix(f"cannot read {file}: ")
        self.failed.append((file, reason))
        log.warning("skipping %s: %s", file, reason)

    def read(self) -> Frame | None:
        """The next image, ``None`` after the last.

        Raises:
            SourceError: an image is unreadable and ``skip_unreadable`` is off.
        """
        while self._next < len(self.files):
            i = self._next
            self._next += 1
            if self._first is not None:
                image, self._first = self._first, None
            else:
                try:
                    image = read_image(self.files[i])
                except SourceError as exc:
                    if not self.skip_unreadable:
                        raise
                    self._skip(self.files[i], exc)
                    continue
            return Frame(image, index=i, pts=None, meta={"path": str(self.files[i])})
        return None

    def close(self) -> None:
        """Nothing to release; stops iteration."""
        self._next = len(self.files)
        self._first = None


class ImageSink(Sink):
    """Write frames as images.

    With a file path (``out.png``, ``out.jpg`` ...) the last frame written is saved there when the
    sink closes. With a folder (existing, or a path ending in ``/``) every frame is saved in it:
    under its input's file name when it came from an image file (``meta["path"]``), else as
    ``frame_000123.png`` after its index; the folder is created if needed. Every image goes to a
    hidden temporary file first and is renamed when complete, so no half-written image is ever left
    under its final name (a full disk, Ctrl-C).

    Args:
        path_or_folder: an image file path or a folder.
        pattern: file name pattern in folder mode, for frames that do not come from a file.
        overwrite: replace existing images; without it an existing target is refused.

    Raises:
        SinkError: the path's parent folder does not exist or is not writable.
        OutputExistsError: file mode: the file exists and ``overwrite`` is False.
    """

    lossless = True

    def __init__(self, path_or_folder: str | os.PathLike[str], *, pattern: str = "frame_{index:06d}.png",
                 overwrite: bool = False) -> None:
        raw = str(path_or_folder)
        p = Path(raw)
        self.folder_mode = p.is_dir() or raw.endswith(("/", os.sep)) or not p.suffix
        if not self.folder_mode and p.suffix.lower() not in IMAGE_EXTENSIONS:
            known = " ".join(sorted(IMAGE_EXTENSIONS))
            raise SinkError(f"cannot write {p}: unknown image extension {p.suffix!r} (use one of {known})")
        self.path = p
        self.pattern = pattern
        self.overwrite = overwrite
        if self.folder_mode:
            check_writable(p, folder=p if p.is_dir() else p.parent)
        else:
            check_writable(p)
            check_output(p, overwrite=overwrite)
        self._created_folder = False
        self._written: list[Path] = []
        self._last: Frame | None = None
        self._closed = False

    def target(self, frame: Frame) -> Path:
        """Folder mode: the file ``frame`` is saved as."""
        src = frame.meta.get("path")
        return self.path / (Path(src).name if src else self.pattern.format(index=frame.index))

    def write(self, frame: Frame) -> None:
        """Save the frame (folder mode) or remember it (file mode).

        Raises:
            SinkError: the image cannot be written (the partial file is removed).
            SameFileError: the target is the frame's own input file.
            OutputExistsError: the target exists and ``overwrite`` is False.
        """
        if self._closed:
            raise SinkError(f"cannot write {self.path}: the sink is closed")
        if not self.folder_mode:
            if frame.meta.get("path"):
                check_output(self.path, overwrite=True, inputs=(frame.meta["path"],))
            self._last = frame
            return
        if not self.path.is_dir():
            try:
                self.path.mkdir()
            except OSError as exc:
                raise SinkError(f"cannot create folder {self.path}: {exc.strerror}") from None
            self._created_folder = True
        target = self.target(frame)
        check_output(target, overwrite=self.overwrite, inputs=(frame.meta.get("path"),))
        write_image(target, frame.image)
        self._written.append(target)

    def close(self) -> None:
        """File mode: write the last frame (through a temporary file, then rename)."""
        if self._closed:
            return
        self._closed = True
        if self.folder_mode:
            log.info("wrote %d images to %s", len(self._written), self.path)
            return
        if self._last is None:
            log.warning("%s: no frame was written; no file created", self.path)
            return
        write_image(self.path, self._last.image)
        self._last = None
        log.info("wrote %s", self.path)

    def abort(self) -> None:
        """Write nothing more and delete the images this sink wrote."""
        if self._closed:
            return
        self._closed = True
        self._last = None
        for f in self._written:
            f.unlink(missing_ok=True)
        if self._created_folder:
            try:
                self.path.rmdir()
            except OSError:
                pass  # someone else put files there; leave it

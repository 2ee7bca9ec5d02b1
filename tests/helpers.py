"""Plain helpers shared by test modules (importable as ``helpers``: ``pythonpath = ["tests"]`` in
pyproject.toml, since ``--import-mode=importlib`` gives test modules no package to import from)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["assert_export_parity", "audio_packets", "input_pts", "psnr", "shrunk_copy", "small_training_folders", "video_frames", "wait_for"]


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``cond`` until it returns something truthy and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def video_frames(path: Path) -> tuple[list[int], list[np.ndarray]]:
    """A container's decoded video frames: their pts and RGB arrays (needs PyAV)."""
    import av

    with av.open(str(path)) as c:
        frames = list(c.decode(c.streams.video[0]))
    return [f.pts for f in frames], [f.to_ndarray(format="rgb24") for f in frames]


def input_pts(path: Path) -> list[int]:
    """The sorted pts of a container's video packets."""
    import av

    with av.open(str(path)) as c:
        return sorted(p.pts for p in c.demux(c.streams.video[0]) if p.pts is not None)


def audio_packets(path: Path) -> list[tuple[int, int]]:
    """``(pts, size)`` of each audio packet (empty without an audio stream)."""
    import av

    with av.open(str(path)) as c:
        return [(p.pts, p.size) for p in c.demux(c.streams.audio[0]) if p.dts is not None] if c.streams.audio else []


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 images in dB (99 when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def shrunk_copy(src: Path, dst: Path, side: int = 64) -> None:
    """Write ``src`` to ``dst`` with its shorter side resized to ``side`` (small real training images)."""
    import cv2

    img = cv2.imread(str(src))
    h, w = img.shape[:2]
    s = side / min(h, w)
    cv2.imwrite(str(dst), cv2.resize(img, (max(side, round(w * s)), max(side, round(h * s))), interpolation=cv2.INTER_AREA))


def assert_export_parity(backend: str, model: Any, content: Any, style_inputs: list[tuple[Any, ...]], cache_dir: Path,
                         min_db: float = 35.0) -> None:
    """Export ``model`` once on ``backend`` (fp32) and check it against eager for every set of style inputs
    (a new style is the same graph with other inputs)."""
    import torch

    from rtstyle.backends import BackendOptions, create_backend

    runner = create_backend(backend, BackendOptions(cache_dir=cache_dir, precision="fp32")).prepare(
        model, (content, *style_inputs[0]))
    for ins in style_inputs:
        with torch.no_grad():
            ref = model(content, *ins)
        mse = float(((runner(content, *ins).float() - ref) ** 2).mean())
        assert 10 * np.log10(1.0 / max(mse, 1e-12)) >= min_db, backend


def small_training_folders(shared: Path, root: Path, styles: tuple[str, ...] = ("candy", "starry_night", "the_scream"),
                           photos: int = 4, side: int = 64) -> tuple[Path, Path]:
    """``root/content`` (the first ``photos`` training photos) and ``root/styles`` (the named paintings),
    each image shrunk to a shorter side of ``side``: real data for a few training steps."""
    content, style_dir = root / "content", root / "styles"
    content.mkdir()
    style_dir.mkdir()
    for i, p in enumerate(sorted((shared / "media" / "photos" / "train_256").glob("*.jpg"))[:photos]):
        shrunk_copy(p, content / f"{i}.jpg", side)
    for n in styles:
        shrunk_copy(shared / "media" / "styles" / f"{n}.jpg", style_dir / f"{n}.jpg", side)
    return content, style_dir


def train_tiny_with_video(shared: Path, vgg16_path: Path, data: Path, out: Path) -> Path:
    """Two real steps of ``rtstyle train johnson`` (a width-4 net at 48 px) with the video temporal loss on
    the exact-flow clip ``shared/media/flow/synthetic``; the trained weights."""
    from rtstyle.cli import main

    assert main(["-q", "train", "johnson", "--style", str(shared / "media" / "styles" / "wave.jpg"),
                 "--data", str(data), "--out", str(out), "--name", "johnson.tiny_video", "--vgg", str(vgg16_path),
                 "--steps", "2", "--batch", "1", "--size", "48", "--style-size", "64", "--width", "4", "--n-res", "1",
                 "--preview-every", "0", "--temporal-video", str(shared / "media" / "flow" / "synthetic"),
                 "--temporal-video-weight", "1e6", "--temporal-video-frames", "4"]) == 0
    (weights,) = out.glob("*.safetensors")
    return weights

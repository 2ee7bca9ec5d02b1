"""Render rtstyle's bundled sample clip (rtstyle/assets/sample.mp4) from scratch.

Everything is procedural (no third-party pixels or sound), so the clip is licence-clean:
a panning landscape (sky, clouds, sun, layered mountains, a lake with reflections, trees) with a
moving boat and birds, plus a soft synthesized chord as the audio track.

    python tools/make_sample.py [OUT.mp4] [--seconds 4] [--size 640x360] [--fps 25]
"""
from __future__ import annotations

import argparse
import os
from fractions import Fraction
from pathlib import Path

import numpy as np


def _noise(h: int, w: int, rng: np.random.Generator, octaves: int = 5) -> np.ndarray:
    import cv2

    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = max(2, h >> (octaves - o)), max(2, w >> (octaves - o))
        layer = cv2.resize(rng.random((gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        out += amp * layer
        total += amp
        amp *= 0.5
    return out / total


def render_panorama(h: int, w: int, seed: int = 7) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    sky = np.stack([90 + 120 * y, 140 + 90 * y, 230 - 30 * y], -1) * np.ones((1, w, 1), np.float32)
    clouds = np.clip((_noise(h, w, rng) - 0.5) * 3.0, 0, 1)[..., None] * (y < 0.45)[..., None]
    img = sky * (1 - clouds) + 245 * clouds
    cv2.circle(img, (int(w * 0.7), int(h * 0.22)), int(h * 0.07), (255, 236, 170), -1, cv2.LINE_AA)
    horizon = int(h * 0.62)
    xs = np.arange(w)
    for k, (base, amp, col) in enumerate([(0.38, 0.12, (120, 130, 160)), (0.46, 0.10, (80, 105, 110)), (0.53, 0.07, (50, 85, 60))]):
        prof = _noise(1, w, rng, octaves=6)[0]
        ridge = (h * (base + amp * (prof - 0.5) * 2)).astype(int)
        shade = _noise(h, w, rng)[..., None] * 30
        mask = (np.arange(h)[:, None] >= ridge[None, :]) & (np.arange(h)[:, None] < horizon)
        img = np.where(mask[..., None], np.array(col, np.float32) + shade - 15, img)
    # trees along the shore
    for x in rng.integers(0, w, w // 12):
        th = int(rng.integers(h // 14, h // 7))
        pts = np.array([[x, horizon - th], [x - th // 4, horizon], [x + th // 4, horizon]], np.int32)
        cv2.fillPoly(img, [pts], (30 + float(rng.integers(0, 30)), 70 + float(rng.integers(0, 40)), 35), cv2.LINE_AA)
    # lake: reflection of what is above the horizon, darkened and rippled
    refl = img[horizon - (h - horizon): horizon][::-1].copy()
    ripple = (_noise(h - horizon, w, rng, 4) - 0.5) * 10
    map_x = (xs[None, :] + ripple).astype(np.float32)
    map_y = np.repeat(np.arange(h - horizon, dtype=np.float32)[:, None], w, 1)
    refl = cv2.remap(refl, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img[horizon:] = refl * 0.65 + np.array([20, 40, 70], np.float32) * 0.35
    return np.clip(img, 0, 255).astype(np.uint8)


def render(out: Path, seconds: float = 4.0, size: tuple[int, int] = (640, 360), fps: int = 25) -> Path:
    import av
    import cv2

    w, h = size
    pano = render_panorama(h, int(w * 1.6))
    n = int(seconds * fps)
    rate = 44100
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "27", "preset": "slow"}
        a = c.add_stream("aac", rate=rate)
        a.layout = "stereo"
        for i in range(n):
            x0 = int((pano.shape[1] - w) * i / max(1, n - 1))
            f = pano[:, x0 : x0 + w].copy()
            bx = int(w * 0.15 + w * 0.5 * i / n)
            by = int(h * 0.75)
            cv2.fillPoly(f, [np.array([[bx - 30, by], [bx + 30, by], [bx + 20, by + 10], [bx - 20, by + 10]], np.int32)], (120, 60, 30), cv2.LINE_AA)
            cv2.fillPoly(f, [np.array([[bx, by - 40], [bx, by - 2], [bx + 24, by - 2]], np.int32)], (240, 240, 230), cv2.LINE_AA)
            for b in range(3):
                cx = int(w * (0.2 + 0.25 * b) + 3 * i)
                cy = int(h * (0.18 + 0.04 * b) + 6 * np.sin(i / 4 + b))
                wing = int(6 * np.sin(i / 2 + b))
                cv2.polylines(f, [np.array([[cx - 10, cy - wing], [cx, cy], [cx + 10, cy - wing]], np.int32)], False, (30, 30, 40), 2, cv2.LINE_AA)
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        t = np.arange(int(seconds * rate)) / rate
        env = np.minimum(1, t / 0.3) * np.minimum(1, (seconds - t) / 0.5)
        tone = sum(np.sin(2 * np.pi * fr * t) for fr in (220.0, 277.18, 329.63)) * 0.08 * env
        pcm = np.stack([tone, tone]).astype(np.float32)
        step = 1024
        for s in range(0, pcm.shape[1], step):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, s : s + step]), format="fltp", layout="stereo")
            fr.sample_rate = rate
            fr.pts = s
            fr.time_base = Fraction(1, rate)
            for p in a.encode(fr):
                c.mux(p)
        for st in (vs, a):
            for p in st.encode(None):
                c.mux(p)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=str(Path(__file__).resolve().parents[1] / "rtstyle" / "assets" / "sample.mp4"))
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("-y", "--overwrite", action="store_true", help="replace an existing file (e.g. the bundled sample)")
    a = ap.parse_args(argv)
    w, h = map(int, a.size.split("x"))
    out = Path(a.out)
    if out.exists() and not a.overwrite:
        ap.error(f"{out} exists (give -y to replace it)")
    tmp = out.with_name(f".{out.stem}.part{out.suffix}")
    try:
        render(tmp, a.seconds, (w, h), a.fps)
        os.replace(tmp, out)  # never half a clip
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()

"""rtstyle.image: reading, extension sets, resizing, tensor conversion, on images the tests make."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
torch = pytest.importorskip("torch")

from rtstyle import image  # noqa: E402
from rtstyle.errors import ImageReadError, SourceError  # noqa: E402


def _picture(h: int = 90, w: int = 120, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: smooth gradients, a few hard edges and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 255 * x / max(1, w - 1)
    g = 255 * y / max(1, h - 1)
    b = 127.5 + 127.5 * np.sin(x / 7.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    img[h // 3 : h // 2, w // 4 : w // 2] = (250, 20, 40)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _write_bgr(path: Path, arr: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix, arr)
    assert ok
    path.write_bytes(buf.tobytes())


# --------------------------------------------------------------------------- reading

def test_png_round_trip_is_exact_and_rgb_ordered(tmp_path: Path) -> None:
    img = _picture()
    p = tmp_path / "pic.png"
    _write_bgr(p, img[:, :, ::-1])  # OpenCV files are BGR on disk
    got = image.read_image(p)
    assert got.dtype == np.uint8 and got.shape == img.shape and got.flags.c_contiguous
    np.testing.assert_array_equal(got, img)
    red = got[(30 + 45) // 2, (30 + 60) // 2]  # inside the red block of _picture(90, 120)
    assert red[0] > 200 > 100 > red[2]


def test_reads_a_non_ascii_path(tmp_path: Path) -> None:
    img = _picture(40, 50)
    p = tmp_path / "Bild_ü_写真.png"
    p.write_bytes(image.encode_image(img, ".png"))
    np.testing.assert_array_equal(image.read_image(p), img)


def test_grey_alpha_and_16_bit_become_8_bit_rgb(tmp_path: Path) -> None:
    img = _picture()
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    _write_bgr(tmp_path / "grey.png", grey)
    got = image.read_image(tmp_path / "grey.png")
    assert got.shape == img.shape
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], grey)

    alpha = np.linspace(0, 255, img.shape[1], dtype=np.uint8)[None, :].repeat(img.shape[0], 0)
    _write_bgr(tmp_path / "alpha.png", np.dstack([img[:, :, ::-1], alpha]))
    np.testing.assert_array_equal(image.read_image(tmp_path / "alpha.png"), img)  # alpha dropped, colour kept

    deep = img.astype(np.uint16) * 256 + 100  # 16-bit: 8-bit value v -> v * 256 + a little
    _write_bgr(tmp_path / "deep.png", deep[:, :, ::-1])
    got16 = image.read_image(tmp_path / "deep.png")
    assert got16.dtype == np.uint8 and got16.shape == img.shape
    assert np.abs(got16.astype(int) - img.astype(int)).max() <= 1


def test_max_side_and_short_side_resize_on_read(tmp_path: Path) -> None:
    img = _picture(300, 400)
    jpg = tmp_path / "big.jpg"
    _write_bgr(jpg, img[:, :, ::-1])
    full = image.read_image(jpg)
    for side in (100, 150, 200):  # 100/150: the half-size JPEG decode covers it; 200: exactly half
        got = image.read_image(jpg, max_side=side)
        assert max(got.shape[:2]) == side and got.shape[:2] == (side * 3 // 4, side)
        ref = image.fit_image(full, max_side=side)
        assert np.abs(got.astype(int) - ref.astype(int)).mean() < 2.0  # reduced decode ~ full decode + area
    assert image.read_image(jpg, max_side=1000).shape == full.shape  # fits: unchanged
    assert image.read_image(jpg, short_side=150).shape == (150, 200, 3)
    assert image.read_image(jpg, short_side=600).shape == (600, 800, 3)  # short_side also enlarges
    png = tmp_path / "big.png"
    _write_bgr(png, img[:, :, ::-1])
    np.testing.assert_array_equal(image.read_image(png, max_side=100), image.fit_image(img, max_side=100))


def test_errors_name_the_path_and_are_source_and_value_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageReadError, match="image not found") as e:
        image.read_image(missing)
    assert str(missing) in str(e.value)
    assert isinstance(e.value, SourceError) and isinstance(e.value, ValueError)

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ImageReadError, match=f"cannot decode {bad}"):
        image.read_image(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="cannot decode"):
        image.read_image(empty)
    with pytest.raises(ImageReadError, match="cannot read"):
        image.read_image(tmp_path)  # a folder
    with pytest.raises(ImageReadError, match="cannot decode the upload"):
        image.decode_image(b"not an image", name="the upload")


def test_check_image_says_what_came() -> None:
    img = _picture(20, 30)
    assert image.check_image(img) is img
    with pytest.raises(ValueError, match=r"style must be an RGB uint8 array \(H, W, 3\), got float32"):
        image.check_image(img.astype(np.float32), "style")
    with pytest.raises(ValueError, match=r"got uint8 \(20, 30\)"):
        image.check_image(img[..., 0])
    with pytest.raises(ValueError, match="got list"):
        image.check_image([1, 2, 3])


# --------------------------------------------------------------------------- extensions

def test_every_image_extension_writes_and_reads_back(tmp_path: Path) -> None:
    img = _picture(48, 64)
    assert set(image.IMAGE_EXTENSIONS_ORDER) == image.IMAGE_EXTENSIONS
    for ext in sorted(image.IMAGE_EXTENSIONS):
        p = tmp_path / f"x{ext.upper()}"  # extensions are case-insensitive
        assert image.is_image_file(p)
        p.write_bytes(image.encode_image(img, ext, quality=95))
        got = image.read_image(p)
        assert got.shape == img.shape, ext
        err = np.abs(got.astype(int) - img.astype(int)).mean()
        if ext in (".png", ".bmp", ".tif", ".tiff"):
            assert err == 0, ext
        else:
            assert err < 6, (ext, err)
    with pytest.raises(ValueError, match="unsupported image extension"):
        image.encode_image(img, ".xyz")


def test_video_extension_sets_agree_everywhere() -> None:
    from rtstyle import io
    from rtstyle.distributed import inputs
    from rtstyle.io import video

    assert image.VIDEO_EXTENSIONS == frozenset(image.VIDEO_MUXERS)
    assert {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".flv", ".ts"} == image.VIDEO_EXTENSIONS
    assert image.VIDEO_EXTENSIONS < image.VIDEO_INPUT_EXTENSIONS
    assert not image.VIDEO_INPUT_EXTENSIONS & image.IMAGE_EXTENSIONS
    assert io.VIDEO_EXTENSIONS is video.VIDEO_EXTENSIONS is image.VIDEO_EXTENSIONS
    assert io.IMAGE_EXTENSIONS is image.IMAGE_EXTENSIONS
    assert inputs.VIDEO_INPUT_EXTENSIONS is image.VIDEO_INPUT_EXTENSIONS
    assert image.is_video_file("a/b.MPG") and not image.is_video_file("a/b.mpg", output=True)
    assert image.is_video_file("clip.ts", output=True) and not image.is_video_file("clip.png")


@pytest.mark.parametrize("ext", sorted(image.VIDEO_EXTENSIONS))
def test_open_sink_writes_every_video_extension(tmp_path: Path, ext: str) -> None:
    pytest.importorskip("av")
    from rtstyle.frame import Frame
    from rtstyle.io import VideoFileSource, open_sink

    out = tmp_path / f"clip{ext}"
    frames = [_picture(48, 64, seed=i) for i in range(6)]
    with open_sink(out, fps=12.0) as sink:
        for i, img in enumerate(frames):
            sink.write(Frame(img, index=i, pts=i / 12.0))
    with VideoFileSource(out) as src:
        back = [f.image for f in src]
    assert len(back) == len(frames)
    assert all(b.shape == f.shape for b, f in zip(back, frames))
    assert np.abs(back[3].astype(int) - frames[3].astype(int)).mean() < 12  # lossy, but the same picture


def test_find_image_prefers_jpg_and_ignores_other_files(tmp_path: Path) -> None:
    img = _picture(16, 16)
    (tmp_path / "wave.txt").write_text("notes")
    assert image.find_image(tmp_path, "wave") is None
    (tmp_path / "wave.png").write_bytes(image.encode_image(img, ".png"))
    assert image.find_image(tmp_path, "wave") == tmp_path / "wave.png"
    (tmp_path / "wave.jpg").write_bytes(image.encode_image(img, ".jpg"))
    assert image.find_image(tmp_path, "wave") == tmp_path / "wave.jpg"


# --------------------------------------------------------------------------- sizes and resizing

def test_scaled_size() -> None:
    assert image.scaled_size(400, 300) == (400, 300)
    assert image.scaled_size(400, 300, short_side=150) == (200, 150)
    assert image.scaled_size(400, 300, long_side=100) == (100, 75)
    assert image.scaled_size(400, 300, max_side=200) == (200, 150)
    assert image.scaled_size(400, 300, max_side=800) == (400, 300)
    assert image.scaled_size(400, 300, short_side=600, max_side=500) == (500, 375)  # the cap wins
    assert image.scaled_size(401, 299, short_side=150, multiple=4) == (200, 152)
    assert image.scaled_size(1000, 10, long_side=100, min_side=16) == (100, 16)
    with pytest.raises(ValueError, match="not both"):
        image.scaled_size(4, 3, short_side=2, long_side=2)


def test_resize_filters_and_identity() -> None:
    img = _picture(90, 120)
    assert image.resize(img, (120, 90)) is img
    assert image.fit_image(img, max_side=120) is img
    small = image.resize(img, (60, 45))
    np.testing.assert_array_equal(small, cv2.resize(img, (60, 45), interpolation=cv2.INTER_AREA))
    big = image.resize(img, (240, 180))
    np.testing.assert_array_equal(big, cv2.resize(img, (240, 180), interpolation=cv2.INTER_CUBIC))
    lin = image.resize(img, (240, 180), enlarge="linear")
    np.testing.assert_array_equal(lin, cv2.resize(img, (240, 180), interpolation=cv2.INTER_LINEAR))
    with pytest.raises(ValueError, match="enlarge"):
        image.resize(img, (240, 180), enlarge="nearest")
    assert image.resize_long(img, 60).shape == (45, 60, 3)
    assert image.resize_long(img, 240).shape == (180, 240, 3)
    assert image.fit_image(img, short_side=45).shape == (45, 60, 3)
    # area averaging keeps the mean colour of a shrunk image
    assert np.abs(image.resize_long(img, 30).mean((0, 1)) - img.mean((0, 1))).max() < 2.0


def test_resize_frame_on_cpu_matches_opencv() -> None:
    img = _picture(90, 120)
    t = torch.from_numpy(img)
    assert image.resize_frame(t, (120, 90)) is t
    small = image.resize_frame(t, (64, 48))
    assert small.dtype == torch.uint8 and tuple(small.shape) == (48, 64, 3)
    np.testing.assert_array_equal(small.numpy(), cv2.resize(img, (64, 48), interpolation=cv2.INTER_AREA))
    big = image.resize_frame(t, (240, 180))
    np.testing.assert_array_equal(big.numpy(), cv2.resize(img, (240, 180), interpolation=cv2.INTER_LINEAR))


def test_resize_tensor_long() -> None:
    x = image.to_tensor(_picture(90, 120))
    assert image.resize_tensor_long(x, 120) is x
    y = image.resize_tensor_long(x, 60)
    assert tuple(y.shape) == (1, 3, 45, 60)
    assert abs(float(y.mean()) - float(x.mean())) < 0.01  # antialiased shrink keeps the mean
    assert tuple(image.resize_tensor_long(x, 240).shape) == (1, 3, 180, 240)
    assert tuple(image.resize_tensor_long(x[..., :4, :], 32).shape) == (1, 3, 16, 32)  # min_side


# --------------------------------------------------------------------------- tensors

def test_tensor_round_trips() -> None:
    img = _picture(30, 41)
    x = image.to_tensor(img)
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 3, 30, 41) and x.is_contiguous()
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    np.testing.assert_allclose(x[0, 0].numpy(), img[..., 0] / 255.0, rtol=0, atol=1e-7)  # channel 0 is R
    np.testing.assert_array_equal(image.to_image(x), img)
    x255 = image.to_tensor(img, max_value=255.0)
    np.testing.assert_array_equal(x255[0].permute(1, 2, 0).numpy(), img.astype(np.float32))
    np.testing.assert_array_equal(image.to_image(x255, max_value=255.0), img)
    u = image.to_uint8(x255[0], max_value=255.0)  # (3, H, W) works too; a tensor comes back
    assert isinstance(u, torch.Tensor) and u.dtype == torch.uint8 and tuple(u.shape) == (30, 41, 3)
    t = image.to_tensor(torch.from_numpy(img), device="cpu")  # a tensor input, moved to a device
    assert torch.equal(t, x)


def test_batches_and_bad_shapes() -> None:
    batch = np.stack([_picture(20, 24, seed=i) for i in range(3)])
    x = image.to_tensor(batch)
    assert tuple(x.shape) == (3, 3, 20, 24)
    back = image.to_image(x)
    assert back.shape == (3, 20, 24, 3)
    np.testing.assert_array_equal(back, batch)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        image.to_tensor(np.zeros((20, 24), np.uint8))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        image.to_image(torch.zeros(1, 4, 5, 5))


def test_to_uint8_clamps_and_rounds_half_up() -> None:
    x = torch.tensor([-0.2, 0.0, 0.5 / 255, 1.49 / 255, 0.5, 1.0, 1.7]).view(1, 1, 1, 7).expand(1, 3, 1, 7)
    got = image.to_image(x)[0, :, 0].tolist()
    assert got == [0, 0, 1, 1, 128, 255, 255]
    y = torch.tensor([-5.0, 254.5, 300.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    assert image.to_image(y, max_value=255.0)[0, :, 0].tolist() == [0, 255, 255]
    g = torch.full((1, 3, 2, 2), 0.25, requires_grad=True)
    assert image.to_image(g * 2)[0, 0, 0] == 128  # a tensor needing grad converts without complaint

"""ImageSource / ImageSink on real photos."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from rtstyle.frame import Frame  # noqa: E402
from rtstyle.io import ImageSink, ImageSource, SinkError, SourceError  # noqa: E402


def _photo(photos: Path) -> Path:
    return photos / "mate_LadyBird.jpg"


def test_single_image_is_rgb(photos: Path) -> None:
    p = _photo(photos)
    ref = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    with ImageSource(p) as src:
        assert (src.info.width, src.info.height) == (ref.shape[1], ref.shape[0])
        assert src.info.frame_count == 1 and not src.info.live
        f = src.read()
        assert src.read() is None
    assert f.index == 0 and f.pts is None
    assert f.image.flags.c_contiguous
    np.testing.assert_array_equal(f.image, ref)


def test_folder_sorted_grey_and_alpha_become_rgb(tmp_path: Path, photos: Path) -> None:
    shutil.copy(_photo(photos), tmp_path / "b_colour.jpg")
    rgb = cv2.cvtColor(cv2.imread(str(_photo(photos))), cv2.COLOR_BGR2RGB)
    small = cv2.resize(rgb, (80, 60))
    cv2.imwrite(str(tmp_path / "a_grey.png"), cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    rgba = np.dstack([small[:, :, ::-1], np.full((60, 80), 128, np.uint8)])
    cv2.imwrite(str(tmp_path / "c_alpha.png"), rgba)
    (tmp_path / "notes.txt").write_text("not an image")
    with ImageSource(tmp_path) as src:
        assert src.info.frame_count == 3
        frames = list(src)
    assert [Path(f.meta["path"]).name for f in frames] == ["a_grey.png", "b_colour.jpg", "c_alpha.png"]
    assert [f.index for f in frames] == [0, 1, 2]
    for f in frames:
        assert f.image.ndim == 3 and f.image.shape[2] == 3 and f.image.dtype == np.uint8
    grey = frames[0].image
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    np.testing.assert_array_equal(frames[2].image, small)  # alpha dropped, colours kept (PNG is lossless)


def test_source_errors(tmp_path: Path, one_line) -> None:
    with pytest.raises(SourceError) as e:
        ImageSource(tmp_path / "missing.png")
    assert "not found" in one_line(e)
    with pytest.raises(SourceError) as e:
        ImageSource(tmp_path)
    assert "no images" in one_line(e)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(SourceError) as e:
        ImageSource(bad)
    assert "cannot decode" in one_line(e)


def test_folder_sink_writes_by_index(tmp_path: Path, photos: Path) -> None:
    out = tmp_path / "frames"
    img = ImageSource(_photo(photos)).read().image[:64, :96].copy()
    with ImageSink(str(out) + "/") as sink:
        for i in (0, 1, 7):
            sink.write(Frame(np.roll(img, i, axis=1), i))
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000001.png", "frame_000007.png"]
    back = ImageSource(out / "frame_000007.png").read().image
    np.testing.assert_array_equal(back, np.roll(img, 7, axis=1))


def test_file_sink_writes_last_frame_on_close(tmp_path: Path) -> None:
    out = tmp_path / "still.png"
    sink = ImageSink(out)
    for i in range(3):
        sink.write(Frame(np.full((20, 30, 3), i * 50, np.uint8), i))
    assert not out.exists()
    sink.close()
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]
    assert ImageSource(out).read().image.max() == 100


def test_sink_abort_and_errors(tmp_path: Path, one_line) -> None:
    sink = ImageSink(tmp_path / "frames/")
    sink.write(Frame(np.zeros((8, 8, 3), np.uint8), 0))
    sink.abort()
    assert list(tmp_path.iterdir()) == []
    sink = ImageSink(tmp_path / "x.jpg")
    sink.write(Frame(np.zeros((8, 8, 3), np.uint8), 0))
    sink.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SinkError) as e:
        ImageSink(tmp_path / "missing" / "x.png")
    assert "does not exist" in one_line(e)
    with pytest.raises(SinkError) as e:
        ImageSink(tmp_path / "x.gif")
    assert "extension" in one_line(e)

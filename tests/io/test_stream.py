"""StreamSink: write a live stream to 127.0.0.1 and read it back."""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("av")

from rtstyle.io import SinkError, StreamSink, SyntheticSource, VideoFileSource  # noqa: E402


@pytest.mark.network
def test_udp_loopback_round_trip(udp_port: int) -> None:
    url = f"udp://127.0.0.1:{udp_port}"
    received: list[tuple[int, tuple[int, ...]]] = []
    infos = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with VideoFileSource(url, open_timeout=8, read_timeout=1) as src:
                infos.append(src.info)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and len(received) < 1000:
                    f = src.read()
                    if f is None:
                        break
                    received.append((f.index, f.image.shape))
        except Exception as exc:  # reported by the assertions below
            errors.append(exc)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.3)  # let the reader bind the port
    with StreamSink(url, fps=30) as sink, SyntheticSource(320, 240, fps=30, frames=75, live=True) as src:
        for f in src:
            sink.write(f)
        assert sink.frames_sent >= 60
    t.join(timeout=20)
    assert not t.is_alive(), "the reader did not stop"
    assert not errors, errors
    assert infos and infos[0].live and (infos[0].width, infos[0].height) == (320, 240)
    assert len(received) >= 10
    assert all(shape == (240, 320, 3) for _, shape in received)
    idx = [i for i, _ in received]
    assert idx == sorted(idx)


@pytest.mark.network
def test_rtmp_refused_is_a_clear_error(one_line) -> None:
    sink = StreamSink("rtmp://127.0.0.1:9/live/test", fps=30)  # nothing listens on the discard port
    src = SyntheticSource(64, 48, frames=1, live=False)
    t = time.perf_counter()
    with pytest.raises(SinkError) as e:
        sink.write(src.read())
    assert time.perf_counter() - t < 10
    assert one_line(e).startswith("cannot stream to rtmp://127.0.0.1:9/live/test")
    sink.close()


def test_unknown_scheme(one_line) -> None:
    with pytest.raises(SinkError) as e:
        StreamSink("gopher://127.0.0.1/x", fps=30)
    assert "unknown scheme" in one_line(e)


def test_udp_url_gets_packet_size() -> None:
    assert StreamSink("udp://127.0.0.1:5000", fps=25).url.endswith("?pkt_size=1316")
    assert StreamSink("udp://127.0.0.1:5000?pkt_size=188", fps=25).url == "udp://127.0.0.1:5000?pkt_size=188"
    s = StreamSink("rtmp://127.0.0.1/live/x", fps=30)
    assert s.format == "flv" and not s.lossless and s.gop == 15

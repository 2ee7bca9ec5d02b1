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


class _TcpServer:
    """A TCP server on 127.0.0.1 that keeps what each connection sent; ``stop()`` cuts everything."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.received: list[bytearray] = []
        self.conns: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            buf = bytearray()
            self.received.append(buf)
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn, buf), daemon=True).start()

    @staticmethod
    def _read(conn, buf: bytearray) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data

    def stop(self) -> None:
        import socket

        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone would not
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.mark.network
def test_stream_reconnects_after_the_server_restarts() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    first = _TcpServer(port)
    sink = StreamSink(f"tcp://127.0.0.1:{port}", fps=25, backoff=0.1, backoff_max=0.4)
    src = SyntheticSource(160, 120, fps=25, live=False)
    second = None
    try:
        lost_at = None
        for i in range(1000):
            sink.write(src.read())
            time.sleep(0.02)
            if i == 50:
                first.stop()  # the server goes away: writes fail with a broken pipe / reset
            if lost_at is None and sink.outages:
                lost_at = i
            if lost_at is not None and i == lost_at + 40 and second is None:
                second = _TcpServer(port)  # and comes back on the same port after a while
            if second is not None and second.received and len(second.received[0]) > 20_000:
                break
    finally:
        sink.close()
        first.stop()
        if second is not None:
            second.stop()
    assert sink.reconnects == 1 and sink.outages == 1
    assert sink.frames_dropped >= 10  # written while the server was away: dropped, not queued
    assert 0.5 < sink.outage_s < 30
    assert second is not None and second.received and len(second.received[0]) > 20_000
    assert second.received[0][0] == 0x47  # a new MPEG-TS stream starts on the new connection
    stats = sink.recovery_stats()
    assert stats["reconnects"] == 1 and stats["frames_dropped"] == sink.frames_dropped


def test_no_reconnect_raises_on_a_broken_connection() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _TcpServer(port)
    sink = StreamSink(f"tcp://127.0.0.1:{port}", fps=25, reconnect=False)
    src = SyntheticSource(160, 120, fps=25, live=False)
    try:
        sink.write(src.read())
        deadline = time.monotonic() + 30
        while not server.conns and time.monotonic() < deadline:  # the server holds the connection
            time.sleep(0.01)
        assert server.conns, "the sink never connected"
        server.stop()
        with pytest.raises(SinkError, match=f"cannot stream to tcp://127.0.0.1:{port}"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sink.write(src.read())
                time.sleep(0.01)
    finally:
        sink.abort()
        server.stop()

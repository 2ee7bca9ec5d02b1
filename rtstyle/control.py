"""A tiny HTTP control endpoint for live runs, bound to 127.0.0.1 only.

    GET  /status                      -> {"style": ..., "fps": ..., "frames_out": ..., ...}
    POST /style   {"model": NAME?, "style_image": PATH?, "style": BANK_STYLE?, "options": {...}?, "crossfade": N?}
                  (e.g. {"style": "wave"} or {"options": {"brush": 384}} on msgnet.lite)
    POST /next | /previous | /pause | /stop | /brush/smaller | /brush/larger

Example: ``curl -X POST localhost:8765/style -d '{"model": "johnson.wave_lite"}'``.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["ControlServer"]

log = logging.getLogger(__name__)


class ControlServer:
    """Serve the pipeline's controls on ``127.0.0.1:port`` (port 0 picks a free one).

    A context manager: the server thread stops on exit.
    """

    def __init__(self, pipeline: "Pipeline", port: int = 8765) -> None:
        self.pipeline = pipeline
        handler = _make_handler(pipeline)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rtstyle-control", daemon=True)

    def __enter__(self) -> "ControlServer":
        self._thread.start()
        log.info("control endpoint on http://127.0.0.1:%d", self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(p: "Pipeline") -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # route to logging, not stderr
            log.debug("control: " + fmt, *args)

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/status":
                st = p.stats
                self._send(200, {"style": p.stylizer.style_name, "model": p.stylizer.spec.name,
                                 "fps": round(st.fps_ema, 2), "frames_in": st.frames_in,
                                 "frames_out": st.frames_out, "frames_dropped": st.frames_dropped,
                                 "paused": p.paused.is_set(), "swaps": p.stylizer.swaps})
            else:
                self._send(404, {"error": f"unknown path {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(n) or b"{}") if n else {}
            except json.JSONDecodeError:
                self._send(400, {"error": "body must be JSON"})
                return
            path = self.path.rstrip("/")
            try:
                if path == "/style":
                    keys = ("model", "style_image", "style", "options")
                    if not any(k in body for k in keys):
                        self._send(400, {"error": "give 'model', 'style_image', 'style' (bank name/index/blend) and/or 'options'"})
                        return
                    opts = body.get("options")
                    if opts is not None and not isinstance(opts, dict):
                        self._send(400, {"error": "'options' must be an object, e.g. {\"brush\": 384}"})
                        return
                    style = body.get("style")
                    fut = p.swap(body.get("model"), style_image=body.get("style_image"),
                                 style_vector=None if style is None else str(style), options=opts,
                                 crossfade=body.get("crossfade"))
                    if body.get("wait", True):
                        st = fut.result(timeout=120)
                        self._send(200, {"ok": True, "style": st.name, "prepared_s": round(st.prepared_s, 4)})
                    else:
                        self._send(202, {"ok": True})
                elif path in ("/next", "/previous", "/pause", "/stop", "/brush/smaller", "/brush/larger"):
                    {"/next": p.next_style, "/previous": p.previous_style,
                     "/pause": p.toggle_pause, "/stop": p.request_stop,
                     "/brush/smaller": p.brush_smaller, "/brush/larger": p.brush_larger}[path]()
                    self._send(200, {"ok": True})
                else:
                    self._send(404, {"error": f"unknown path {self.path}"})
            except Exception as e:  # noqa: BLE001 - report to the client, keep serving
                self._send(400, {"error": f"{type(e).__name__}: {e}"})

    return Handler

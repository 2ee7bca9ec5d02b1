"""The control endpoint of live runs: a JSON API and a control page that only its user can drive.

    GET  /?token=T                    -> the control page (sets a cookie for the page's own requests)
    GET  /status                      -> {"style": ..., "model": ..., "fps": ..., "latency_ms_p50": ..., ...}
    GET  /models                      -> the registry's models, their style banks and which have thumbnails
    GET  /preview.jpg | /preview.mjpg -> the latest output frame (JPEG) / a stream of them (MJPEG)
    GET  /thumb/NAME.jpg              -> a thumbnail of the painting of style NAME (``style_images``)
    POST /style   {"model": NAME?, "style_image": PATH?, "style": BANK_STYLE?, "options": {...}?, "crossfade": N?}
                  (e.g. {"style": "wave"} or {"options": {"brush": 384}} on msgnet.lite)
    POST /style/image[?model=NAME]    -> the body is an image file: the new style image
    POST /next | /previous | /pause | /stop | /brush/smaller | /brush/larger    ({"wait": true}: reply when done)

Every request needs the run's token: ``Authorization: Bearer TOKEN``, ``?token=TOKEN`` or the cookie
the page sets. Example::

    curl -H "Authorization: Bearer $TOKEN" -X POST 127.0.0.1:8765/style -d '{"model": "johnson.wave_lite"}'

Why the checks: any web page the user visits can send requests to ``127.0.0.1`` (a "simple"
cross-origin POST needs no CORS preflight), and a DNS-rebound name can make them same-origin. So
every request must carry the token (random per run unless given, as obs-websocket and Jupyter do),
its ``Host`` must be a loopback name or IP literal with our port (421 otherwise: rebinding needs a
name), an ``Origin`` other than our own is refused (403), and bodies are bounded (413).

Why a cookie: ``<img src=/preview.jpg>`` cannot send an ``Authorization`` header, and the token
should not stay in the address bar or in every URL the page fetches. A visit to ``/?token=T`` sets
``HttpOnly; SameSite=Strict`` (no script reads it; no other site's request carries it), named after
the port because cookies are shared between ports of one host; the page then drops the token from
its address with ``history.replaceState``.

Why aiohttp rather than ``http.server``: its llhttp parser rejects malformed, negative or duplicate
``Content-Length`` and conflicting ``Transfer-Encoding`` with a 400 before a handler runs (the
hand-parsed ``http.server`` version hung on ``Content-Length: -1`` and then ran the command), it
bounds bodies and header sizes, reads chunked uploads, serves long-lived MJPEG viewers from one
event-loop thread instead of a thread each, and embeds cleanly (``AppRunner`` on our own socket and
loop, no signal handlers, no logging set-up), unlike uvicorn. Starlette would add two packages
(and python-multipart) for the same result.
"""
from __future__ import annotations

import asyncio
import hmac
import importlib.util
import ipaddress
import json
import logging
import re
import secrets
import socket
import sys
import threading
from concurrent.futures import Future
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import numpy as np

from .image import ImageReadError, decode_image, encode_image, find_image, read_image

if TYPE_CHECKING:
    from aiohttp import web

    from .pipeline import Pipeline
    from .stylizer import StyleState

__all__ = ["ControlServer"]

log = logging.getLogger(__name__)

JSON_LIMIT = 64 * 1024  # bytes: the largest JSON command (a blend over a big bank is < 2 KiB)
UPLOAD_LIMIT = 16 * 1024 * 1024  # bytes: a style image upload
SWAP_TIMEOUT_S = 120.0
_ACTIONS = ("/next", "/previous", "/pause", "/stop", "/brush/smaller", "/brush/larger")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(token: str | None) -> None:
    """Refuse a token that cannot go into the printed URL as it is (or is too short to be a secret)."""
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{8,}", token):
        raise ValueError("--control-token must be at least 8 characters of A-Z a-z 0-9 . _ ~ -")


class _OneLine(logging.LoggerAdapter):
    """aiohttp's server logger, one line per event: it logs every malformed request as an error with
    a traceback, which would reach the user's console through the CLI's log handler."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        exc = kwargs.pop("exc_info", None)
        if exc is True:
            exc = sys.exc_info()[1]
        if isinstance(exc, BaseException):
            # an HTTP parse error's message is "what: the offending line and a caret": keep the first part
            text = str(getattr(exc, "message", "") or exc).strip().split("\n")[0].rstrip(":") or type(exc).__name__
            msg = f"{msg}: {type(exc).__name__}: {text[:200]}"
        return msg, kwargs

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, exc_info=exc_info, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)


class ControlServer:
    """Serve a running pipeline's controls and control page.

    A context manager: the server runs in its own thread (one asyncio loop) from ``__enter__`` and
    stops on exit. The socket is bound in the constructor, so :attr:`port` and :attr:`url` are known
    (and a busy port fails) before the run starts.

    Args:
        pipeline: the running (or about to run) pipeline.
        port: TCP port; 0 picks a free one.
        host: address to bind. Anything beyond loopback needs an explicit ``token`` and is logged
            as a warning (anyone who can reach the port and learns the token drives the run).
        token: the secret every request must carry; ``None``: a random one for this run.
        style_images: folder of paintings named like the styles (``wave.jpg``), shown as
            thumbnails on the page.

    Raises:
        ValueError: a non-loopback ``host`` without a token, or an unusable token.
        OSError: the port cannot be bound.
        ImportError: aiohttp is not installed (``pip install 'rtstyle[control]'``).
    """

    def __init__(self, pipeline: "Pipeline", port: int = 8765, *, host: str = "127.0.0.1",
                 token: str | None = None, style_images: str | Path | None = None) -> None:
        if importlib.util.find_spec("aiohttp") is None:  # imported in the server thread, only when serving
            raise ImportError("the control endpoint needs aiohttp: pip install 'rtstyle[control]'")
        check_token(token)
        if not _is_loopback(host):
            if token is None:
                raise ValueError(f"--control-host {host} reaches beyond this machine: give --control-token too")
            log.warning("control endpoint bound to %s: anyone who can reach it and has the token drives this run", host)
        if style_images is not None and not Path(style_images).is_dir():
            raise NotADirectoryError(f"style images: not a folder: {style_images}")
        self.pipeline = pipeline
        self.host = host
        self.token = token if token is not None else secrets.token_urlsafe(24)
        self.style_images = Path(style_images) if style_images is not None else None
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        self._sock = socket.create_server((host.strip("[]"), port), family=family, reuse_port=False)
        self.port: int = self._sock.getsockname()[1]
        self._cookie = f"rtstyle_control_{self.port}"
        self._allowed_names = self._host_names()
        self._thumbs: dict[str, bytes] = {}
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ public
    @property
    def url(self) -> str:
        """The ready-to-open page URL, token included (print it once, as Jupyter does)."""
        name = "127.0.0.1" if self.host == "localhost" else self.host
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"
        return f"http://{name}:{self.port}/?token={self.token}"

    def __enter__(self) -> "ControlServer":
        self._thread = threading.Thread(target=self._serve, name="rtstyle-control", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._start_error is not None:
            raise self._start_error
        log.info("control endpoint on http://%s:%d", self.host, self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving (idempotent); open MJPEG streams end."""
        self._closing = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            if self._runner is not None:
                try:
                    asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
                except Exception as e:  # noqa: BLE001 - shutting down anyway
                    log.warning("control endpoint did not shut down cleanly: %s: %s", type(e).__name__, e)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self._sock.close()

    # ------------------------------------------------------------------ server thread
    def _serve(self) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(lambda _l, ctx: log.warning("%s", ctx.get("exception") or ctx.get("message")))
        try:
            @web.middleware
            async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
                return await self._guard(request, handler)

            app = web.Application(middlewares=[guard], client_max_size=UPLOAD_LIMIT)
            r = app.router
            r.add_get("/", self._page)
            r.add_get("/control.js", self._asset)
            r.add_get("/control.css", self._asset)
            r.add_get("/status", self._status)
            r.add_get("/models", self._models)
            r.add_get("/preview.jpg", self._preview)
            r.add_get("/preview.mjpg", self._mjpeg)
            r.add_get("/thumb/{name}.jpg", self._thumb)
            r.add_post("/style", self._style)
            r.add_post("/style/image", self._style_image)
            for path in _ACTIONS:
                r.add_post(path, self._action)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                                         logger=_OneLine(logging.getLogger(__name__), {}))
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.SockSite(self._runner, self._sock).start())
        except BaseException as e:  # noqa: BLE001 - handed to __enter__'s thread
            self._start_error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:  # end what is left (connections closed mid-request) rather than destroy it pending
            tasks = asyncio.all_tasks(loop)
            for t in tasks:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    # ------------------------------------------------------------------ checks
    def _host_names(self) -> set[str]:
        names = {"localhost", "127.0.0.1", "[::1]"}
        h = self.host.strip("[]")
        try:
            ip = ipaddress.ip_address(h)
            names.add(f"[{ip.compressed}]" if ip.version == 6 else ip.compressed)
        except ValueError:
            names.add(h.lower())  # a name the user chose to bind
        return names

    def _host_ok(self, host: str | None) -> bool:
        """``Host`` names this server: an allowed name or, when bound to every interface, any IP
        literal, always with our port. Other names are refused: DNS rebinding needs a name."""
        if not host:
            return False
        name, sep, port = host.lower().rpartition(":")
        if not sep or port != str(self.port) or (name.startswith("[") != name.endswith("]")):
            return False
        if name in self._allowed_names:
            return True
        if self.host in ("0.0.0.0", "::", "[::]"):
            try:
                ipaddress.ip_address(name.strip("[]"))
                return True
            except ValueError:
                return False
        return False

    def _token_of(self, request: "web.Request") -> tuple[str | None, bool]:
        """The token a request carries and whether it came in the URL."""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip(), False
        if "token" in request.query:
            return request.query["token"], True
        return request.cookies.get(self._cookie), False

    def _refuse(self, request: "web.Request", status: int, reason: str) -> "web.Response":
        from aiohttp import web

        # request.path has no query string: the token never reaches the log
        log.warning("%d %s %s from %s: %s", status, request.method, request.path, request.remote, reason)
        return web.json_response({"error": reason}, status=status, headers={"Cache-Control": "no-store"})

    async def _guard(self, request: "web.Request",
                     handler: Callable[["web.Request"], Awaitable["web.StreamResponse"]]) -> "web.StreamResponse":
        from aiohttp import web

        host = request.headers.get("Host")
        if not self._host_ok(host):
            return self._refuse(request, 421, f"Host {host!r} is not this control endpoint")
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host.lower()}":  # type: ignore[union-attr]
            return self._refuse(request, 403, f"requests from {origin} are not allowed")
        # browsers say where a request comes from even when they send no Origin (an <img>, a
        # navigation): only the page itself ("same-origin") or the user ("none") may drive the run
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site not in (None, "same-origin", "none"):
            return self._refuse(request, 403, f"{fetch_site} requests are not allowed")
        given, in_url = self._token_of(request)
        if not given:
            return self._refuse(request, 401, "this control endpoint needs its token (the URL rtstyle printed, "
                                              "or 'Authorization: Bearer TOKEN')")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
            return self._refuse(request, 403, "wrong token")
        limit = UPLOAD_LIMIT if request.path == "/style/image" else JSON_LIMIT
        if request.content_length is not None and request.content_length > limit:
            return self._refuse(request, 413, f"body of {request.content_length} bytes; at most {limit} here")
        try:
            resp = await handler(request)
        except web.HTTPRequestEntityTooLarge:  # a chunked body that outgrew the limit
            return self._refuse(request, 413, f"body over {limit} bytes")
        except web.HTTPException as e:
            if e.status >= 400:
                return self._refuse(request, e.status, e.reason)
            raise
        except asyncio.TimeoutError:  # before OSError: on Python >= 3.11 it is the builtin TimeoutError
            return self._refuse(request, 504, f"the style was not ready within {SWAP_TIMEOUT_S:.0f} s")
        except (ConnectionError, asyncio.CancelledError):
            raise  # the client went away: aiohttp ends the request
        except (ValueError, TypeError, KeyError, LookupError, OSError, RuntimeError) as e:
            msg = str(e).splitlines()[0] if str(e) else ""
            return self._refuse(request, 400, f"{type(e).__name__}: {msg}")
        except Exception as e:  # noqa: BLE001 - a bug: one line, keep serving
            log.error("%s %s failed: %s: %s", request.method, request.path, type(e).__name__, e)
            return web.json_response({"error": f"{type(e).__name__}: {e}"}, status=500)
        resp.headers.setdefault("Cache-Control", "no-store")
        if in_url and request.path == "/":
            resp.set_cookie(self._cookie, self.token, httponly=True, samesite="Strict", path="/")
        return resp

    # ------------------------------------------------------------------ page
    async def _page(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        html = resources.files("rtstyle.assets").joinpath("control.html").read_text(encoding="utf-8")
        return web.Response(text=html, content_type="text/html", headers={
            # the page runs only its own script, cannot be framed, and never sends its URL (the token) on
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                       "base-uri 'none'; form-action 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        })

    async def _asset(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        name = request.path.lstrip("/")
        kind = "application/javascript" if name.endswith(".js") else "text/css"
        return web.Response(text=resources.files("rtstyle.assets").joinpath(name).read_text(encoding="utf-8"),
                            content_type=kind)

    # ------------------------------------------------------------------ state
    def status(self) -> dict[str, Any]:
        """What ``GET /status`` returns: the active style, counters, fps, recent latency, controls."""
        from .style_controls import bank_index

        p = self.pipeline
        st, state = p.stats, p.stylizer.state
        recent = np.array(list(st.latency.samples)[-256:], dtype=float)  # the last ~10 s at 25 fps
        idx = bank_index(state.spec.styles, state.style_source) if len(state.spec.styles) > 1 else None
        out: dict[str, Any] = {
            "style": state.name, "model": state.spec.name, "fps": round(st.fps_ema, 2),
            "frames_in": st.frames_in, "frames_out": st.frames_out, "frames_dropped": st.frames_dropped,
            "paused": p.paused.is_set(), "running": p.running, "swaps": p.stylizer.swaps,
            "latency_ms_p50": round(1000 * float(np.percentile(recent, 50)), 1) if recent.size else None,
            "latency_ms_p95": round(1000 * float(np.percentile(recent, 95)), 1) if recent.size else None,
            "bank_style": None if idx is None else state.spec.styles[idx],
            "bank": list(state.spec.styles) if len(state.spec.styles) > 1 else [],
            "controls": _controls_of(state.model),
            "crossfade": p.stylizer.crossfade,
            "cycle": [str(s) for s in p.styles],
        }
        return out

    async def _status(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        return web.json_response(self.status())

    async def _models(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        from .models import get_spec, list_models

        models = []
        for name in list_models():
            spec = get_spec(name)
            bank = list(spec.styles) if len(spec.styles) > 1 else []
            own = spec.extra.get("style_image") if isinstance(spec.extra.get("style_image"), str) else None
            thumb = Path(own).stem if own and self._painting(Path(own).stem) else None
            models.append({"name": name, "family": spec.family, "description": spec.description,
                           "needs_style_image": spec.needs_style_image, "bank": bank,
                           "thumbs": [s for s in bank if self._painting(s)], "thumb": thumb})
        return web.json_response({"models": models})

    def _painting(self, name: str) -> Path | None:
        if self.style_images is None or not name or "/" in name or "\\" in name or name.startswith("."):
            return None
        return find_image(self.style_images, name)

    async def _thumb(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        name = request.match_info["name"]
        data = self._thumbs.get(name)
        if data is None:
            path = self._painting(name)
            if path is None:
                raise web.HTTPNotFound(reason=f"no painting named {name}")
            data = await asyncio.get_running_loop().run_in_executor(None, _thumbnail, path)
            self._thumbs[name] = data
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    # ------------------------------------------------------------------ preview
    def _latest_jpeg(self) -> tuple[bytes, dict[str, str]] | None:
        frame = self.pipeline.latest
        if frame is None:
            return None
        return encode_image(frame.image, ".jpg", quality=85), {"X-Frame-Index": str(frame.index), "X-Style": str(frame.meta.get("style", ""))}

    async def _preview(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        got = await asyncio.get_running_loop().run_in_executor(None, self._latest_jpeg)
        if got is None:
            raise web.HTTPServiceUnavailable(reason="no frame out yet")
        return web.Response(body=got[0], content_type="image/jpeg", headers=got[1])

    async def _mjpeg(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        resp = web.StreamResponse(headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame",
                                           "Cache-Control": "no-store"})
        await resp.prepare(request)
        loop, last = asyncio.get_running_loop(), None
        while not self._closing:
            frame = self.pipeline.latest
            if frame is not None and frame is not last:
                last = frame
                got = await loop.run_in_executor(None, self._latest_jpeg)
                if got is not None:
                    try:
                        await resp.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(got[0])).encode() + b"\r\n\r\n" + got[0] + b"\r\n")
                    except ConnectionError:  # the viewer went away: the normal end of a stream
                        log.debug("MJPEG viewer %s left", request.remote)
                        return resp
            await asyncio.sleep(0.05)  # at most ~20 previews a second: the stream is for watching
        return resp

    # ------------------------------------------------------------------ commands
    async def _read(self, request: "web.Request", limit: int) -> bytes:
        """The body, at most ``limit`` bytes: a chunked body has no ``Content-Length`` to check first."""
        from aiohttp import web

        data = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(data))
        return bytes(data)

    async def _body(self, request: "web.Request") -> dict[str, Any]:
        raw = await self._read(request, JSON_LIMIT)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("body must be JSON") from None
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    async def _finish(self, fut: "Future[StyleState] | None", wait: bool) -> "web.StreamResponse":
        from aiohttp import web

        if fut is None:
            return web.json_response({"ok": True, "style": self.pipeline.stylizer.style_name})
        if not wait:
            fut.add_done_callback(_log_failure)
            return web.json_response({"ok": True}, status=202)
        st = await asyncio.wait_for(asyncio.wrap_future(fut), SWAP_TIMEOUT_S)
        return web.json_response({"ok": True, "style": st.name, "prepared_s": round(st.prepared_s, 4)})

    async def _style(self, request: "web.Request") -> "web.StreamResponse":
        body = await self._body(request)
        if not any(k in body for k in ("model", "style_image", "style", "options")):
            raise ValueError("give 'model', 'style_image', 'style' (bank name/index/blend) and/or 'options'")
        opts = body.get("options")
        if opts is not None and not isinstance(opts, dict):
            raise ValueError("'options' must be an object, e.g. {\"brush\": 384}")
        crossfade = body.get("crossfade")
        if crossfade is not None and (not isinstance(crossfade, int) or isinstance(crossfade, bool) or crossfade < 0):
            raise ValueError("'crossfade' must be a whole number of frames >= 0")
        style = body.get("style")
        fut = self.pipeline.swap(body.get("model"), style_image=body.get("style_image"),
                                 style_vector=None if style is None else str(style), options=opts, crossfade=crossfade)
        return await self._finish(fut, bool(body.get("wait", True)))

    async def _style_image(self, request: "web.Request") -> "web.StreamResponse":
        data = await self._read(request, UPLOAD_LIMIT)
        if not data:
            raise ValueError("the body must be an image file (JPEG, PNG, WebP, BMP)")
        img = await asyncio.get_running_loop().run_in_executor(None, _decode_image, data)
        crossfade = request.query.get("crossfade")
        fut = self.pipeline.swap(request.query.get("model") or None, style_image=img,
                                 crossfade=int(crossfade) if crossfade else None)
        return await self._finish(fut, request.query.get("wait", "1") not in ("0", "false"))

    async def _action(self, request: "web.Request") -> "web.StreamResponse":
        from aiohttp import web

        body = await self._body(request)
        p, path = self.pipeline, request.path
        if path == "/pause":
            p.toggle_pause()
            return web.json_response({"ok": True, "paused": p.paused.is_set()})
        if path == "/stop":
            p.request_stop()
            return web.json_response({"ok": True})
        act = {"/next": p.next_style, "/previous": p.previous_style,
               "/brush/smaller": p.brush_smaller, "/brush/larger": p.brush_larger}[path]
        # the swap an action starts, if it started one (none: nothing to cycle, no brush control)
        before = p.stylizer.pending_swap()
        act()
        after = p.stylizer.pending_swap()
        fut = after[0] if after is not None and after is not before else None
        return await self._finish(fut, bool(body.get("wait", False)))


def _controls_of(model: Any) -> dict[str, float]:
    """The numeric controls the running model can change (``with_controls``): alpha, brush.
    Read off the model as :meth:`Pipeline.scale_brush` does; models declare no list of them yet."""
    if model is None or not callable(getattr(model, "with_controls", None)):
        return {}
    out = {}
    for name in ("alpha", "brush"):
        v = getattr(model, name, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[name] = float(v)
    return out


def _log_failure(fut: "Future[Any]") -> None:
    e = fut.exception()
    if e is not None:
        log.warning("style change failed: %s: %s", type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def _decode_image(data: bytes) -> np.ndarray:
    try:
        return decode_image(data)
    except ImageReadError:
        raise ValueError("the body is not an image OpenCV can read (JPEG, PNG, WebP, BMP)") from None


def _thumbnail(path: Path, side: int = 160) -> bytes:
    return encode_image(read_image(path, max_side=side), ".jpg", quality=85)

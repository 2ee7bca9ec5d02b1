"""``rtstyle live``: a camera, stream or the synthetic source, to a window, virtual camera, stream or file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import CLIError, add_model_options, default_model, size_arg, stylizer_settings

__all__ = ["add_parser", "cmd_live"]


def add_parser(sub: Any) -> None:
    s = sub.add_parser("live", help="live stylisation from a camera, stream or the synthetic source")
    s.add_argument("--source", default="cam:0", help="cam:N, /dev/videoN, URL, synthetic[:WxH@FPS] or a file (default cam:0)")
    s.add_argument("--sink", action="append", help="window, vcam[:DEVICE], udp://..., rtmp://..., or a file; repeatable (default window)")
    add_model_options(s, multi=True)
    s.add_argument("--camera-size", type=size_arg, default=None, help="ask the camera for WxH (e.g. 1280x720)")
    s.add_argument("--camera-fps", type=float, default=None, help="ask the camera for this frame rate")
    s.add_argument("--control-port", type=int, default=None,
                   help="serve the control page and API on 127.0.0.1:PORT (0: any free port); prints its URL with the token")
    s.add_argument("--control-token", default=None, metavar="TOKEN",
                   help="the control endpoint's token (default: a new random one each run)")
    s.add_argument("--control-host", default="127.0.0.1", metavar="ADDR",
                   help="address for the control endpoint (default 127.0.0.1); beyond loopback needs --control-token")
    s.add_argument("--style-images", metavar="DIR", default=None,
                   help="paintings named like the styles (wave.jpg): thumbnails on the control page")
    s.add_argument("--source-timeout", type=float, default=None, metavar="S",
                   help="a camera or stream that drops out is reopened with backoff while the sinks get the last "
                        "frame, then a 'signal lost' slate; give up (exit 1) after S seconds without a frame "
                        "(default: keep trying)")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    s.add_argument("--max-frames", type=int, default=None, help="stop after N frames read")
    s.add_argument("-y", "--overwrite", action="store_true", help="replace an existing recording file given as --sink")
    s.set_defaults(func=cmd_live)


def _check_control_args(args: argparse.Namespace) -> None:
    from ..control import _is_loopback, check_token

    if args.control_port is None:
        if args.control_token is not None or args.control_host != "127.0.0.1" or args.style_images:
            raise CLIError("--control-token/--control-host/--style-images need --control-port PORT")
        return
    if not 0 <= args.control_port <= 65535:
        raise CLIError(f"--control-port must be 0..65535, got {args.control_port}")
    check_token(args.control_token)
    if not _is_loopback(args.control_host) and args.control_token is None:
        raise CLIError(f"--control-host {args.control_host} reaches beyond this machine: give --control-token too")
    if args.style_images and not Path(args.style_images).is_dir():
        raise CLIError(f"--style-images: not a folder: {args.style_images}")


def cmd_live(args: argparse.Namespace) -> int:
    from ..control import ControlServer
    from ..io.reconnect import ReconnectingSource
    from ..jobs import build_stylizer, is_file_output, open_sinks, refuse_output
    from ..pipeline import Pipeline

    models = args.model or [default_model()]
    _check_control_args(args)  # before any device or model work
    cam_kw: dict[str, Any] = {}
    if args.camera_size:
        if not isinstance(args.camera_size, tuple):
            raise CLIError("--camera-size must be WxH, e.g. 1280x720")
        cam_kw.update(width=args.camera_size[0], height=args.camera_size[1])
    if args.camera_fps:
        cam_kw["fps"] = args.camera_fps
    for spec in args.sink or []:  # a recording never replaces an existing file (or the source) unasked
        if is_file_output(spec):
            refuse_output(spec, [args.source] if Path(args.source).exists() else [], args.overwrite)
    try:
        src = _open_live_source(args.source, cam_kw, args.source_timeout)
    except TypeError:
        raise CLIError("--camera-size/--camera-fps apply to camera sources (cam:N, /dev/videoN)") from None
    with src:
        sinks = open_sinks(args.sink or ["window"], src.info, overwrite=args.overwrite)  # fail before model work
        stylizer = build_stylizer(stylizer_settings(args, models[0]), live=True,
                                  frame_size=(src.info.width, src.info.height))
        pipe = Pipeline(src, stylizer, sinks, live=True, styles=models, max_frames=args.max_frames)
        for m in models[1:]:  # warm the cycle in the background so hotkeys switch instantly
            stylizer.prefetch(m)
        ctl = None
        if args.control_port is not None:
            try:
                ctl = ControlServer(pipe, args.control_port, host=args.control_host, token=args.control_token,
                                    style_images=args.style_images)
            except (OSError, ImportError) as e:
                stylizer.close()
                raise CLIError(f"control endpoint on {args.control_host}:{args.control_port}: "
                               f"{getattr(e, 'strerror', None) or e}") from None
            ctl.__enter__()
            print(f"control page: {ctl.url}", file=sys.stderr)  # once, token included (as Jupyter does)
        try:
            pipe.run(duration=args.duration)
        finally:
            if ctl:
                ctl.__exit__(None, None, None)
            stylizer.close()
    rep = pipe.report(source=args.source)
    if args.report:
        pipe.write_report(args.report, source=args.source)
    gave_up = src.gave_up if isinstance(src, ReconnectingSource) else None  # --source-timeout passed
    if gave_up:
        raise CLIError(gave_up)  # after the sinks were finalised: a recording up to the outage is kept
    if not args.quiet:
        print(f"live: {rep['frames_out']} frames out, {rep['frames_dropped']} dropped, {rep['fps']:.1f} fps, "
              f"latency p50 {rep.get('latency_ms_p50', float('nan')):.0f} ms p95 {rep.get('latency_ms_p95', float('nan')):.0f} ms")
    return 0


def _open_live_source(spec: str, cam_kw: dict[str, Any], timeout: float | None) -> Any:
    """The ``--source`` of ``rtstyle live``: cameras and network streams are wrapped so that the run
    outlives their outages (reopened with backoff, sinks fed meanwhile; ``--source-timeout`` gives
    up); the synthetic pattern and files cannot drop out and are used as they are."""
    from ..io import CameraSource, open_source
    from ..io.reconnect import ReconnectingSource
    from ..io.video import is_url

    if timeout is not None and timeout <= 0:
        raise CLIError(f"--source-timeout must be > 0 seconds, got {timeout:g}")
    first = open_source(spec, **cam_kw)
    if not (isinstance(first, CameraSource) or (first.info.live and is_url(spec))):
        if timeout is not None:
            first.close()
            raise CLIError("--source-timeout applies to cameras and network streams")
        return first
    pending = [first]  # the factory's first call hands back the source opened above

    def reopen() -> Any:
        return pending.pop() if pending else open_source(spec, **cam_kw)

    return ReconnectingSource(reopen, name=spec, give_up_after=timeout)

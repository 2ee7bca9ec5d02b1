"""``rtstyle bench`` (naive loop vs pipeline vs backends) and ``rtstyle export`` (build and cache an engine)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ._common import CLIError, default_model, size_arg

__all__ = ["add_parsers", "cmd_bench", "cmd_export"]


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("bench", help="compare a naive loop, the pipeline and backends on the same frames")
    s.add_argument("--model", "-m", default=None)
    s.add_argument("--backends", default="eager", help="comma-separated backends to compare (default eager)")
    s.add_argument("--size", type=size_arg, default=None, help="WxH of the benchmark frames (default 640x480)")
    s.add_argument("--frames", type=int, default=30)
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto: CUDA when a GPU is present)")
    s.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | fp16 | int8 for every backend (default auto)")
    s.add_argument("--live-seconds", type=float, default=0.0, help="also run the synthetic live source this long")
    s.add_argument("--live-size", type=int, default=None, help="internal short side for the live run")
    s.add_argument("--json", default=None)
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("export", help="build and cache a model's engine for a backend and frame size")
    s.add_argument("--model", "-m", default=None, help="registry name, checkpoint path, or onnx:PATH")
    s.add_argument("--backend", "-b", required=True, choices=["onnx", "openvino", "tensorrt"])
    s.add_argument("--size", type=size_arg, required=True, help="WxH the engine is built (and tuned) for")
    s.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 | int8, as the backend supports (default fp32)")
    s.add_argument("--min-size", type=size_arg, default=None, help="WxH lower bound of the dynamic size range")
    s.add_argument("--max-size", type=size_arg, default=None, help="WxH upper bound of the dynamic size range")
    s.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    s.add_argument("--style", default=None, help="style image, for models that take one")
    s.add_argument("--cache-dir", default=None, help="engine cache folder (default $RTSTYLE_ENGINES or ./engines)")
    s.set_defaults(func=cmd_export)


def cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import run_bench
    from ..stylizer import resolve_device

    try:
        device = str(resolve_device(args.device))
    except ValueError as e:
        raise CLIError(str(e)) from None
    rep = run_bench(model=args.model or default_model(), backends=args.backends.split(","), size=args.size or (640, 480),
                    frames=args.frames, device=device, precision=args.precision, live_seconds=args.live_seconds,
                    live_size=args.live_size)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rep, indent=2) + "\n")
    return 0


class _EngineCacheWatch:
    """Records the engine-cache entries used while it is active, as ``(folder, built_now)``.

    Backends do not hand back their artefact paths uniformly (a runner may rest on several entries:
    an ONNX export plus an IR), so ``rtstyle export`` observes :meth:`EngineCache.put` during one
    single-threaded build instead.
    """

    def __enter__(self) -> list[tuple[Path, bool]]:
        from ..backends.cache import EngineCache

        self.used: list[tuple[Path, bool]] = []
        self._real = real = EngineCache.put
        used = self.used

        def put(cache: EngineCache, key: Any, build_fn: Any) -> Path:
            fresh = cache.get(key) is None
            folder = real(cache, key, build_fn)
            used.append((Path(folder), fresh))
            return folder

        EngineCache.put = put  # type: ignore[method-assign]
        return self.used

    def __exit__(self, *exc: object) -> None:
        from ..backends.cache import EngineCache

        EngineCache.put = self._real  # type: ignore[method-assign]


class _Ticker:
    """Prints ``label... N s`` to stderr every ``every`` seconds while a long step runs."""

    def __init__(self, label: str, enabled: bool = True, every: float = 5.0) -> None:
        self.label, self.enabled, self.every = label, enabled, every

    def __enter__(self) -> "_Ticker":
        import threading

        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._tick, name="rtstyle-export-progress", daemon=True)
        if self.enabled:
            self._thread.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            print(f"{self.label}... {time.perf_counter() - self._t0:.0f} s", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _hw_option(value: int | tuple[int, int] | None, flag: str) -> tuple[int, int] | None:
    """A ``WxH`` option as ``(H, W)`` (the backends' order)."""
    if value is None:
        return None
    if not isinstance(value, tuple):
        raise CLIError(f"{flag} must be WxH (e.g. 640x480), got {value}")
    w, h = value
    if min(w, h) < 1:
        raise CLIError(f"{flag} must be positive, got {w}x{h}")
    return h, w


def cmd_export(args: argparse.Namespace) -> int:
    """Build (or find in the engine cache) a model's engine for one backend and frame size."""
    from ..backends import BackendOptions, create_backend
    from ..stylizer import Stylizer

    size = _hw_option(args.size, "--size")
    assert size is not None
    h, w = size
    mn, mx = _hw_option(args.min_size, "--min-size"), _hw_option(args.max_size, "--max-size")
    if mn and (mn[0] > h or mn[1] > w):
        raise CLIError(f"--min-size {mn[1]}x{mn[0]} exceeds --size {w}x{h}")
    if mx and (mx[0] < h or mx[1] < w):
        raise CLIError(f"--max-size {mx[1]}x{mx[0]} is below --size {w}x{h}")
    opts = BackendOptions(device=args.device, precision=args.precision, cache_dir=args.cache_dir,
                          min_shape=mn, max_shape=mx)
    check = getattr(create_backend(args.backend, opts), "check_available", None)
    if check is not None:
        check()  # a missing backend fails here, before the model is loaded
    model = args.model or default_model()
    label = f"{model} on {args.backend} at {w}x{h} {args.precision}"
    if not args.quiet:
        print(f"building {label} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with _EngineCacheWatch() as used, _Ticker(f"rtstyle: still building {label}", enabled=not args.quiet):
        stylizer = Stylizer(model, backend=args.backend, device=args.device, precision=args.precision,
                            style_image=args.style, options=opts, frame_size=(w, h))
    elapsed = time.perf_counter() - t0
    runner = stylizer.state.runner
    stylizer.close()
    seen: set[Path] = set()
    for folder, built in used:
        if folder in seen:
            continue
        seen.add(folder)
        if built:
            try:
                secs = float(json.loads((folder / "manifest.json").read_text())["build_seconds"])
                how = f"built in {secs:.1f} s"
            except (OSError, ValueError, KeyError):
                how = "built"
        else:
            how = "cached, reused"
        print(f"engine: {folder} ({how})")
    if not seen:
        path = getattr(runner, "path", None)
        print(f"engine: {path} (nothing to build: {args.backend} runs this file directly)" if path
              else f"engine: none (the {args.backend} backend builds in memory)")
    print(f"export: {label} ready in {elapsed:.1f} s (load + build + warm-up)")
    return 0

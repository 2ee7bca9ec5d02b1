"""The ``rtstyle`` command: thin subcommands over the public API.

Every user-facing failure (missing file, unknown model, no camera, unwritable output, missing
optional dependency) ends as one ``rtstyle: error: ...`` line and a non-zero exit, never a
traceback (``--debug`` shows it).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "DEFAULT_MODEL"]

log = logging.getLogger("rtstyle")

DEFAULT_MODEL = "johnson.starry_night_lite"
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".flv", ".ts"}


class CLIError(Exception):
    """A one-line user error."""


# --------------------------------------------------------------------------- shared options
def _add_model_opts(p: argparse.ArgumentParser, multi: bool = False) -> None:
    p.add_argument("--model", "-m", action="append" if multi else "store", default=None,
                   help="registry name (see `rtstyle models`), checkpoint path (.pth/.safetensors), or family:PATH"
                   + (". Repeat to give a cycle for next/previous-style controls" if multi else ""))
    p.add_argument("--style", action="append", default=None,
                   help="style image, for models that take one; adain.*: repeat to interpolate several")
    p.add_argument("--style-weights", default=None, help="adain.*: weights of the repeated --style images, e.g. 0.3,0.7")
    p.add_argument("--alpha", type=float, default=None, help="adain.*/wct.*/msgnet.*: content-style strength 0..1 (default 1)")
    p.add_argument("--brush", type=float, default=None,
                   help="msgnet.*: brush-stroke size as the style image's longer side in pixels (default 256; larger = bigger strokes)")
    p.add_argument("--colour", choices=["luminance", "histogram"], default=None,
                   help="adain.*: keep the content's colours (luminance-only transfer, or match the style's colours first)")
    p.add_argument("--colour-reference", default=None, help="adain.* --colour histogram: the content image to match to")
    p.add_argument("--mask", default=None,
                   help="adain.*: region mask image/.npy (white = first style, black = second style or none)")
    p.add_argument("--style-vector", default=None, metavar="BLEND",
                   help="for multi-style models (onnx.multistyle26): a style index (3), a blend (3:0.5,7:0.5) "
                   "or all weights comma-separated")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--size", type=_size, default=None,
                   help="internal resolution: short side in pixels (240) or WxH (320x240); output keeps the input size")
    g.add_argument("--scale", type=float, default=None, help="internal resolution as a factor of the input size")
    p.add_argument("--backend", "-b", default="auto",
                   help="auto | eager | compiled | onnx | openvino | tensorrt (default auto: fastest installed)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto: CUDA when a GPU is present)")
    p.add_argument("--precision", default="auto",
                   help="auto | fp32 | bf16 | fp16 | int8, as the backend supports (default auto: the fastest on this "
                   "host that keeps >= 40 dB PSNR vs eager fp32, measured once per model and backend, then cached)")
    p.add_argument("--crossfade", type=int, default=0, help="frames over which a style swap blends (default 0)")
    p.add_argument("--temporal", type=float, default=None, metavar="STRENGTH",
                   help="flow-guided flicker reduction, 0..0.95 (e.g. 0.8); off by default")
    p.add_argument("--temporal-preset", choices=["file", "live"], default=None,
                   help="stabiliser quality/cost preset (default: file for stylize, live for live)")
    p.add_argument("--style-encoder", choices=["auto", "fp32", "int8"], default="auto",
                   help="metanet.*: precision of the style-image encoder; int8 (OpenVINO + NNCF) makes style changes "
                   "~3x faster for a slightly different net (default auto: int8 for live when installed, else fp32)")
    p.add_argument("--report", type=Path, default=None, help="write a JSON run report here")


def _size(text: str) -> int | tuple[int, int]:
    try:
        if "x" in text.lower():
            w, h = text.lower().split("x")
            return int(w), int(h)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WxH, got {text!r}") from None


def _make_stylizer(args: argparse.Namespace, model: str, live: bool = False, options: Any = None):
    from .stylizer import Stylizer

    size = args.size
    if size is None and args.scale is None and live:
        from .models import get_spec

        try:
            size = get_spec(model).default_size
        except KeyError:
            size = None
    temporal = None
    if getattr(args, "temporal", None) is not None:
        from .temporal import make_temporal

        if not 0.0 <= args.temporal < 1.0:
            raise CLIError(f"--temporal must be in [0, 1), got {args.temporal}")
        temporal = make_temporal(args.temporal, args.temporal_preset or ("live" if live else "file"))
    target, style_image = _model_with_controls(args, model)
    stylizer = Stylizer(target, backend=args.backend, device=args.device, precision=args.precision,
                        size=size, scale=args.scale, style_image=style_image, crossfade=args.crossfade,
                        temporal=temporal, style_encoder=_style_encoder(args, live), options=options)
    _apply_style_vector(stylizer, getattr(args, "style_vector", None))
    return stylizer


def _style_encoder(args: argparse.Namespace, live: bool) -> str | None:
    """``--style-encoder``: auto is int8 for live use (style changes while streaming) when OpenVINO and
    NNCF are installed, else the model's own fp32."""
    choice = getattr(args, "style_encoder", "auto") or "auto"
    if choice != "auto":
        return choice
    from .models._style_encoder import int8_available
    from .stylizer import resolve_device

    device = str(getattr(args, "device", "cpu"))
    on_cpu = device == "cpu" or (device == "auto" and resolve_device("auto").type == "cpu")
    return "int8" if live and on_cpu and int8_available() else None


def _model_with_controls(args: argparse.Namespace, model: str) -> tuple[Any, str | None]:
    """The model (a name, or a module built with --alpha/--colour/--mask) and its style image."""
    styles: list[str] = list(getattr(args, "style", None) or [])
    family = _family(model)
    if family == "msgnet":
        return _msgnet_with_controls(args, model, styles)
    if getattr(args, "brush", None) is not None:
        raise CLIError("--brush applies to msgnet.* models")
    for p in styles:
        if not Path(p).is_file():
            raise CLIError(f"style image not found: {p}")
    ctrl = {k: getattr(args, k, None) for k in ("alpha", "colour", "mask")}
    ctrl = {k: v for k, v in ctrl.items() if v is not None}
    if getattr(args, "colour_reference", None):
        ctrl["colour_reference"] = args.colour_reference
    weights = getattr(args, "style_weights", None)
    if not ctrl and len(styles) <= 1 and weights is None:
        return model, (styles[0] if styles else None)
    from .models import create_model

    if family not in ("adain", "wct"):
        raise CLIError("--alpha/--colour/--mask/--style-weights and several --style apply to adain.* and wct.* models")
    if family == "wct" and set(ctrl) - {"alpha"}:
        raise CLIError("wct.* takes --alpha only")
    net = create_model(model, **ctrl)
    if len(styles) > 1 or weights is not None:
        try:
            w = [float(x) for x in weights.split(",")] if weights else None
        except ValueError:
            raise CLIError(f"--style-weights must be comma-separated numbers, got {weights!r}") from None
        if family != "adain":
            raise CLIError("several --style images are interpolated by adain.* models only")
        return net.with_styles(styles, w), None
    return net, (styles[0] if styles else None)


def _family(model: str) -> str:
    from .models import get_spec

    if str(model).startswith("msgnet:"):
        return "msgnet"
    try:
        return get_spec(model).family
    except KeyError:
        return ""


def _msgnet_with_controls(args: argparse.Namespace, model: str, styles: list[str]) -> tuple[Any, str | None]:
    """MSG-Net: ``--style`` is a style image file or a bank style (name, index or blend)."""
    from .models import create_model

    if len(styles) > 1:
        raise CLIError("msgnet.*: give one --style (an image, a bank style name/index, or a blend like wave:0.5,udnie:0.5)")
    if getattr(args, "mask", None) or getattr(args, "style_weights", None):
        raise CLIError("msgnet.* takes --style, --brush, --alpha and --colour luminance")
    if getattr(args, "colour", None) not in (None, "luminance"):
        raise CLIError("msgnet.* supports --colour luminance")
    ctrl = {k: getattr(args, k, None) for k in ("brush", "alpha", "colour")}
    ctrl = {k: v for k, v in ctrl.items() if v is not None}
    style = styles[0] if styles else None
    image = style if style is not None and Path(style).is_file() else None
    if style is not None and image is None:
        if any(style.lower().endswith(e) for e in (".jpg", ".jpeg", ".png", ".bmp", ".webp")):
            raise CLIError(f"style image not found: {style}")
        ctrl["style"] = style
    try:
        net = create_model(model, **{k: v for k, v in ctrl.items() if k != "style"})
        if "style" in ctrl:
            net = net.with_controls(weights=net.parse_style_vector(ctrl["style"]))
    except ValueError as e:
        raise CLIError(str(e)) from None
    return net, image


def _apply_style_vector(stylizer: Any, text: str | None) -> None:
    """Activate ``--style-vector`` (parsed by the model: it knows its vector length and style names)."""
    if text is None:
        return
    from .models._abilities import ParsesStyleVector

    model = stylizer.state.model
    if not isinstance(model, ParsesStyleVector):
        raise CLIError(f"model {stylizer.spec.name} takes no style vector (--style-vector)")
    stylizer.set_style(style_vector=model.parse_style_vector(text), crossfade=0, wait=True)


# --------------------------------------------------------------------------- commands
def cmd_models(args: argparse.Namespace) -> int:
    from .models import get_spec, list_models

    names = list_models(args.pattern)
    if args.json:
        print(json.dumps([json.loads(get_spec(n).to_json()) for n in names], indent=2))
        return 0
    if not names:
        print(f"no models match {args.pattern!r}")
        return 1
    rows = [(n, get_spec(n)) for n in names]
    w = max(len(n) for n, _ in rows)
    for n, s in rows:
        style = ("any image" if s.needs_style_image else
                 f"{len(s.styles)} styles" if len(s.styles) > 3 else ", ".join(s.styles) or "-")
        print(f"{n:<{w}}  {s.family:<9} style: {style:<24} live size: {s.default_size or 'native'}  licence: {s.licence}")
    return 0


def _open_sinks(specs: Sequence[str], src_info: Any, encode: dict[str, Any] | None = None,
                overwrite: bool = True) -> list:
    from .io import open_sink

    sinks = []
    for spec in specs:
        kw: dict[str, Any] = {}
        if _is_file_output(spec):
            kw["overwrite"] = overwrite
        suffix = Path(spec).suffix.lower()
        if suffix in VIDEO_EXTS or spec.startswith(("udp://", "rtmp://", "vcam")):
            kw["fps"] = src_info.fps or 30.0
        if suffix in VIDEO_EXTS:
            kw.update({k: v for k, v in (encode or {}).items() if v is not None})
            kw["time_base"] = src_info.extra.get("time_base")
            if src_info.has_audio and src_info.path and not src_info.live:
                kw["audio_from"] = src_info.path
        sinks.append(open_sink(spec, **kw))
    return sinks


def _is_file_output(spec: str) -> bool:
    """A video file, an image file or a folder of images (not a window, device or stream)."""
    from .io.images import IMAGE_EXTENSIONS

    suffix = Path(spec).suffix.lower()
    return suffix in VIDEO_EXTS or suffix in IMAGE_EXTENSIONS or spec.endswith(("/", "\\")) or Path(spec).is_dir()


def cmd_stylize(args: argparse.Namespace) -> int:
    """Stylise one video, one image, or a batch of images (folder or glob). Never writes over an
    input, never over an existing file without ``-y``; a batch does every good image, skips the ones
    already done and names the unreadable ones (exit 1)."""
    from tqdm import tqdm

    from .io import ImageSource, Source, SourceError, VideoFileSource, open_source
    from .io.images import IMAGE_EXTENSIONS, list_images
    from .pipeline import Pipeline, parse_schedule

    if getattr(args, "ray", None) is not None:
        return _stylize_on_ray(args)
    model = (args.model or DEFAULT_MODEL)
    schedule = parse_schedule(args.swap) if args.swap else []
    out = str(args.output)
    overwrite = bool(getattr(args, "overwrite", False))
    inp = Path(str(args.input))
    batch: _Batch | None = None
    src: Source
    if inp.is_dir() or inp.suffix.lower() in IMAGE_EXTENSIONS or (not inp.exists() and _is_glob(str(inp))):
        if Path(out).suffix.lower() in VIDEO_EXTS:
            raise CLIError("image input needs an image file or folder as output (e.g. out.jpg or out_dir/)")
        batch = _plan_batch(list_images(str(inp)), out, overwrite)
        if not batch.todo:
            _print_batch_summary(args, out, batch, frames=0)
            if args.report:
                _write_skip_report(args.report, args.input, out, batch)
            return 0
        try:
            src = ImageSource(batch.todo, skip_unreadable=len(batch.todo) > 1 or inp.is_dir())
        except SourceError:
            if not (len(batch.todo) > 1 or inp.is_dir()):
                raise
            return _unreadable_batch(args, out, batch)  # not one image to do: say which and why
    else:
        src = open_source(str(args.input))
    with src:
        info = src.info
        if info.live:
            raise CLIError(f"{args.input} is a live source; use `rtstyle live --source {args.input}`")
        if batch is None:
            if Path(out).suffix.lower() not in VIDEO_EXTS:
                raise CLIError(f"video input needs a video output ({', '.join(sorted(VIDEO_EXTS))}), got {out}")
            _refuse_output(out, [str(args.input)], overwrite)
        sinks = _open_sinks([out], info, {"crf": args.crf, "preset": args.encoder_preset},  # fail before model work
                            overwrite=overwrite)
        stylizer = _make_stylizer(args, model)
        bar = tqdm(total=info.frame_count, unit="frame", desc="stylize", disable=args.quiet, dynamic_ncols=True)
        last: list[Any] = [None]  # the last frame out, to place --swap entries that never came due

        def on_frame(f: Any) -> None:
            last[0] = f
            bar.update(1)

        pipe = Pipeline(src, stylizer, sinks, schedule=schedule, max_frames=args.max_frames, on_frame=on_frame)
        try:
            pipe.run()
        finally:
            bar.close()
            stylizer.close()
    _warn_unapplied_swaps(pipe.pending_swaps, last[0])
    extra: dict[str, Any] = {"input": str(args.input), "output": out}
    if batch is not None:
        batch.failed = [(str(f), why) for f, why in src.failed] if isinstance(src, ImageSource) else []
        extra.update(skipped_existing=len(batch.skipped), skipped=[str(p) for p in batch.skipped],
                     failed=[{"file": f, "reason": why} for f, why in batch.failed])
    if isinstance(src, VideoFileSource) and src.damage:
        extra["input_damage"] = src.damage
    rep = pipe.report(**extra)
    if args.report:
        pipe.write_report(args.report, **extra)
    if batch is not None:
        _print_batch_summary(args, out, batch, frames=rep["frames_out"], rep=rep)
        return _report_unreadable(batch)
    if not args.quiet:
        print(f"wrote {out}: {rep['frames_out']} frames in {rep['wall_s']:.1f} s ({rep['fps']:.1f} fps)")
    return 0


class _Batch:
    """An image job planned before any model work: the files to do and those already done."""

    def __init__(self, todo: list[Path], skipped: list[Path]) -> None:
        self.todo, self.skipped = todo, skipped
        self.failed: list[tuple[str, str]] = []


def _is_glob(text: str) -> bool:
    import glob

    return glob.has_magic(text)


def _refuse_output(out: str, inputs: Sequence[str | Path], overwrite: bool) -> None:
    """One file output: never one of the inputs; an existing file only with ``-y``."""
    from .io.safety import OutputExistsError, SameFileError, check_output

    try:
        check_output(out, overwrite=overwrite, inputs=inputs)
    except SameFileError:
        raise CLIError(f"refusing to write {out}: it is the input file (choose another output)") from None
    except OutputExistsError:
        raise CLIError(f"{out} exists; pass -y/--overwrite to replace it") from None


def _plan_batch(files: list[Path], out: str, overwrite: bool) -> _Batch:
    """Which images to stylise: the targets are checked against every input first (an output folder
    that is the input folder would replace the photos), then existing ones are skipped unless ``-y``."""
    from .io.images import IMAGE_EXTENSIONS
    from .io.safety import same_file

    out_p = Path(out)
    if out_p.suffix.lower() in IMAGE_EXTENSIONS and not out_p.is_dir():
        if len(files) > 1:
            raise CLIError(f"{len(files)} input images need an output folder (e.g. {out_p.parent / out_p.stem}/), "
                           f"not one image file")
        _refuse_output(out, files, overwrite)
        return _Batch(files, [])
    if out_p.exists() and not out_p.is_dir():
        raise CLIError(f"cannot write into {out}: it is a file, not a folder")
    todo: list[Path] = []
    skipped: list[Path] = []
    seen: dict[str, Path] = {}
    for f in files:
        target = out_p / f.name
        if same_file(f, target):
            raise CLIError(f"refusing to write into {out}: the results would replace the input images "
                           f"(e.g. {f}); choose another output folder")
        if f.name in seen:
            raise CLIError(f"{seen[f.name]} and {f} would both be written as {target}")
        seen[f.name] = f
        if target.exists() and not overwrite:
            skipped.append(target)
        else:
            todo.append(f)
    return _Batch(todo, skipped)


def _print_batch_summary(args: argparse.Namespace, out: str, batch: _Batch, frames: int,
                         rep: dict[str, Any] | None = None) -> None:
    if args.quiet and not batch.skipped:
        return
    parts = [f"wrote {frames} image{'s' if frames != 1 else ''} to {out}"]
    if rep is not None:
        parts[0] += f" in {rep['wall_s']:.1f} s"
    if batch.skipped:
        parts.append(f"{len(batch.skipped)} skipped: output exists (-y redoes them)")
    if batch.failed:
        parts.append(f"{len(batch.failed)} unreadable")
    print("; ".join(parts), file=sys.stderr if args.quiet else sys.stdout)


def _write_skip_report(path: Path, inp: Any, out: str, batch: _Batch) -> None:
    """The ``--report`` of a batch in which nothing ran (every output existed, or no input was readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"input": str(inp), "output": out, "frames_in": 0, "frames_out": 0,
                                "skipped_existing": len(batch.skipped), "skipped": [str(p) for p in batch.skipped],
                                "failed": [{"file": f, "reason": why} for f, why in batch.failed]}, indent=2) + "\n")


def _unreadable_batch(args: argparse.Namespace, out: str, batch: _Batch) -> int:
    """A batch whose images to do are all unreadable: name them (and what was skipped), exit 1."""
    from .io import SourceError
    from .io.images import read_image

    for f in batch.todo:
        try:
            read_image(f)
        except SourceError as e:
            batch.failed.append((str(f), str(e).removeprefix(f"cannot decode {f}: ").removeprefix(f"cannot read {f}: ")))
    _print_batch_summary(args, out, batch, frames=0)
    if args.report:
        _write_skip_report(args.report, args.input, out, batch)
    return _report_unreadable(batch)


def _report_unreadable(batch: _Batch) -> int:
    """The one summary line naming the unreadable images of a batch; the exit code."""
    if not batch.failed:
        return 0
    names = ", ".join(f"{Path(f).name} ({why})" for f, why in batch.failed)
    total = len(batch.todo) + len(batch.skipped)
    print(f"rtstyle: error: {len(batch.failed)} of {total} images could not be read: {names}", file=sys.stderr)
    return 1


def _warn_unapplied_swaps(pending: Sequence[Any], last: Any) -> None:
    """``--swap`` entries the input never reached: said, not silently dropped."""
    if not pending:
        return
    if last is None:
        end = "no frame was stylised"
    elif last.pts is not None:
        end = f"the last frame, #{last.index}, is at {last.pts:.2f} s"
    else:
        end = f"the last frame is #{last.index}"
    for sw in pending:
        when = f"{sw.at_s:g}s" if sw.at_s is not None else f"#{sw.at_frame}"
        log.warning("--swap %s=%s is past the end of the input (%s): not applied", when, sw.model, end)


def _check_control_args(args: argparse.Namespace) -> None:
    from .control import _is_loopback, check_token

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


# The model options a Ray worker needs to build the same Stylizer as this process (plain data).
_RAY_STYLIZER_FIELDS = ("model", "style", "style_weights", "alpha", "brush", "colour", "colour_reference", "mask",
                        "style_vector", "size", "scale", "backend", "device", "precision", "crossfade", "temporal",
                        "temporal_preset", "style_encoder")


def _ray_stylizer(options: Any = None, **fields: Any):
    """A worker's Stylizer, built from the command's options exactly as ``rtstyle stylize`` builds it."""
    ns = argparse.Namespace(**fields)
    return _make_stylizer(ns, ns.model, options=options)


def _stylize_on_ray(args: argparse.Namespace) -> int:
    """``rtstyle stylize ... --ray``: the job on a Ray cluster (:mod:`rtstyle.distributed`)."""
    from tqdm import tqdm

    from .distributed import BatchOptions, StylizerRecipe, run_batch
    from .distributed.cluster import import_ray

    import_ray()  # no Ray: one line naming the extra, before anything else
    if getattr(args, "temporal", None) is not None and not 0.0 <= args.temporal < 1.0:
        raise CLIError(f"--temporal must be in [0, 1), got {args.temporal}")
    fields = {k: getattr(args, k, None) for k in _RAY_STYLIZER_FIELDS}
    fields["model"] = args.model or DEFAULT_MODEL
    if ":" not in fields["model"] and not Path(fields["model"]).exists():
        from .models import get_spec

        get_spec(fields["model"])  # an unknown name fails here, not on every worker
    _model_with_controls(argparse.Namespace(**fields), fields["model"])  # bad options fail here, not on workers
    recipe = StylizerRecipe(kwargs=fields, build=_ray_stylizer, crossfade=int(args.crossfade or 0),
                            temporal=args.temporal is not None)
    device = str(args.device or "cpu")
    opts = BatchOptions(chunk_seconds=args.chunk_seconds, warmup_frames=args.chunk_warmup,
                        overwrite=bool(args.overwrite), retries=args.retries, worker_cpus=args.worker_cpus,
                        worker_gpus=1.0 if device.startswith("cuda") else 0.0, swap=args.swap,
                        max_frames=args.max_frames, crf=args.crf, encoder_preset=args.encoder_preset)
    echo = (lambda line: tqdm.write(line, file=sys.stderr)) if args.verbose else None
    address = None if args.ray == "local" else args.ray
    rep = run_batch(str(args.input), args.output, recipe, options=opts, address=address, progress=not args.quiet,
                    echo=echo)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(rep, indent=2) + "\n")
    done = f"wrote {rep['written']} of {rep['inputs']} file(s), {rep['frames_out']} frames in {rep['wall_s']:.1f} s"
    if rep["chunks"]:
        done += f" ({rep['chunks']} chunks on {rep['workers']} workers, {rep['retried_chunks']} retried)"
    if rep["skipped"]:
        done += f"; {rep['skipped']} skipped: output complete (-y redoes them)"
    if not args.quiet or rep["skipped"]:
        print(done, file=sys.stderr if args.quiet else sys.stdout)
    failed = rep["failed"]
    if len(failed) == 1 and rep["inputs"] == 1:
        print(f"rtstyle: error: {failed[0]['error']}", file=sys.stderr)
    elif failed:
        names = ", ".join(f"{Path(f['input']).name} ({f['error']})" for f in failed)
        print(f"rtstyle: error: {len(failed)} of {rep['inputs']} files failed: {names}", file=sys.stderr)
    return 1 if failed else 0


def cmd_live(args: argparse.Namespace) -> int:
    from .control import ControlServer
    from .pipeline import Pipeline

    models = args.model or [DEFAULT_MODEL]
    _check_control_args(args)  # before any device or model work
    cam_kw: dict[str, Any] = {}
    if args.camera_size:
        if not isinstance(args.camera_size, tuple):
            raise CLIError("--camera-size must be WxH, e.g. 1280x720")
        cam_kw.update(width=args.camera_size[0], height=args.camera_size[1])
    if args.camera_fps:
        cam_kw["fps"] = args.camera_fps
    for spec in args.sink or []:  # a recording never replaces an existing file (or the source) unasked
        if _is_file_output(spec):
            _refuse_output(spec, [args.source] if Path(args.source).exists() else [], args.overwrite)
    try:
        src = _open_live_source(args.source, cam_kw, args.source_timeout)
    except TypeError:
        raise CLIError("--camera-size/--camera-fps apply to camera sources (cam:N, /dev/videoN)") from None
    with src:
        sinks = _open_sinks(args.sink or ["window"], src.info, overwrite=args.overwrite)  # fail before model work
        stylizer = _make_stylizer(args, models[0], live=True)
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
    from .io.reconnect import ReconnectingSource

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
    from .io import CameraSource, open_source
    from .io.reconnect import ReconnectingSource
    from .io.video import is_url

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


def cmd_demo(args: argparse.Namespace) -> int:
    """Stylise the bundled sample clip with the embedded default(s) and write a before/after grid."""
    from importlib import resources

    from .io import open_source
    from .models import list_models
    from .grid import save_grid

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("rtstyle.assets").joinpath("sample.mp4")) as sample:
        ns = argparse.Namespace(input=sample, output=out / "demo.mp4", model=args.model or DEFAULT_MODEL, style=None,
                                size=args.size, scale=None, backend=args.backend, device=args.device, precision="fp32",
                                crossfade=0, report=out / "demo_report.json", swap=None, max_frames=None, quiet=args.quiet,
                                crf=None, encoder_preset=None, temporal=None, temporal_preset=None, style_vector=None,
                                overwrite=True)  # the demo's own folder: a rerun redoes it
        cmd_stylize(ns)
        # before/after grid: sample frames x shipped styles
        from .stylizer import Stylizer

        with open_source(str(sample)) as src:
            frames = [f.image for i, f in zip(range(60), src) if i in (0, 30, 59)]
        models = list_models("johnson.*_lite") or [ns.model]
        rows = []
        for m in models:
            st = Stylizer(m, backend=args.backend, device=args.device)
            rows.append((m, [st.stylize(f) for f in frames]))
            st.close()
        save_grid(out / "demo_grid.jpg", frames, rows)
    if not args.quiet:
        print(f"wrote {out / 'demo.mp4'} and {out / 'demo_grid.jpg'}")
    return 0


def _bank_style_file(folder: str | Path, name: str) -> Path | None:
    """The painting of a bank style in ``folder``: a file whose stem is the style's name."""
    for p in sorted(Path(folder).iterdir()):
        if p.stem == name and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp"):
            return p
    log.warning("no image named %s.* in %s: its row has no style column", name, folder)
    return None


def cmd_grid(args: argparse.Namespace) -> int:
    """Before/after grid: one column per input image, one row per model."""
    from .grid import save_grid
    from .models._abilities import ParsesStyleVector
    from .stylizer import Stylizer
    from .training.data import load_rgb

    _refuse_output(args.output, args.images + (args.style or []), args.overwrite)
    inputs = []
    for p in args.images:
        if not Path(p).is_file():
            raise CLIError(f"image not found: {p}")
        img = load_rgb(p, max_side=args.max_side)
        inputs.append(img[: img.shape[0] // 4 * 4, : img.shape[1] // 4 * 4])
    rows = []
    thumbs: list[Any] = []  # the style image (or None) of each row, when there is one
    for p in args.style or []:
        if not Path(p).is_file():
            raise CLIError(f"style image not found: {p}")
    if args.style_images and not Path(args.style_images).is_dir():
        raise CLIError(f"--style-images: not a folder: {args.style_images}")
    for m in args.model or [DEFAULT_MODEL]:
        st = Stylizer(m, backend=args.backend, device=args.device, style_image=args.style[0] if args.style else None)
        label = Path(m).stem if Path(m).is_file() else (st.spec.name if ":" in m else m)
        frame = inputs[0]
        st.set_frame_size(frame.shape[1], frame.shape[0])
        if args.style and len(args.style) > 1:  # one row per style image
            for p in args.style:
                st.set_style(style_image=p, wait=True)
                rows.append((f"{label} + {Path(p).stem}", [st.stylize(i) for i in inputs]))
                thumbs.append(load_rgb(p, max_side=1024))
        elif args.all_styles and len(st.spec.styles) > 1 and isinstance(st.state.model, ParsesStyleVector):
            for name in st.spec.styles:  # one row per style of the model's bank
                st.set_style(style_vector=name, wait=True)
                rows.append((f"{label}: {name}", [st.stylize(i) for i in inputs]))
                found = _bank_style_file(args.style_images, name) if args.style_images else None
                thumbs.append(load_rgb(found, max_side=1024) if found else None)
        else:
            rows.append((label, [st.stylize(i) for i in inputs]))
            thumbs.append(load_rgb(args.style[0], max_side=1024) if args.style and st.state.style_source else None)
        st.close()
    path = save_grid(args.output, inputs, rows, cell_width=args.cell_width, styles=thumbs)
    if not args.quiet:
        print(f"wrote {path}")
    return 0


def cmd_gatys(args: argparse.Namespace) -> int:
    """``rtstyle gatys``: the slow optimisation-based reference (Gatys et al. 2016) on one image."""
    from .gatys import gatys
    from .training.vgg import load_vgg16

    for p, what in ((args.content, "content image"), (args.style, "style image")):
        if not Path(p).is_file():
            raise CLIError(f"{what} not found: {p}")
    _refuse_output(args.output, [args.content, args.style], args.overwrite)
    from .io.images import write_image

    vgg = load_vgg16(args.vgg, taps=("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
    weights = {k: v for k, v in dict(style_weight=args.style_weight, content_weight=args.content_weight,
                                     tv_weight=args.tv_weight).items() if v is not None}
    out = gatys(args.content, args.style, vgg=vgg, steps=args.steps, size=args.size_, init=args.init,
                optimizer=args.optimizer, seed=args.seed, progress=not args.quiet, **weights)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_image(args.output, out)  # temp file + rename: a failed write leaves no partial image
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """``rtstyle eval temporal``: warping error and style loss, per-frame vs stabilised."""
    from .temporal.evaluate import evaluate_temporal

    src = Path(args.video)
    if not src.exists():
        raise CLIError(f"input not found: {src}")
    max_size = _size(args.max_size) if args.max_size else None
    if isinstance(max_size, int):
        raise CLIError("--max-size must be WxH")
    rep = evaluate_temporal(str(src), args.model or DEFAULT_MODEL, style_image=args.style, temporal=args.strength,
                            flow=args.flow, max_frames=args.max_frames, max_size=max_size,
                            loss_style=args.loss_style, loss_frames=args.loss_frames)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(rep, indent=2) + "\n")
    print(f"{rep['frames']} frames at {rep['size'][0]}x{rep['size'][1]}, flow {rep['flow']}, model {rep['model']}")
    print(f"{'variant':<12}{'warping err':>13}{'reduction':>11}{'style loss':>12}{'SL change':>11}{'added cost':>12}")
    for name, v in rep["variants"].items():
        red, slc, ov, sl = (v.get(k) for k in ("warping_error_reduction", "style_loss_change", "overhead", "style_loss"))
        print(f"{name:<12}{v['warping_error']:>13.5f}{(f'{100 * red:.0f}%' if red is not None else '-'):>11}"
              f"{(f'{sl:.4g}' if sl is not None else '-'):>12}{(f'{100 * slc:+.0f}%' if slc is not None else '-'):>11}"
              f"{(f'{100 * ov:.1f}%' if ov is not None else '-'):>12}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.family == "johnson":
        from .training.johnson import JohnsonTrainConfig, train_johnson

        cfg = JohnsonTrainConfig(style=args.style, data=args.data, out=args.out, name=args.name, vgg=args.vgg,
                                 steps=args.steps, batch=args.batch, size=args.size_, style_size=args.style_size,
                                 width=args.width, n_res=args.n_res, lr=args.lr, content_weight=args.content_weight,
                                 style_weight=args.style_weight, tv_weight=args.tv_weight,
                                 checkpoint_every=args.checkpoint_every, preview_every=args.preview_every,
                                 preview=args.preview, seed=args.seed, device=args.device, amp=args.amp,
                                 report=args.report)
        for p, what in ((args.style, "style image"), (args.data, "data folder")):
            if not Path(p).exists():
                raise CLIError(f"{what} not found: {p}")
        path = train_johnson(cfg, progress=not args.quiet)
        print(f"wrote {path}")
        return 0
    if args.family == "adain":
        from .training.adain import AdaINTrainConfig, train_adain

        for p, what in ((args.content, "content folder"), (args.styles, "style folder")):
            if not Path(p).is_dir():
                raise CLIError(f"{what} not found: {p}")
        cfg_a = AdaINTrainConfig(content=args.content, styles=args.styles, out=args.out, name=args.name, vgg=args.vgg,
                                 exclude=tuple(args.exclude), steps=args.steps, batch=args.batch, size=args.size_,
                                 base=args.base, lr=args.lr, style_weight=args.style_weight,
                                 content_weight=args.content_weight, identity_weight=args.identity_weight, checkpoint_every=args.checkpoint_every,
                                 preview_every=args.preview_every, preview_content=args.preview_content,
                                 preview_style=args.preview_style, seed=args.seed, device=args.device,
                                 amp=args.amp, report=args.report)
        path = train_adain(cfg_a, progress=not args.quiet)
        print(f"wrote {path}")
        return 0
    if args.family == "msgnet":
        from .training.msgnet import MSGNetTrainConfig, train_msgnet

        for p, what in ((args.styles, "style folder"), (args.data, "data folder")):
            if not Path(p).is_dir():
                raise CLIError(f"{what} not found: {p}")
        cfg_m = MSGNetTrainConfig(styles=args.styles, data=args.data, out=args.out, name=args.name, vgg=args.vgg,
                                  steps=args.steps, batch=args.batch, size=args.size_,
                                  style_sizes=tuple(args.style_sizes), bank_sizes=tuple(args.bank_sizes),
                                  ngf=args.ngf, n_blocks=args.n_blocks, stem=args.stem, down1=args.down1,
                                  up1=args.up1, up2=args.up2, lr=args.lr, content_weight=args.content_weight,
                                  style_weight=args.style_weight, checkpoint_every=args.checkpoint_every,
                                  preview_every=args.preview_every, preview=args.preview, seed=args.seed,
                                  device=args.device, amp=args.amp, report=args.report)
        path = train_msgnet(cfg_m, progress=not args.quiet)
        print(f"wrote {path}")
        return 0
    if args.family == "metanet":
        from .training.metanet import MetaNetTrainConfig, train_metanet

        for p, what in ((args.content, "content folder"), (args.styles, "style folder")):
            if not Path(p).is_dir():
                raise CLIError(f"{what} not found: {p}")
        cfg_mn = MetaNetTrainConfig(content=args.content, styles=args.styles, out=args.out, name=args.name,
                                    vgg=args.vgg, exclude=tuple(args.exclude), steps=args.steps, batch=args.batch,
                                    size=args.size_, style_size=args.style_size, style_every=args.style_every,
                                    style_crop=args.style_crop, width=args.width, n_res=args.n_res,
                                    hidden=args.hidden, rank=args.rank, lr=args.lr,
                                    content_weight=args.content_weight, style_weight=args.style_weight,
                                    tv_weight=args.tv_weight, head_decay=args.head_decay, flat_std=args.flat_std,
                                    init_from=args.init_from, init_style_gain=args.init_style_gain,
                                    style_norms=args.style_norms, style_hue=args.style_hue,
                                    weight_norm_bound=args.weight_norm_bound,
                                    checkpoint_every=args.checkpoint_every, preview_every=args.preview_every,
                                    preview=args.preview, seed=args.seed, device=args.device, amp=args.amp,
                                    report=args.report)
        path = train_metanet(cfg_mn, progress=not args.quiet)
        print(f"wrote {path}")
        return 0
    raise CLIError(f"unknown family {args.family!r}")


def cmd_weights(args: argparse.Namespace) -> int:
    from .weights import cache_dir, import_weights, list_weights

    if args.action == "list":
        for w in list_weights():
            where = f"{w.path}  [{w.origin}]" if w.path else "not found"
            print(f"{w.key:<24} {where}")
        print(f"(search order: explicit path, $RTSTYLE_WEIGHTS, {cache_dir()}, torchvision cache for vgg16)")
        return 0
    if not args.path:
        raise CLIError("`rtstyle weights import` needs a PATH (a weights folder or one file)")
    for p in import_weights(args.path):
        print(f"imported {p}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench
    from .stylizer import resolve_device

    try:
        device = str(resolve_device(args.device))
    except ValueError as e:
        raise CLIError(str(e)) from None
    rep = run_bench(model=args.model or DEFAULT_MODEL, backends=args.backends.split(","), size=args.size or (640, 480),
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
        from .backends.cache import EngineCache

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
        from .backends.cache import EngineCache

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
    from .backends import BackendOptions, create_backend
    from .stylizer import Stylizer

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
    model = args.model or DEFAULT_MODEL
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


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="rtstyle", description="Real-time neural style transfer for webcams, video files and streams.")
    p.add_argument("--version", action="version", version=f"rtstyle {__version__}")
    p.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("stylize", help="stylise an image, a folder of images or a video file")
    s.add_argument("input", help="image, folder of images, or video file")
    s.add_argument("-o", "--output", required=True, help="output image, folder, or video (audio is copied)")
    _add_model_opts(s)
    s.add_argument("--swap", default=None, help="style schedule, e.g. 5s=johnson.wave_lite,12s=johnson.starry_night_lite")
    s.add_argument("--crf", type=int, default=None, help="video quality (x264 CRF, lower = better; default 18)")
    s.add_argument("--encoder-preset", default=None,
                   help="x264 preset (default veryfast; superfast/ultrafast leave more CPU to inference, bigger files)")
    s.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    s.add_argument("-y", "--overwrite", action="store_true",
                   help="replace an existing output file (folder jobs: redo images whose output exists; "
                        "without it they are skipped)")
    r = s.add_argument_group("batch on Ray (pip install 'rtstyle[ray]')")
    r.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray: 'local' (default: an embedded cluster on this machine's CPUs), 'auto', HOST:PORT "
                        "or ray://HOST:PORT. INPUT may then be a video, a folder, a glob or a .txt list of videos; "
                        "one video is cut into chunks, several run one task per file; complete outputs are skipped")
    r.add_argument("--chunk-seconds", type=float, default=10.0,
                   help="--ray, one video: chunk length in seconds, cut at a scene cut (--temporal) or keyframe near "
                        "it, else at the exact frame (0: one task; default 10)")
    r.add_argument("--chunk-warmup", type=int, default=None, metavar="FRAMES",
                   help="--ray: frames before each chunk stylised but not written, so --temporal/--crossfade state "
                        "carries over (default: the crossfade with --swap, plus 1 s with --temporal)")
    r.add_argument("--retries", type=int, default=2, help="--ray: extra attempts of a task whose worker died (default 2)")
    r.add_argument("--worker-cpus", type=float, default=1.0, help="--ray: CPUs (threads) per task (default 1)")
    r.add_argument("-v", "--verbose", action="store_true", help="--ray: a line per finished chunk and file")
    s.set_defaults(func=cmd_stylize)

    s = sub.add_parser("live", help="live stylisation from a camera, stream or the synthetic source")
    s.add_argument("--source", default="cam:0", help="cam:N, /dev/videoN, URL, synthetic[:WxH@FPS] or a file (default cam:0)")
    s.add_argument("--sink", action="append", help="window, vcam[:DEVICE], udp://..., rtmp://..., or a file; repeatable (default window)")
    _add_model_opts(s, multi=True)
    s.add_argument("--camera-size", type=_size, default=None, help="ask the camera for WxH (e.g. 1280x720)")
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

    s = sub.add_parser("models", help="list the registered models")
    s.add_argument("pattern", nargs="?", default="*")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("demo", help="stylise the bundled sample clip with the embedded default model")
    s.add_argument("-o", "--output", default="rtstyle-demo", help="output folder (default ./rtstyle-demo)")
    s.add_argument("--model", "-m", default=None)
    s.add_argument("--size", type=_size, default=None)
    s.add_argument("--backend", "-b", default="auto")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("grid", help="before/after grid of images x models")
    s.add_argument("images", nargs="+")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output file")
    s.add_argument("--model", "-m", action="append", default=None, help="repeat for one row per model")
    s.add_argument("--style", action="append", default=None,
                   help="style image, for models that take one; repeat for one row per style image")
    s.add_argument("--all-styles", action="store_true",
                   help="one row per style of a multi-style model's bank (msgnet.*, onnx.multistyle26)")
    s.add_argument("--style-images", metavar="DIR",
                   help="with --all-styles: folder with the bank's paintings (<style name>.jpg), shown in a first "
                        "column (style-image rows show theirs anyway)")
    s.add_argument("--backend", "-b", default="eager")
    s.add_argument("--device", default="cpu")
    s.add_argument("--max-side", type=int, default=640, help="resize inputs to this longer side before stylising")
    s.add_argument("--cell-width", type=int, default=320)
    s.set_defaults(func=cmd_grid)

    s = sub.add_parser("gatys", help="slow offline optimisation-based stylisation (Gatys et al. 2016), a quality reference")
    s.add_argument("content")
    s.add_argument("style")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output file")
    s.add_argument("--steps", type=int, default=300, help="L-BFGS iterations (one VGG16 forward/backward each)")
    s.add_argument("--size", dest="size_", type=int, default=512, help="longer side of the output")
    s.add_argument("--style-weight", type=float, default=None, help="relative Gram error weight (default 1)")
    s.add_argument("--content-weight", type=float, default=None, help="relative content error weight (default 1)")
    s.add_argument("--tv-weight", type=float, default=None, help="total-variation weight (default 1)")
    s.add_argument("--init", choices=["content", "noise"], default="content")
    s.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--vgg", default=None, help="VGG16 weights (default: $RTSTYLE_WEIGHTS, the user cache, torchvision's cache)")
    s.set_defaults(func=cmd_gatys)

    s = sub.add_parser("eval", help="evaluations (temporal: warping error of a video, per-frame vs stabilised)")
    esub = s.add_subparsers(dest="what", required=True, metavar="WHAT")
    e = esub.add_parser("temporal", help="warping error (Lai et al. 2018) and style loss, with and without --temporal")
    e.add_argument("--video", required=True, help="video file or folder of frames")
    e.add_argument("--model", "-m", default=None)
    e.add_argument("--style", default=None, help="style image, for models that take one")
    e.add_argument("--strength", type=float, default=0.8, help="stabiliser strength to compare (default 0.8)")
    e.add_argument("--flow", default="dis", choices=["dis", "farneback"], help="flow of the metric (default dis)")
    e.add_argument("--max-frames", type=int, default=30)
    e.add_argument("--max-size", default="640x480", help="downscale frames to fit WxH (default 640x480)")
    e.add_argument("--loss-style", default=None, help="style image for the style loss (default: --style)")
    e.add_argument("--loss-frames", type=int, default=6)
    e.add_argument("--report", type=Path, default=None)
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("train", help="train a model")
    tsub = s.add_subparsers(dest="family", required=True, metavar="FAMILY")
    t = tsub.add_parser("johnson", help="a Johnson transform net for one style image")
    t.add_argument("--style", required=True)
    t.add_argument("--data", required=True, help="folder of content photos")
    t.add_argument("--out", required=True, help="run folder (checkpoint, previews, final .safetensors); rerun to resume")
    t.add_argument("--name", default=None, help="registry name, default johnson.<style stem>")
    t.add_argument("--vgg", default=None, help="VGG16 weights (default: $RTSTYLE_WEIGHTS, the user cache, torchvision's cache)")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--size", dest="size_", type=int, default=256, help="training crop size")
    t.add_argument("--style-size", type=int, default=384, help="longer side of the style image")
    t.add_argument("--width", type=int, default=32, help="base channels (32 = paper; 8 = lite real-time)")
    t.add_argument("--n-res", type=int, default=5)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--content-weight", type=float, default=1e5)
    t.add_argument("--style-weight", type=float, default=1e10)
    t.add_argument("--tv-weight", type=float, default=0.0)
    t.add_argument("--checkpoint-every", type=int, default=100)
    t.add_argument("--preview-every", type=int, default=200)
    t.add_argument("--preview", default=None, help="image to preview on")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--amp", choices=["auto", "fp32", "bf16", "fp16", "off"], default="auto",
                   help="mixed precision (default auto: bf16 + channels-last on a CPU with AMX, fp32 on other CPUs, "
                   "bf16/fp16 on CUDA; off = fp32)")
    t.add_argument("--report", default=None, metavar="PATH",
                   help="write a JSON run report (steps, wall_s, step_s_median after warm-up, amp)")
    t = tsub.add_parser("adain", help="the AdaIN decoder for the VGG16 relu4_1 encoder (any style image at run time)")
    t.add_argument("--content", required=True, help="folder of content photos")
    t.add_argument("--styles", required=True, help="folder of style images (searched recursively)")
    t.add_argument("--out", required=True, help="run folder (checkpoint, previews, final .safetensors); rerun to resume")
    t.add_argument("--name", default="adain.vgg16", help="registry name")
    t.add_argument("--vgg", default=None, help="VGG16 encoder weights (default: $RTSTYLE_WEIGHTS, the user cache, torchvision's cache)")
    t.add_argument("--exclude", action="append", default=[], metavar="STEM",
                   help="style image (file name or stem) to hold out for evaluation; repeat")
    t.add_argument("--steps", type=int, default=8000)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--size", dest="size_", type=int, default=128, help="training crop size (images decoded at 2x)")
    t.add_argument("--base", type=int, default=32, help="decoder base width (64 = the paper's decoder)")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--content-weight", type=float, default=1.0)
    t.add_argument("--style-weight", type=float, default=10.0)
    t.add_argument("--identity-weight", type=float, default=0.0,
                   help="pixel identity loss |dec(enc(c)) - c|^2 (SANet-style); speeds up learning to invert the encoder")
    t.add_argument("--checkpoint-every", type=int, default=200)
    t.add_argument("--preview-every", type=int, default=500)
    t.add_argument("--preview-content", default=None)
    t.add_argument("--preview-style", default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--amp", choices=["auto", "fp32", "bf16", "fp16", "off"], default="auto",
                   help="mixed precision (default auto: bf16 + channels-last on a CPU with AMX, fp32 on other CPUs, "
                   "bf16/fp16 on CUDA; off = fp32)")
    t.add_argument("--report", default=None, metavar="PATH",
                   help="write a JSON run report (steps, wall_s, step_s_median after warm-up, amp)")

    def sizes(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v.strip()]

    t = tsub.add_parser("msgnet", help="an MSG-Net (CoMatch) multi-style net on a folder of style images")
    t.add_argument("--styles", required=True, help="folder of style images (file stems name the styles)")
    t.add_argument("--data", required=True, help="folder of content photos")
    t.add_argument("--out", required=True, help="run folder (checkpoint, previews, final .safetensors); rerun to resume")
    t.add_argument("--name", default="msgnet.lite", help="registry name")
    t.add_argument("--vgg", default=None, help="VGG16 weights (default: $RTSTYLE_WEIGHTS, the user cache, torchvision's cache)")
    t.add_argument("--steps", type=int, default=8000)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--size", dest="size_", type=int, default=128, help="content crop size")
    t.add_argument("--style-sizes", type=sizes, default=[128, 256, 384],
                   help="style image sizes drawn at random each step (brush-size range), e.g. 128,256,384")
    t.add_argument("--bank-sizes", type=sizes, default=[128, 192, 256, 320, 384],
                   help="sizes at which each style's Gram is stored in the shipped bank")
    t.add_argument("--ngf", type=int, default=32, help="bottleneck width (128 = the paper; CoMatch has 4x channels)")
    t.add_argument("--n-blocks", type=int, default=5)
    t.add_argument("--stem", type=int, default=32)
    t.add_argument("--down1", type=int, default=16)
    t.add_argument("--up1", type=int, default=16)
    t.add_argument("--up2", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--content-weight", type=float, default=1e5)
    t.add_argument("--style-weight", type=float, default=1e10)
    t.add_argument("--checkpoint-every", type=int, default=200)
    t.add_argument("--preview-every", type=int, default=500)
    t.add_argument("--preview", default=None, help="image to preview on")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--amp", choices=["auto", "fp32", "bf16", "fp16", "off"], default="auto",
                   help="mixed precision (default auto: bf16 + channels-last on a CPU with AMX, fp32 on other CPUs, "
                   "bf16/fp16 on CUDA; off = fp32)")
    t.add_argument("--report", default=None, metavar="PATH",
                   help="write a JSON run report (steps, wall_s, step_s_median after warm-up, amp)")
    t = tsub.add_parser("metanet", help="a MetaNet (Shen et al. 2018): any style image -> a Johnson net in one pass")
    t.add_argument("--content", required=True, help="folder of content photos")
    t.add_argument("--styles", required=True, help="folder of style images (searched recursively)")
    t.add_argument("--out", required=True, help="run folder (checkpoint, previews, report, final .safetensors); rerun to resume")
    t.add_argument("--exclude", action="append", default=[], metavar="STEM",
                   help="style image (file name or stem) to hold out for evaluation (shown in previews); repeat")
    t.add_argument("--name", default="metanet.lite", help="registry name")
    t.add_argument("--vgg", default=None, help="VGG16 weights (default: $RTSTYLE_WEIGHTS, the user cache, torchvision's cache)")
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--size", dest="size_", type=int, default=256, help="content crop size")
    t.add_argument("--style-size", type=int, default=192, help="longer side of the style image (also at run time; 192 keeps the style change fast)")
    t.add_argument("--style-every", type=int, default=20, help="steps between style changes (the paper: 20)")
    t.add_argument("--style-crop", type=float, default=0.6,
                   help="random style crops keep at least this fraction of each side (1 = whole image)")
    t.add_argument("--width", type=int, default=8, help="base width of the generated Johnson net (8 = lite, real time on CPU)")
    t.add_argument("--n-res", type=int, default=5, help="residual blocks of the generated net")
    t.add_argument("--hidden", type=int, default=64, help="meta-network features per generated layer (128 = the paper)")
    t.add_argument("--rank", type=int, default=0, help="low-rank heads of this rank (0 = full heads; e.g. 16 for --width 16)")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--content-weight", type=float, default=1e5)
    t.add_argument("--style-weight", type=float, default=1e10)
    t.add_argument("--tv-weight", type=float, default=0.0)
    t.add_argument("--head-decay", type=float, default=0.1,
                   help="decoupled weight decay on the generator heads (holds the raw generated-weight norm down)")
    t.add_argument("--init-from", default=None, metavar="MODEL",
                   help="warm start (fresh runs only): every generated net starts as this trained Johnson net of the "
                        "same --width/--n-res (registry name, e.g. johnson.wave_lite, or a checkpoint file), or the "
                        "run starts as this trained meta network (e.g. metanet.lite, or metanet:FILE) of the same "
                        "--width/--n-res/--hidden/--rank/--style-size")
    t.add_argument("--init-style-gain", type=float, default=0.1,
                   help="with --init-from: initial scale of the style-dependent head weights (default init: 0.5)")
    t.add_argument("--style-norms", action="store_true",
                   help="also generate every instance norm's scale and shift and a colour transform of the output per "
                        "style (+1.5 MB at the default size; starts at zero, so --init-from a meta network without "
                        "them starts where it left off)")
    t.add_argument("--style-hue", type=float, default=0.0, metavar="P",
                   help="rotate the hue of a style crop by a random angle with probability P (more colour schemes to "
                        "learn from than the style folder holds)")
    t.add_argument("--flat-std", type=float, default=0.02,
                   help="content crops with a pixel std below this (0..1 scale) are skipped as flat")
    t.add_argument("--weight-norm-bound", type=float, default=10.0,
                   help="warn when the generated weights' raw norm (x its initial scale) exceeds this")
    t.add_argument("--checkpoint-every", type=int, default=200)
    t.add_argument("--preview-every", type=int, default=500)
    t.add_argument("--preview", default=None, help="image to preview on")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--amp", choices=["auto", "fp32", "bf16", "fp16", "off"], default="auto",
                   help="mixed precision (default auto: bf16 + channels-last on a CPU with AMX, fp32 on other CPUs, "
                   "bf16/fp16 on CUDA; off = fp32)")
    t.add_argument("--report", default=None, metavar="PATH",
                   help="write a JSON run report (steps, wall_s, step_s_median after warm-up, amp)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("weights", help="third-party weights: where they are found, import into the cache")
    s.add_argument("action", choices=["list", "import"])
    s.add_argument("path", nargs="?")
    s.set_defaults(func=cmd_weights)

    s = sub.add_parser("bench", help="compare a naive loop, the pipeline and backends on the same frames")
    s.add_argument("--model", "-m", default=None)
    s.add_argument("--backends", default="eager", help="comma-separated backends to compare (default eager)")
    s.add_argument("--size", type=_size, default=None, help="WxH of the benchmark frames (default 640x480)")
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
    s.add_argument("--size", type=_size, required=True, help="WxH the engine is built (and tuned) for")
    s.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 | int8, as the backend supports (default fp32)")
    s.add_argument("--min-size", type=_size, default=None, help="WxH lower bound of the dynamic size range")
    s.add_argument("--max-size", type=_size, default=None, help="WxH upper bound of the dynamic size range")
    s.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    s.add_argument("--style", default=None, help="style image, for models that take one")
    s.add_argument("--cache-dir", default=None, help="engine cache folder (default $RTSTYLE_ENGINES or ./engines)")
    s.set_defaults(func=cmd_export)
    return p


def _user_errors() -> tuple[type[BaseException], ...]:
    from .backends.base import BackendUnavailableError
    from .distributed.errors import BatchError, RayUnavailableError
    from .io.base import IOErrorBase
    from .models._registry import UnknownModelError
    from .weights import WeightNotFoundError

    return (CLIError, FileNotFoundError, NotADirectoryError, PermissionError, UnknownModelError, IOErrorBase,
            BackendUnavailableError, WeightNotFoundError, ValueError, BatchError, RayUnavailableError)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rtstyle`` command. Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rtstyle: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as e:
        if args.debug:
            raise
        msg = str(e) or type(e).__name__
        print(f"rtstyle: error: {msg.splitlines()[0]}", file=sys.stderr)
        return 1
    except RuntimeError as e:  # e.g. errors raised from libraries inside stages
        if args.debug:
            raise
        print(f"rtstyle: error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

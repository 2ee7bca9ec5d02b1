"""The jobs behind the ``rtstyle`` commands, as library functions.

:class:`StylizerSettings` is plain data (a model name, style controls, size, backend ...) and
:func:`build_stylizer` turns it into a :class:`~rtstyle.stylizer.Stylizer` with the model's controls
applied; Ray workers rebuild the same Stylizer from it (:func:`ray_stylizer`). :func:`stylize_path`
stylizes one video, one image or a batch of images (folder or glob) with the data-safety rules of the
command: never over an input, never over an existing output unless ``overwrite``, a batch does every
good image, skips those already done and names the unreadable ones.

Heavy modules (torch, PyAV, OpenCV) are imported inside the functions, so importing this module is
cheap (``rtstyle --help`` imports it).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .stylizer import Stylizer

__all__ = ["DEFAULT_MODEL", "Batch", "JobError", "StylizeResult", "StylizerSettings", "build_stylizer",
           "check_temporal", "is_file_output", "live_backend_options", "model_with_controls", "open_sinks",
           "plan_batch", "ray_stylizer",
           "refuse_output", "style_encoder_choice", "stylize_path"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "johnson.starry_night_lite"

class JobError(ValueError):
    """Settings or paths that cannot work; the message is one line meant for the user."""


@dataclass(frozen=True)
class StylizerSettings:
    """Everything :func:`build_stylizer` needs, as plain data (it is pickled for Ray workers).

    The names follow the command's options (``--style-weights`` is ``style_weights``), and so do the
    error messages.
    """

    model: str = DEFAULT_MODEL
    style: tuple[str, ...] = ()  # style images; adain.*: several are interpolated
    style_weights: str | None = None  # "0.3,0.7"
    alpha: float | None = None
    brush: float | None = None
    color: str | None = None  # "luminance" | "histogram"
    color_reference: str | None = None
    mask: str | None = None
    style_vector: str | None = None  # "3", "3:0.5,7:0.5" or all weights
    size: int | tuple[int, int] | None = None
    scale: float | None = None
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    crossfade: int = 0
    temporal: float | None = None
    temporal_preset: str | None = None  # "file" | "live"
    style_encoder: str = "auto"  # "auto" | "fp32" | "bf16" | "int8"


def check_temporal(strength: float | None) -> None:
    """``--temporal`` must be in [0, 1)."""
    if strength is not None and not 0.0 <= strength < 1.0:
        raise JobError(f"--temporal must be in [0, 1), got {strength}")


def build_stylizer(settings: StylizerSettings, *, live: bool = False, options: Any = None,
                   frame_size: tuple[int, int] | None = None) -> Stylizer:
    """The Stylizer ``settings`` describe, with the model's controls and style vector applied.

    Args:
        settings: model and controls.
        live: for a live source: the model's live size when no size is given, the live stabilizer
            preset, the int8 style encoder where installed, and ``--precision auto``'s live floor
            (:data:`~rtstyle.backends.precision.LIVE_FLOOR_DB`, 35 dB instead of 40: the frame rate
            matters more there), unless ``options`` sets one.
        options: :class:`~rtstyle.backends.BackendOptions` passed to the Stylizer.
        frame_size: the source's ``(width, height)`` when it is known before the first frame (a file, an
            opened camera): the first style is then prepared at the stream's shape (and a model that
            encodes its style image at the content's scale, ``linear.r31``, encodes it at that scale)
            rather than re-prepared when the first frame arrives. ``None`` or a zero side: unknown.

    Raises:
        JobError: controls the model does not take, or files that are not there.
    """
    from .stylizer import Stylizer

    size = settings.size
    if size is None and settings.scale is None and live:
        from .models import get_spec

        try:
            size = get_spec(settings.model).default_size
        except KeyError:
            size = None
    temporal = None
    if settings.temporal is not None:
        check_temporal(settings.temporal)
        from .temporal import make_temporal

        temporal = make_temporal(settings.temporal, settings.temporal_preset or ("live" if live else "file"))
    target, style_image = model_with_controls(settings)
    if live:
        options = live_backend_options(options)
    stylizer = Stylizer(target, backend=settings.backend, device=settings.device, precision=settings.precision,
                        size=size, scale=settings.scale, style_image=style_image, crossfade=settings.crossfade,
                        temporal=temporal, style_encoder=style_encoder_choice(settings.style_encoder,
                                                                              settings.device, live, settings.model),
                        options=options, frame_size=frame_size if frame_size and min(frame_size) > 0 else None)
    _apply_style_vector(stylizer, settings.style_vector)
    return stylizer


def live_backend_options(options: Any = None) -> Any:
    """``options`` (a :class:`~rtstyle.backends.BackendOptions`, or the defaults) with ``--precision
    auto``'s live PSNR floor, unless they set one: what ``rtstyle live`` and the live benches run with."""
    import dataclasses

    from .backends import BackendOptions
    from .backends.precision import FLOOR_OPTION, LIVE_FLOOR_DB

    base = options or BackendOptions()
    if FLOOR_OPTION in base.extra:
        return base
    return dataclasses.replace(base, extra={**base.extra, FLOOR_OPTION: LIVE_FLOOR_DB})


def ray_stylizer(options: Any = None, **fields: Any) -> Stylizer:
    """A Ray worker's Stylizer, built from :class:`StylizerSettings` fields exactly as ``rtstyle stylize``
    builds it (the ``build`` of a :class:`~rtstyle.distributed.StylizerRecipe`)."""
    return build_stylizer(StylizerSettings(**fields), options=options)


def style_encoder_choice(choice: str | None, device: str, live: bool, model: str) -> str | None:
    """``--style-encoder``: ``auto`` is int8 for live use (style changes while streaming) of a MetaNet
    model on the CPU when OpenVINO and NNCF are installed (the family whose int8 encoder is measured:
    ``docs/metanet_encoder.json``); else the model's own ``auto`` (None: bf16 on AMX / AVX512_BF16 hosts, else fp32)."""
    choice = choice or "auto"
    if choice != "auto":
        return choice
    from .models._style_encoder import int8_available
    from .stylizer import resolve_device

    device = str(device)
    on_cpu = device == "cpu" or (device == "auto" and resolve_device("auto").type == "cpu")
    return "int8" if live and on_cpu and _family(model) == "metanet" and int8_available() else None


def model_with_controls(settings: StylizerSettings) -> tuple[Any, str | None]:
    """The model (a name, or a module built with alpha/color/mask/several styles) and its style image."""
    styles = list(settings.style)
    family = _family(settings.model)
    if family == "msgnet":
        return _msgnet_with_controls(settings, styles)
    if settings.brush is not None:
        raise JobError("--brush applies to msgnet.* models")
    for p in styles:
        if not Path(p).is_file():
            raise JobError(f"style image not found: {p}")
    ctrl = {k: getattr(settings, k) for k in ("alpha", "color", "mask")}
    ctrl = {k: v for k, v in ctrl.items() if v is not None}
    if settings.color_reference:
        ctrl["color_reference"] = settings.color_reference
    weights = settings.style_weights
    if not ctrl and len(styles) <= 1 and weights is None:
        return settings.model, (styles[0] if styles else None)
    from .models import create_model

    if family not in ("adain", "linear", "wct"):
        raise JobError("--alpha/--colour/--mask/--style-weights and several --style apply to adain.*, linear.* and wct.* models")
    if family == "wct" and set(ctrl) - {"alpha"}:
        raise JobError("wct.* takes --alpha only")
    net = create_model(settings.model, **ctrl)
    if len(styles) > 1 or weights is not None:
        try:
            w = [float(x) for x in weights.split(",")] if weights else None
        except ValueError:
            raise JobError(f"--style-weights must be comma-separated numbers, got {weights!r}") from None
        if family not in ("adain", "linear"):
            raise JobError("several --style images are interpolated by adain.* and linear.* models only")
        return net.with_styles(styles, w), None
    return net, (styles[0] if styles else None)


def _family(model: str) -> str:
    from .models import get_spec

    for prefix in ("msgnet", "metanet"):
        if str(model).startswith(prefix + ":"):
            return prefix
    try:
        return get_spec(model).family
    except KeyError:
        return ""


def _msgnet_with_controls(settings: StylizerSettings, styles: list[str]) -> tuple[Any, str | None]:
    """MSG-Net: the style is a style image file or a bank style (name, index or blend)."""
    from .image import IMAGE_EXTENSIONS
    from .models import create_model

    if len(styles) > 1:
        raise JobError("msgnet.*: give one --style (an image, a bank style name/index, or a blend like wave:0.5,udnie:0.5)")
    if settings.mask or settings.style_weights:
        raise JobError("msgnet.* takes --style, --brush, --alpha and --colour luminance")
    if settings.color not in (None, "luminance"):
        raise JobError("msgnet.* supports --colour luminance")
    ctrl = {k: getattr(settings, k) for k in ("brush", "alpha", "color")}
    ctrl = {k: v for k, v in ctrl.items() if v is not None}
    style = styles[0] if styles else None
    image = style if style is not None and Path(style).is_file() else None
    bank_style = None
    if style is not None and image is None:
        if style.lower().endswith(tuple(IMAGE_EXTENSIONS)):
            raise JobError(f"style image not found: {style}")
        bank_style = style
    try:
        net = create_model(settings.model, **ctrl)
        if bank_style is not None:
            net = net.with_controls(weights=net.parse_style_vector(bank_style))
    except ValueError as e:
        raise JobError(str(e)) from None
    return net, image


def _apply_style_vector(stylizer: Any, text: str | None) -> None:
    """Activate a style vector (parsed by the model: it knows its vector length and style names)."""
    if text is None:
        return
    from .models._abilities import ParsesStyleVector

    model = stylizer.state.model
    if not isinstance(model, ParsesStyleVector):
        raise JobError(f"model {stylizer.spec.name} takes no style vector (--style-vector)")
    stylizer.set_style(style_vector=model.parse_style_vector(text), crossfade=0, wait=True)


# --------------------------------------------------------------------------- outputs
def is_file_output(spec: str) -> bool:
    """A video file, an image file or a folder of images (not a window, device or stream)."""
    from .image import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    suffix = Path(spec).suffix.lower()
    return (suffix in VIDEO_EXTENSIONS or suffix in IMAGE_EXTENSIONS or spec.endswith(("/", "\\"))
            or Path(spec).is_dir())


def open_sinks(specs: Sequence[str], src_info: Any, encode: dict[str, Any] | None = None,
               overwrite: bool = True) -> list[Any]:
    """The sinks named by ``specs``, given the source's frame rate, time base and audio.

    Args:
        specs: sink strings (see :func:`rtstyle.io.open_sink`).
        src_info: the source's :class:`~rtstyle.io.SourceInfo`.
        encode: video-file encoder options (``crf``, ``preset``); None values are left out.
        overwrite: whether file outputs may replace an existing file.
    """
    from .image import VIDEO_EXTENSIONS
    from .io import open_sink

    sinks = []
    for spec in specs:
        kw: dict[str, Any] = {}
        if is_file_output(spec):
            kw["overwrite"] = overwrite
        suffix = Path(spec).suffix.lower()
        if suffix in VIDEO_EXTENSIONS or spec.startswith(("udp://", "rtmp://", "vcam")):
            kw["fps"] = src_info.fps or 30.0
        if suffix in VIDEO_EXTENSIONS:
            kw.update({k: v for k, v in (encode or {}).items() if v is not None})
            kw["time_base"] = src_info.extra.get("time_base")
            if src_info.has_audio and src_info.path and not src_info.live:
                kw["audio_from"] = src_info.path
        sinks.append(open_sink(spec, **kw))
    return sinks


def refuse_output(out: str | Path, inputs: Sequence[str | Path], overwrite: bool) -> None:
    """One file output: never one of the inputs; an existing file only with ``overwrite``."""
    from .io.safety import OutputExistsError, SameFileError, check_output

    try:
        check_output(out, overwrite=overwrite, inputs=inputs)
    except SameFileError:
        raise JobError(f"refusing to write {out}: it is the input file (choose another output)") from None
    except OutputExistsError:
        raise JobError(f"{out} exists; pass -y/--overwrite to replace it") from None


@dataclass
class Batch:
    """An image job planned before any model work: the files to do, those already done (skipped) and,
    after the run, the unreadable ones as ``(file, reason)``."""

    todo: list[Path]
    skipped: list[Path]
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.todo) + len(self.skipped)


def plan_batch(files: list[Path], out: str, overwrite: bool) -> Batch:
    """Which images to stylize: the targets are checked against every input first (an output folder
    that is the input folder would replace the photos), then existing ones are skipped unless
    ``overwrite``."""
    from .image import IMAGE_EXTENSIONS
    from .io.safety import same_file

    out_p = Path(out)
    if out_p.suffix.lower() in IMAGE_EXTENSIONS and not out_p.is_dir():
        if len(files) > 1:
            raise JobError(f"{len(files)} input images need an output folder (e.g. {out_p.parent / out_p.stem}/), "
                           f"not one image file")
        refuse_output(out, files, overwrite)
        return Batch(files, [])
    if out_p.exists() and not out_p.is_dir():
        raise JobError(f"cannot write into {out}: it is a file, not a folder")
    todo: list[Path] = []
    skipped: list[Path] = []
    seen: dict[str, Path] = {}
    for f in files:
        target = out_p / f.name
        if same_file(f, target):
            raise JobError(f"refusing to write into {out}: the results would replace the input images "
                           f"(e.g. {f}); choose another output folder")
        if f.name in seen:
            raise JobError(f"{seen[f.name]} and {f} would both be written as {target}")
        seen[f.name] = f
        if target.exists() and not overwrite:
            skipped.append(target)
        else:
            todo.append(f)
    return Batch(todo, skipped)


@dataclass
class StylizeResult:
    """What :func:`stylize_path` did.

    Attributes:
        output: the output path as given.
        report: the run report (:meth:`Pipeline.report`), or None when nothing ran (every output of a
            batch existed, or none of its images was readable).
        batch: the image batch, or None for a video.
    """

    output: str
    report: dict[str, Any] | None
    batch: Batch | None = None

    @property
    def frames(self) -> int:
        return int(self.report["frames_out"]) if self.report else 0


def _is_glob(text: str) -> bool:
    import glob

    return glob.has_magic(text)


def _write_skip_report(path: Path, inp: Any, out: str, batch: Batch) -> None:
    """The report of a batch in which nothing ran (every output existed, or no input was readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"input": str(inp), "output": out, "frames_in": 0, "frames_out": 0,
                                "skipped_existing": len(batch.skipped), "skipped": [str(p) for p in batch.skipped],
                                "failed": [{"file": f, "reason": why} for f, why in batch.failed]}, indent=2) + "\n")


def _name_unreadable(batch: Batch) -> None:
    """Fill ``batch.failed`` with why each image to do cannot be read."""
    from .io import SourceError
    from .image import read_image

    for f in batch.todo:
        try:
            read_image(f)
        except SourceError as e:
            batch.failed.append((str(f), str(e).removeprefix(f"cannot decode {f}: ").removeprefix(f"cannot read {f}: ")))


def _warn_unapplied_swaps(pending: Sequence[Any], last: Any) -> None:
    """Swap entries the input never reached: said, not silently dropped."""
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


def stylize_path(input: str | Path, output: str | Path, settings: StylizerSettings | None = None, *,
                 swap: str | None = None, max_frames: int | None = None, crf: int | None = None,
                 encoder_preset: str | None = None, overwrite: bool = False, report: Path | None = None,
                 progress: bool = True, on_done: Callable[[Stylizer], None] | None = None) -> StylizeResult:
    """Stylize one video, one image, or a batch of images (a folder or a glob).

    Args:
        input: a video file, an image, a folder of images or a glob.
        output: a video file for a video; an image file or a folder for images.
        settings: model and controls (default: the default model on the fastest backend).
        swap: style schedule, e.g. ``5s=johnson.wave_lite,#120=johnson.udnie_lite``.
        max_frames: stop after this many frames.
        crf: x264 quality of a video output.
        encoder_preset: x264 preset of a video output.
        overwrite: replace existing outputs (a batch redoes images whose output exists).
        report: write the JSON run report here.
        progress: show a progress bar.
        on_done: called with the Stylizer after a run that finished, before it is closed (the
            start-up path records its engine here: :func:`rtstyle.fastpath.recorder`).

    Raises:
        JobError: an output that would replace an input or an existing file, or that does not fit the input.
        rtstyle.io.SourceError: an input that cannot be read (for a batch: when no image is readable
            and the input is one file).
    """
    from tqdm import tqdm

    from .image import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
    from .io import ImageSource, Source, SourceError, VideoFileSource, open_source
    from .io.images import list_images
    from .pipeline import Pipeline, parse_schedule

    settings = settings or StylizerSettings()
    schedule = parse_schedule(swap) if swap else []
    out = str(output)
    inp = Path(str(input))
    batch: Batch | None = None
    src: Source
    if inp.is_dir() or inp.suffix.lower() in IMAGE_EXTENSIONS or (not inp.exists() and _is_glob(str(inp))):
        if Path(out).suffix.lower() in VIDEO_EXTENSIONS:
            raise JobError("image input needs an image file or folder as output (e.g. out.jpg or out_dir/)")
        batch = plan_batch(list_images(str(inp)), out, overwrite)
        if not batch.todo:
            if report:
                _write_skip_report(report, input, out, batch)
            return StylizeResult(out, None, batch)
        several = len(batch.todo) > 1 or inp.is_dir()
        try:
            src = ImageSource(batch.todo, skip_unreadable=several)
        except SourceError:
            if not several:
                raise
            _name_unreadable(batch)  # not one image to do: say which and why
            if report:
                _write_skip_report(report, input, out, batch)
            return StylizeResult(out, None, batch)
    else:
        src = open_source(str(input))
    with src:
        info = src.info
        if info.live:
            raise JobError(f"{input} is a live source; use `rtstyle live --source {input}`")
        if batch is None:
            if Path(out).suffix.lower() not in VIDEO_EXTENSIONS:
                raise JobError(f"video input needs a video output ({', '.join(sorted(VIDEO_EXTENSIONS))}), got {out}")
            refuse_output(out, [str(input)], overwrite)
        sinks = open_sinks([out], info, {"crf": crf, "preset": encoder_preset}, overwrite=overwrite)  # before model work
        stylizer = build_stylizer(settings, frame_size=(info.width, info.height))
        bar = tqdm(total=info.frame_count, unit="frame", desc="stylize", disable=not progress, dynamic_ncols=True)
        last: list[Any] = [None]  # the last frame out, to place swap entries that never came due

        def on_frame(f: Any) -> None:
            last[0] = f
            bar.update(1)

        pipe = Pipeline(src, stylizer, sinks, schedule=schedule, max_frames=max_frames, on_frame=on_frame)
        try:
            pipe.run()
            if on_done is not None:
                on_done(stylizer)
        finally:
            bar.close()
            stylizer.close()
    _warn_unapplied_swaps(pipe.pending_swaps, last[0])
    extra: dict[str, Any] = {"input": str(input), "output": out}
    if batch is not None:
        batch.failed = [(str(f), why) for f, why in src.failed] if isinstance(src, ImageSource) else []
        extra.update(skipped_existing=len(batch.skipped), skipped=[str(p) for p in batch.skipped],
                     failed=[{"file": f, "reason": why} for f, why in batch.failed])
    if isinstance(src, VideoFileSource) and src.damage:
        extra["input_damage"] = src.damage
    rep = pipe.report(**extra)
    if report:
        pipe.write_report(report, **extra)
    return StylizeResult(out, rep, batch)

"""``rtstyle stylize``: an image, a folder or glob of images, or a video; on this machine or on Ray."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._common import CLIError, add_model_options, default_model, stylizer_settings, video_done_line

__all__ = ["add_parser", "cmd_stylize"]


def add_parser(sub: Any) -> None:
    s = sub.add_parser("stylize", help="stylise an image, a folder of images or a video file")
    s.add_argument("input", help="image, folder of images, or video file")
    s.add_argument("-o", "--output", required=True, help="output image, folder, or video (audio is copied)")
    add_model_options(s)
    s.add_argument("--swap", default=None, help="style schedule, e.g. 5s=johnson.wave_lite,12s=johnson.starry_night_lite")
    s.add_argument("--crf", type=int, default=None, help="video quality (x264 CRF, lower = better; default 18)")
    s.add_argument("--encoder-preset", default=None,
                   help="x264 preset (default veryfast; superfast/ultrafast leave more CPU to inference, bigger files)")
    s.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    s.add_argument("--stable", action="store_true",
                   help="any painting, stable video: the most stable arbitrary-style model with the gated file "
                        "stabiliser (needs --style IMAGE; --model/--backend/--temporal override its parts; "
                        "see docs/temporal.md)")
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


def cmd_stylize(args: argparse.Namespace) -> int:
    """Stylise one video, one image, or a batch of images (folder or glob) with
    :func:`rtstyle.jobs.stylize_path`; a batch names its unreadable images (exit 1)."""
    from .. import fastpath
    from ..jobs import stylize_path

    if args.stable:
        _apply_stable_preset(args)
    if args.ray is not None:
        return _stylize_on_ray(args)
    settings = stylizer_settings(args, args.model or default_model())
    # a plain photo with a cached engine: OpenVINO without torch (rtstyle/fastpath.py)
    plain = fastpath.plain_request(settings, str(args.input), str(args.output), swap=args.swap,
                                   max_frames=args.max_frames, report=args.report)
    if plain is not None:
        fast = fastpath.stylize_cached(plain, str(args.input), str(args.output), overwrite=args.overwrite)
        if fast is not None:
            _print_batch_summary(args.quiet, str(args.output), fast.batch, frames=1, rep={"wall_s": fast.wall_s})
            return 0
    res = stylize_path(args.input, args.output, settings, swap=args.swap,
                       max_frames=args.max_frames, crf=args.crf, encoder_preset=args.encoder_preset,
                       overwrite=args.overwrite, report=args.report, progress=not args.quiet,
                       on_done=fastpath.recorder(plain))
    if res.batch is not None:
        _print_batch_summary(args.quiet, res.output, res.batch, frames=res.frames, rep=res.report)
        return _report_unreadable(res.batch)
    assert res.report is not None
    if not args.quiet:
        print(video_done_line(res.output, res.report))
    return 0


def _apply_stable_preset(args: argparse.Namespace) -> None:
    """``--stable``: fill the model, backend and temporal filter the user left unset from the
    ``stable`` mode preset (:mod:`rtstyle.temporal.presets`)."""
    from ..temporal.presets import get_mode_preset

    if not args.style:
        raise CLIError("--stable needs --style IMAGE (the painting)")
    p = get_mode_preset("stable")
    if args.model is None:
        args.model = p.model
    if args.backend == "auto":
        args.backend = p.backend
    if args.temporal is None and p.temporal_preset is not None:
        args.temporal = p.temporal_strength
        args.temporal_preset = args.temporal_preset or p.temporal_preset


def _print_batch_summary(quiet: bool, out: str, batch: Any, frames: int, rep: dict[str, Any] | None) -> None:
    if quiet and not batch.skipped:
        return
    parts = [f"wrote {frames} image{'s' if frames != 1 else ''} to {out}"]
    if rep is not None:
        parts[0] += f" in {rep['wall_s']:.1f} s"
    if batch.skipped:
        parts.append(f"{len(batch.skipped)} skipped: output exists (-y redoes them)")
    if batch.failed:
        parts.append(f"{len(batch.failed)} unreadable")
    print("; ".join(parts), file=sys.stderr if quiet else sys.stdout)


def _report_unreadable(batch: Any) -> int:
    """The one summary line naming the unreadable images of a batch; the exit code."""
    if not batch.failed:
        return 0
    names = ", ".join(f"{Path(f).name} ({why})" for f, why in batch.failed)
    print(f"rtstyle: error: {len(batch.failed)} of {batch.total} images could not be read: {names}", file=sys.stderr)
    return 1


def _stylize_on_ray(args: argparse.Namespace) -> int:
    """``rtstyle stylize ... --ray``: the job on a Ray cluster (:mod:`rtstyle.distributed`)."""
    from dataclasses import asdict

    from tqdm import tqdm

    from ..distributed import BatchOptions, StylizerRecipe, run_batch
    from ..distributed.cluster import import_ray
    from ..jobs import check_temporal, model_with_controls, ray_stylizer

    import_ray()  # no Ray: one line naming the extra, before anything else
    check_temporal(args.temporal)
    settings = stylizer_settings(args, args.model or default_model())
    if ":" not in settings.model and not Path(settings.model).exists():
        from ..models import get_spec

        get_spec(settings.model)  # an unknown name fails here, not on every worker
    model_with_controls(settings)  # bad options fail here, not on workers
    recipe = StylizerRecipe(kwargs=asdict(settings), build=ray_stylizer, crossfade=int(args.crossfade or 0),
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

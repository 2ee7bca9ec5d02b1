"""Foreign ONNX style models: an ONNX file run as a model, described by a sidecar spec.

``create_model("onnx:PATH")`` (or a plain ``PATH.onnx``) wraps the file in a
:class:`ForeignOnnxModel`: an ``nn.Module`` with a :class:`~rtstyle.models.ModelSpec` like every
other model, which the ``onnx`` and ``openvino`` backends run directly (no export): the module
declares :class:`~rtstyle.models._graph_runtime.RunsOnnxFile`, and the backends run any model that
does through :mod:`rtstyle.backends.graph_file`. Its ``forward`` cannot run in PyTorch; the module
says so and names the backend it prefers (``preferred_backend = "onnx"``).

What the file expects is read from a **sidecar spec** (``PATH.json`` or ``PATH.rtstyle.json``
beside it; the format is in :mod:`rtstyle.models._sidecar`). Style vectors are parsed by
:func:`~rtstyle.models._style_vector.parse_style_vector`; the two registered third-party models
(``onnx.multistyle26``, ``onnx.arbitrary``) are in :mod:`rtstyle.models._foreign_builtin`.

Runner inputs are always ``(image NCHW, *style inputs)``: the outputs of the style-image nets in
``inputs`` order, then the style vector. The runner permutes NHWC models, and resizes frames to a
fixed input size and back, so callers always hand NCHW at any size and get NCHW of that size back.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..weights import sha256_file
from ._graph_runtime import graph_runtime
from ._onnx_graph import GraphInfo, SidecarError, fmt_shape, is_static, read_graph, static_numel
from ._registry import register_path_loader
from ._sidecar import ForeignInput, ForeignSpec, find_sidecar, read_sidecar, resolve_sidecar
from ._spec import ModelSpec
from ._style_vector import parse_style_vector

__all__ = [
    "ForeignInput",
    "ForeignOnnxModel",
    "ForeignSpec",
    "ForeignVectorModel",
    "GraphInfo",
    "SidecarError",
    "find_sidecar",
    "load_onnx_model",
    "make_foreign_model",
    "parse_style_vector",
    "read_graph",
    "resolve_sidecar",
]

log = logging.getLogger(__name__)

_FLOAT = 1  # onnx.TensorProto.FLOAT


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
            if is_static(want) and tuple(a.shape) != tuple(want):
                if a.size != static_numel(want):
                    raise ValueError(f"{self.spec.name}: input {spec_in.name} needs {static_numel(want)} values "
                                     f"{fmt_shape(want)}, got shape {tuple(a.shape)}")
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

        Raises:
            BackendUnavailableError: no graph runtime is registered (import ``rtstyle.backends``,
                as the Stylizer does) or none for ONNX files is installed.
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
            run = graph_runtime().open_file(spec_in.net, spec_in.net_output)  # cached per file
            v = run({spec_in.net_input: np.ascontiguousarray(x.numpy())})
            want = spec_in.shape
            if is_static(want) and v.size != static_numel(want):
                raise ValueError(f"{spec_in.net.name} gives {v.size} values {tuple(v.shape)} but input "
                                 f"{spec_in.name} of {self.onnx_path.name} needs {fmt_shape(want)}")
            if is_static(want):
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
        return (w.reshape([int(d) for d in vec.shape]) if is_static(vec.shape) else w,)  # type: ignore[arg-type]


def make_foreign_model(path: Path, foreign: ForeignSpec, spec: ModelSpec | None = None) -> ForeignOnnxModel:
    """The module for a resolved spec: :class:`ForeignVectorModel` when it has a style vector."""
    cls = ForeignVectorModel if foreign.vector_input is not None else ForeignOnnxModel
    return cls(path, foreign, spec)


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
        data = read_sidecar(side_path) if side_path else None
    base = side_path.parent if side_path else path.parent
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", path.stem).strip("_") or "model"
    foreign = resolve_sidecar(data, graph, sidecar=side_path, default_name=name or f"onnx.{stem}", base_dir=base)
    if name:
        foreign = dataclasses.replace(foreign, name=name)
    model = make_foreign_model(path, foreign, foreign.model_spec(weights=str(path), sha256=sha256_file(path)))
    log.info("loaded foreign ONNX model %s from %s (inputs %s)", foreign.name, path, list(model.input_names))
    return model


# Checkpoint families read any file with torch.load and raise on an ONNX file instead of declining
# it; this loader declines everything but .onnx, so it goes first.
register_path_loader("onnx", load_onnx_model, priority=10)

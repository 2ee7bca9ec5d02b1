"""The optional model hooks are declared (rtstyle.models._abilities) and each family provides its own."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from rtstyle.models import ModelSpec, create_model
from rtstyle.models._abilities import (AutoBackendHint, BackendBound, EncodesStyleImage, HasControls, HasSpec,
                                       ParsesStyleVector, PerFrameInputs, Prechecked, Specialises, StyleImageSide,
                                       TakesStyleVector, auto_backend_of, is_prechecked)
from rtstyle.models.johnson import TransformerNet
from rtstyle.stylizer import Stylizer

ALL = (EncodesStyleImage, Specialises, StyleImageSide, TakesStyleVector, ParsesStyleVector, HasControls,
       PerFrameInputs, BackendBound)

SHIPPED: dict[str, set[type]] = {  # models with package weights -> the abilities they must declare
    "johnson.starry_night_lite": set(),
    "msgnet.lite": {EncodesStyleImage, TakesStyleVector, ParsesStyleVector, HasControls},
    "adain.vgg16": {EncodesStyleImage, HasControls, PerFrameInputs},
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_families_declare_exactly_their_abilities(name: str) -> None:
    model = create_model(name)
    assert isinstance(model, HasSpec) and model.spec.name == name
    have = {p for p in ALL if isinstance(model, p)}
    assert have == SHIPPED[name], sorted(p.__name__ for p in have ^ SHIPPED[name])


def test_plain_johnson_net_declares_the_backend_hints_with_neutral_defaults() -> None:
    net = TransformerNet(width=4, n_res=1)
    assert isinstance(net, (Prechecked, AutoBackendHint))
    assert not is_prechecked(net) and auto_backend_of(net) is None
    net.prechecked, net.auto_backend = True, "eager"
    assert is_prechecked(net) and auto_backend_of(net) == "eager"
    assert not is_prechecked(object()) and auto_backend_of(object()) is None


def test_metanet_declares_its_hooks_and_generates_prechecked_nets() -> None:
    from rtstyle.models.metanet import FEATURE_DIM, MetaNet

    torch.manual_seed(0)
    meta = MetaNet(width=4, n_res=1, hidden=8, style_size=64).eval()
    for ability in (Specialises, EncodesStyleImage, StyleImageSide):
        assert isinstance(meta, ability), ability.__name__
    assert not isinstance(meta, (TakesStyleVector, PerFrameInputs, BackendBound))
    assert meta.style_image_side == 128
    net = meta.generate_from_features(torch.randn(1, FEATURE_DIM), "x")
    assert isinstance(net, TransformerNet) and isinstance(net, HasSpec) and net.spec.name == "johnson.x"
    assert is_prechecked(net) and auto_backend_of(net) is None  # the eager hint comes with specialise()


class _Shift(nn.Module):
    """A new family in a few lines: a style vector picks one of two colour shifts."""

    spec = ModelSpec(name="shift.test", family="shift", size_multiple=1, styles=("red", "blue"))
    shifts = torch.tensor([[60.0, 0.0, 0.0], [0.0, 0.0, 60.0]])

    def default_style_vector(self) -> list[float]:
        return [1.0, 0.0]

    def encode_style_vector(self, vector: Any) -> tuple[torch.Tensor, ...]:
        w = torch.tensor(np.ravel(np.asarray(vector, dtype=np.float32)))
        return ((w[:, None] * self.shifts).sum(0).view(1, 3, 1, 1),)

    def parse_style_vector(self, value: Any) -> list[float]:
        return [1.0, 0.0] if value == "red" else [0.0, 1.0]

    def forward(self, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return x + shift


def test_a_family_declared_by_protocol_runs_in_the_stylizer() -> None:
    model = _Shift()
    assert isinstance(model, (TakesStyleVector, ParsesStyleVector)) and not isinstance(model, EncodesStyleImage)
    img = np.full((8, 8, 3), 100, np.uint8)
    st = Stylizer(model, precision="fp32")
    assert st.stylize(img)[0, 0].tolist() == [160, 100, 100]  # the default vector: red
    st.set_style(style_vector="blue", wait=True)
    assert st.stylize(img)[0, 0].tolist() == [100, 100, 160]
    with pytest.raises(ValueError, match="takes no style image"):
        st.prepare(model, style_image=img)


def test_stylizer_discovers_no_hooks_by_attribute_probing() -> None:
    src = (Path(__file__).resolve().parents[2] / "rtstyle" / "stylizer.py").read_text()
    probes = re.findall(r"\b(?:getattr|hasattr)\(", src)
    assert len(probes) <= 3, f"{len(probes)} getattr/hasattr probes in stylizer.py; declare the hook in models/_abilities.py"


def test_a_model_without_a_spec_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="must carry a ModelSpec"):
        Stylizer(nn.Conv2d(3, 3, 1), precision="fp32")


def test_controls_need_the_controls_hook() -> None:
    st = Stylizer(_Shift(), precision="fp32")
    with pytest.raises(TypeError, match="takes no controls"):
        st.prepare(_Shift(), options={"alpha": 0.5})

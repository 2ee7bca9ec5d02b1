"""Models to evaluate: a registry name or file, or a training checkpoint of a run still going."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["load_for_eval"]

log = logging.getLogger(__name__)


def load_for_eval(model: str, *, vgg: str | Path | None = None) -> tuple[Any, int]:
    """What to give the :class:`~rtstyle.Stylizer`, and the training step it was taken at.

    Args:
        model: a registry name or a file the registry reads (``metanet:FILE.safetensors``), or a
            MetaNet training checkpoint (``runs/<run>/checkpoint.pt``, written by
            ``rtstyle train metanet``): its config gives the architecture, so a run can be scored
            while it trains.
        vgg: the VGG16 file a meta network encodes style images with (default: resolved like every
            third-party weight).

    Returns:
        ``(model, step)``: a name/path or a module with a ``spec``; ``step`` is 0 when unknown.

    Raises:
        ValueError: a ``.pt`` file that is not a MetaNet training checkpoint.
    """
    if not model.endswith(".pt"):
        from ..models import create_model

        kw = {"vgg": vgg} if vgg else {}
        m = create_model(model, **kw)
        return m.float().eval(), int(m.spec.extra.get("steps", 0) or 0)
    import torch

    from ..models.metanet import MetaNet, MetaNetArch, metanet_spec

    ck = torch.load(model, map_location="cpu", weights_only=False)
    try:
        c, sd, step = ck["config"], ck["model"], int(ck["step"])
        arch = MetaNetArch(int(c["width"]), int(c["n_res"]), int(c["hidden"]), int(c["rank"]) or None,
                           int(c["style_size"]), bool(c.get("style_norms", False)))
    except (KeyError, TypeError) as e:
        raise ValueError(f"{model}: not a MetaNet training checkpoint (missing {e})") from None
    meta = MetaNet(arch.width, arch.n_res, arch.hidden, arch.rank, arch.style_size, arch.style_norms)
    meta.load_state_dict(sd)
    for p in meta.parameters():
        p.requires_grad_(False)
    meta.vgg_path = str(vgg) if vgg else c.get("vgg")
    meta.vgg_sha256 = None
    meta.encoder_precision = "fp32"
    meta.spec = metanet_spec(f"metanet:{Path(model).name}@{step}", arch, licence="training checkpoint",
                             extra={"steps": step})
    return meta.eval(), step

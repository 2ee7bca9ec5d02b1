"""AdaIN on the ImageNet VGG16 at relu4_1 with a decoder trained by rtstyle (``adain.vgg16``).

The encoder is the third-party ImageNet VGG16 (``conv1_1 .. relu4_1``, resolved like every
third-party weight: explicit path, ``$RTSTYLE_WEIGHTS``, the user cache, torchvision's cache). The
decoder mirrors it with nearest upsampling and reflection padding and is *trained* against that
exact encoder by ``rtstyle train adain`` (content loss on the AdaIN target, mean/std style loss
at relu1_1..relu4_1, Huang & Belongie 2017). A decoder only inverts the encoder it was trained
with, so its file records the encoder's sha256 and :func:`load_pair` refuses another encoder.

Layout of :class:`AdaINDecoder` with base width ``b`` (the paper's decoder is ``b = 64``; the
shipped one is narrower so that it fits the package and runs live on a CPU)::

    conv 512->4b, up x2, conv 4b->4b, conv 4b->4b, conv 4b->2b, up x2,
    conv 2b->2b, conv 2b->b, up x2, conv b->b, conv b->3        (3x3, reflection pad 1, ReLU but last)

Input contract: RGB in [0, 1], H and W multiples of 8 (three poolings).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import resolve_weight, sha256_file
from ._layers import IMAGENET_MEAN, IMAGENET_STD, ImageNetVGG16, vgg16_act_scale
from ._shipped import register_entries, shipped_entries, shipped_file
from ._spec import ModelSpec

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AdaINDecoder",
    "EncoderMismatchError",
    "VGG16Encoder",
    "decoder_state",
    "load_decoder_file",
    "load_pair",
    "load_vgg16_encoder",
    "save_decoder",
    "vgg16_adain_spec",
]

log = logging.getLogger(__name__)

#: torchvision ``features`` index of each ``reluN_1`` tap.
RELU_N1 = {"r11": 1, "r21": 6, "r31": 11, "r41": 18}
FORMAT = "rtstyle.adain-decoder/1"


class EncoderMismatchError(ValueError):
    """The encoder weights differ from the ones a decoder was trained against."""


class VGG16Encoder(ImageNetVGG16):
    """ImageNet VGG16 ``features[0..18]`` (conv1_1 .. relu4_1), torchvision key names.

    Normalises RGB [0, 1] with the ImageNet mean/std inside and divides the activations by
    ``act_scale`` (255 for the Caffe-converted weights, whose activations are ~255x torchvision's),
    so features have the same magnitude whichever VGG16 file was loaded.

    Shape:
        ``(N, 3, H, W)`` -> relu4_1 ``(N, 512, H / 8, W / 8)``.
    """

    level = 41
    out_channels = 512

    def __init__(self, act_scale: float = 1.0) -> None:
        super().__init__(RELU_N1["r41"], act_scale)  # VGG16 features[0..18]
        self.sha256: str | None = None

    def taps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """relu1_1, relu2_1, relu3_1 and relu4_1 from one pass (keys ``r11`` .. ``r41``)."""
        return self.activations(x, {i: k for k, i in RELU_N1.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rescale(self.features((x - self.mean) / self.std))


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))


class AdaINDecoder(nn.Module):
    """Decoder mirroring :class:`VGG16Encoder` (see the module docstring for the layout).

    Args:
        base: base width ``b``; 64 is the paper's decoder.

    Shape:
        ``(N, 512, h, w)`` -> ``(N, 3, 8h, 8w)``, RGB roughly in [0, 1] (not clamped).
    """

    level = 41
    in_channels = 512

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        if base < 4:
            raise ValueError(f"decoder base width must be >= 4, got {base}")
        b = int(base)
        self.base = b
        plan = [(512, 4 * b, False), (4 * b, 4 * b, True), (4 * b, 4 * b, False), (4 * b, 2 * b, False),
                (2 * b, 2 * b, True), (2 * b, b, False), (b, b, True), (b, 3, False)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3) for i, o, _ in plan)
        self._up = [u for _, _, u in plan]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.convs) - 1
        for i, (conv, up) in enumerate(zip(self.convs, self._up)):
            if up:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = _conv(h, conv)
            if i != last:
                h = F.relu(h)
        return h


# --------------------------------------------------------------------------- weights

@lru_cache(maxsize=8)
def _sha_cached(path: str, size: int, mtime: float) -> str:
    return sha256_file(Path(path))


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime): the 58 MB VGG16 is hashed once per process."""
    st = path.stat()
    return _sha_cached(str(path.resolve()), st.st_size, st.st_mtime)


def load_vgg16_encoder(path: str | Path | None = None) -> VGG16Encoder:
    """The relu4_1 encoder from a VGG16 state dict (torchvision key names ``features.N.*``).

    Args:
        path: explicit file; otherwise resolved by :func:`rtstyle.weights.resolve_weight` ("vgg16").

    Returns:
        The frozen encoder with ``.sha256`` set to the file's checksum.
    """
    file = resolve_weight("vgg16", explicit=path)
    try:
        sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or not a torch file
        raise ValueError(f"{file}: cannot read VGG16 weights ({type(e).__name__}: {e})") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    enc = VGG16Encoder()
    own = enc.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise ValueError(f"{file}: not a VGG16 state dict with torchvision key names (missing {missing[:3]})")
    enc.load_state_dict({k: sd[k] for k in own})
    enc.act_scale = vgg16_act_scale(sd)
    enc.sha256 = file_sha256(Path(file))
    for p in enc.parameters():
        p.requires_grad_(False)
    log.info("VGG16 relu4_1 encoder from %s (sha256 %s..., activation scale %g)", file, enc.sha256[:12], enc.act_scale)
    return enc.eval()


def decoder_state(dec: AdaINDecoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().contiguous().cpu() for k, v in dec.state_dict().items()}


def save_decoder(dec: AdaINDecoder, spec: ModelSpec, path: str | Path, encoder_sha256: str,
                 dtype: torch.dtype = torch.float16) -> Path:
    """Write a decoder as safetensors (fp16 by default) with its spec and encoder checksum."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.to(dtype) for k, v in decoder_state(dec).items()}
    meta = {"format": FORMAT, "spec": spec.to_json(), "encoder_sha256": encoder_sha256, "base": str(dec.base)}
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_decoder_file(path: str | Path) -> tuple[AdaINDecoder, dict[str, str]]:
    """A decoder written by :func:`save_decoder` and its metadata (``encoder_sha256``, ``spec``)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: not an rtstyle AdaIN decoder (format {meta.get('format')!r})")
            sd = {k: f.get_tensor(k).float() for k in f.keys()}
    except SafetensorError as e:  # truncated or not a safetensors file: a user error, like a bad VGG16 file
        raise ValueError(f"{path}: cannot read the AdaIN decoder ({e})") from None
    dec = AdaINDecoder(int(meta.get("base", 32)))
    dec.load_state_dict(sd)
    for p in dec.parameters():
        p.requires_grad_(False)
    return dec.eval(), meta


def load_pair(decoder_path: str | Path, encoder_path: str | Path | None = None,
              verify: bool = True) -> tuple[VGG16Encoder, AdaINDecoder, dict[str, str]]:
    """The trained decoder and the VGG16 encoder it was trained against.

    Raises:
        EncoderMismatchError: the encoder file's sha256 is not the one recorded in the decoder.
    """
    dec, meta = load_decoder_file(decoder_path)
    enc = load_vgg16_encoder(encoder_path)
    want = meta.get("encoder_sha256")
    if verify and want and enc.sha256 != want:
        raise EncoderMismatchError(
            f"the AdaIN decoder {Path(decoder_path).name} was trained against the VGG16 with sha256 "
            f"{want[:16]}..., but the encoder found ({enc.sha256[:16]}...) is a different file. A decoder "
            "only inverts the encoder it was trained with: point --vgg / $RTSTYLE_WEIGHTS at that file "
            "(`rtstyle weights list` shows what was found), or train a decoder for this encoder with "
            "`rtstyle train adain`."
        )
    return enc, dec, meta


# --------------------------------------------------------------------------- registry

def _vgg_adain_factory(spec: ModelSpec, *, encoder_path: str | Path | None = None, decoder_path: str | Path | None = None,
                       **kwargs: Any) -> nn.Module:
    from .adain import build_adain

    if decoder_path is None:
        with shipped_file(spec) as p:
            if spec.sha256 and sha256_file(p) != spec.sha256:
                raise ValueError(f"{spec.name}: shipped decoder {p.name} fails its sha256 check (reinstall rtstyle)")
            enc, dec, _ = load_pair(p, encoder_path)
    else:
        enc, dec, _ = load_pair(decoder_path, encoder_path)
    return build_adain(spec, enc, dec, **kwargs)


def _register_shipped() -> None:
    register_entries(shipped_entries("adain"), _vgg_adain_factory)


def vgg16_adain_spec(name: str, base: int, encoder_sha256: str, extra: dict[str, Any]) -> ModelSpec:
    """Spec of an AdaIN model on the VGG16 relu4_1 encoder with a trained decoder."""
    return ModelSpec(
        name=name,
        family="adain",
        description=f"arbitrary style by AdaIN at VGG16 relu4_1, decoder (base width {base}) trained by rtstyle; needs --style IMG",
        input_range=(0.0, 1.0),
        output_range=(0.0, 1.0),
        size_multiple=8,
        needs_style_image=True,
        default_size=240,
        licence="Apache-2.0 (decoder, trained by the rtstyle project); encoder: ImageNet VGG16, third-party, not shipped",
        extra=dict(extra, layer="relu4_1", encoder="vgg16", encoder_sha256=encoder_sha256, decoder_base=base),
    )


_register_shipped()

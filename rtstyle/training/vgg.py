"""Re-exports for trainers: the VGG16 loss network lives in :mod:`rtstyle.nn.vgg`."""
from ..nn.vgg import IMAGENET_MEAN, IMAGENET_STD, STYLE_LAYERS, TAPS, VGG16Features, load_vgg16

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "STYLE_LAYERS", "TAPS", "VGG16Features", "load_vgg16"]

"""Shared networks and losses: the ImageNet VGG16 (layers, named taps, checksum-checked loading)
and the perceptual losses and feature statistics built on it.

``models/``, ``training/``, :mod:`rtstyle.quality` and the temporal metrics use these; this package
imports nothing from them.
"""
from . import losses, vgg
from .losses import (MEANSTD_EPS, channel_mean_std, content_loss, gram, gram_style_loss, meanstd_style_loss,
                     tv_loss)
from .vgg import (IMAGENET_MEAN, IMAGENET_STD, RELU_N1, STYLE_LAYERS, TAPS, ImageNetVGG16, VGG16Encoder,
                  VGG16Features, VGGMismatchError, check_vgg16_file, file_sha256, load_vgg16, load_vgg16_encoder,
                  read_vgg16_state_dict, vgg16_act_scale, vgg16_features)

# the public names are the two modules' (each lists its own once)
__all__ = list(losses.__all__)
__all__ += vgg.__all__

"""Re-exports for trainers: the perceptual losses live in :mod:`rtstyle.nn.losses`."""
from ..nn.losses import content_loss, gram, gram_style_loss, meanstd_style_loss, tv_loss

__all__ = ["gram", "content_loss", "gram_style_loss", "meanstd_style_loss", "tv_loss"]

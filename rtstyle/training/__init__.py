"""Training: VGG perceptual losses, data loading and trainers.

Imported only by ``rtstyle train`` and tools, never on the inference path.
"""

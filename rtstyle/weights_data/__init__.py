"""rtstyle's own trained weights (safetensors) and their manifest."""

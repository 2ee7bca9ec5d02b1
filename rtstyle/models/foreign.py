"""Foreign models (ONNX files with a sidecar spec) - registered by the ONNX backend work."""

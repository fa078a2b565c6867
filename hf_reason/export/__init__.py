"""ONNX export and ONNX Runtime wrappers."""

"""Numerical-parity checks of converted ONNX models against Caffe."""

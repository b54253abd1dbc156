"""Exports of a trained CocoER for sharing and deployment.

Safetensors + JSON config (:mod:`cocoer.export.safetensors`: weights only, no code) and ONNX
(:mod:`cocoer.export.onnx`: the whole model, workspace included, as one tensor graph for
ONNX Runtime)."""

#: ONNX opset written by default (the dynamo exporter's floor; ONNX Runtime >= 1.14 runs it).
DEFAULT_OPSET = 18

"""Exports of a trained CocoER: ONNX (:mod:`cocoer.export.onnx`, the whole model, workspace
included, as one tensor graph for ONNX Runtime)."""

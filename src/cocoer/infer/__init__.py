"""Inference on photos and videos (``cocoer-infer``): the engines and their results.

:class:`Predictor` (PyTorch) and :class:`OnnxPredictor` (ONNX Runtime, no torch) share
detection and decisions (:class:`cocoer.infer.engine.Engine`). Submodules are imported on
first attribute access, so ``import cocoer.infer`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "Predictor": "cocoer.infer.predictor",
    "resolve_device": "cocoer.infer.predictor",
    "OnnxPredictor": "cocoer.infer.onnx_engine",
    "Engine": "cocoer.infer.engine",
    "HeadPrediction": "cocoer.infer.results",
    "ImageResult": "cocoer.infer.results",
    "LabelScore": "cocoer.infer.results",
    "PersonResult": "cocoer.infer.results",
    "ThresholdPolicy": "cocoer.infer.thresholds",
    "build_policy": "cocoer.infer.thresholds",
    "parse_threshold_spec": "cocoer.infer.thresholds",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cocoer.infer' has no attribute {name!r}")

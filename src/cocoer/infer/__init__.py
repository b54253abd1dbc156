"""Inference on photos and videos (``cocoer-infer``): :class:`Predictor` and its results."""

from __future__ import annotations

from cocoer.infer.predictor import Predictor, load_checkpoint_model, resolve_device
from cocoer.infer.results import HeadPrediction, ImageResult, LabelScore, PersonResult
from cocoer.infer.thresholds import ThresholdPolicy, build_policy, parse_threshold_spec

__all__ = [
    "HeadPrediction",
    "ImageResult",
    "LabelScore",
    "PersonResult",
    "Predictor",
    "ThresholdPolicy",
    "build_policy",
    "load_checkpoint_model",
    "parse_threshold_spec",
    "resolve_device",
]

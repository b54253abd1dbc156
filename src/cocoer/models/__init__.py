"""Model parts: backbones, hierarchical feature extraction, V-I alignment, heads.

Build a model with :func:`create_model` (a preset name, a :class:`CocoERConfig` or a
mapping such as a checkpoint's ``net`` hyper-parameters).

The names below are imported on first attribute access, so that the torch-free modules of
the package (:mod:`cocoer.models.preprocess`, read by the ONNX Runtime engine, and
:mod:`cocoer.models.config`, read by the Hydra schema) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cocoer.models.cocoer import CocoER
    from cocoer.models.config import CocoERConfig, HFEConfig, VIConfig
    from cocoer.models.factory import NO_DOWNLOAD, create_model, list_presets, model_config

_LAZY: dict[str, str] = {
    "NO_DOWNLOAD": "cocoer.models.factory",
    "CocoER": "cocoer.models.cocoer",
    "CocoERConfig": "cocoer.models.config",
    "HFEConfig": "cocoer.models.config",
    "VIConfig": "cocoer.models.config",
    "create_model": "cocoer.models.factory",
    "list_presets": "cocoer.models.factory",
    "model_config": "cocoer.models.factory",
}

__all__ = [
    "NO_DOWNLOAD",
    "CocoER",
    "CocoERConfig",
    "HFEConfig",
    "VIConfig",
    "create_model",
    "list_presets",
    "model_config",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cocoer.models' has no attribute {name!r}")

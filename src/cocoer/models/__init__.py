"""Model parts: backbones, hierarchical feature extraction, V-I alignment, heads.

Build a model with :func:`create_model` (a preset name, a :class:`CocoERConfig` or a
mapping such as a checkpoint's ``net`` hyper-parameters).
"""

from cocoer.models.cocoer import CocoER, CocoERConfig
from cocoer.models.factory import NO_DOWNLOAD, create_model, list_presets, model_config
from cocoer.models.hfe import HFEConfig
from cocoer.models.vi import VIConfig

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

"""Config schemas, resolvers and composition helpers."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from cocoer.configs.schema import register_configs, validate_config


def _monitor(multi_label: bool) -> str:
    """The validation metric that picks checkpoints: mAP (multi-label) or accuracy."""
    return "val/mAP" if multi_label else "val/acc"


def _wandb_mode(explicit: str | None = None) -> str:
    """online when an API key is set (or W&B is logged in), offline otherwise."""
    if explicit:
        return explicit
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def register_resolvers() -> None:
    """Register the ``cocoer_*`` OmegaConf resolvers and the ConfigStore schemas (idempotent)."""
    if not OmegaConf.has_resolver("cocoer_monitor"):
        OmegaConf.register_new_resolver("cocoer_monitor", _monitor)
    if not OmegaConf.has_resolver("cocoer_wandb_mode"):
        OmegaConf.register_new_resolver("cocoer_wandb_mode", _wandb_mode)
    register_configs()


register_resolvers()

__all__ = ["register_configs", "register_resolvers", "validate_config"]

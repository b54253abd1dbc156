"""Rebuild a CocoER from a checkpoint file without unpickling anything.

The one place the exporters read a checkpoint or a safetensors export, through
:func:`cocoer.checkpoint.load_model_file` (nothing unpickled, the stored config checked), with
no downloads (pretrained-weight options are cleared: the state dict holds every weight, CLIP's
included).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cocoer.checkpoint import load_model_file
from cocoer.models import create_model
from cocoer.models.cocoer import CocoER


def net_from_config(net_cfg: dict[str, Any], where: str) -> CocoER:
    """A CocoER from the ``net`` hyper-parameters of a checkpoint (random weights, nothing
    downloaded: the state dict holds every weight, CLIP's included)."""
    try:
        return create_model(net_cfg, pretrained=False)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_checkpoint_weights_only(
    path: str | os.PathLike[str],
) -> tuple[CocoER, Tensor, int | None, dict[str, Any]]:
    """(net in eval mode, calibrated thresholds [k], window size S or None, net config).

    Raises:
        FileNotFoundError: no such file. ValueError: not a CocoER checkpoint (the message
            names the file and the reason).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    hp, state = load_model_file(path)  # no code runs from the file (cocoer.checkpoint)
    net_cfg = dict(hp["net"])
    net = net_from_config(net_cfg, str(path))
    net_state = {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}
    try:
        net.load_state_dict(net_state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the stored net config: {exc}") from exc
    k = net.num_classes
    thresholds = state.get("thresholds", torch.full((k,), 0.5)).detach().float().clone()
    size = (net_cfg.get("hfe") or {}).get("image_size")
    return net.eval(), thresholds, (int(size) if size else None), net_cfg

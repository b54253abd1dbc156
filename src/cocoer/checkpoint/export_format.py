"""Reading the weights-only export format (safetensors + JSON config, see
:mod:`cocoer.export.safetensors` for writing it).

Kept apart from the writer so that the safe loader (:mod:`cocoer.checkpoint.safe_load`)
can read exports without depending on the exporters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cocoer.errors import CheckpointError
from cocoer.utils.files import loads_json

FORMAT = "cocoer-safetensors"
VERSION = 1
META_KEY = "cocoer_config"


def read_export(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(hyper_parameters, state_dict)`` of an export (a ``.safetensors`` file or a folder).

    Raises:
        CheckpointError: missing, corrupt or not a cocoer export.
    """
    from safetensors import safe_open

    p = Path(path)
    weights = p / "model.safetensors" if p.is_dir() else p
    if not weights.is_file():
        raise CheckpointError(weights, "no such file")
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        msg = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise CheckpointError(weights, f"not a safetensors file ({msg[:160]})") from None
    if META_KEY not in meta:
        raise CheckpointError(weights, "not a cocoer export (no cocoer_config metadata)")
    config = loads_json(meta[META_KEY], f"{weights} (metadata {META_KEY})")
    try:
        if config.get("format") != FORMAT:
            raise ValueError(config.get("format"))
        hparams = config["hyper_parameters"]
    except (KeyError, ValueError, TypeError, AttributeError):
        raise CheckpointError(weights, "not a cocoer export (no cocoer_config metadata)") from None
    return hparams, state

"""Weights-only export for sharing: safetensors (tensors only, no code) + the config as JSON.

    cocoer-export --format safetensors --ckpt run/checkpoints/last.ckpt --out shared/

``--out`` a folder: ``<out>/model.safetensors`` and ``<out>/config.json``; a file ending in
``.safetensors``: that file and the JSON next to it (same stem, ``.json``). The JSON is
also stored in the safetensors header (metadata ``cocoer_config``), so the weights file
alone is enough to rebuild the model (:func:`cocoer.checkpoint.export_format.read_export`);
``cocoer-infer --ckpt`` and ``cocoer-eval ckpt_path=`` accept either form.

The config holds the model's hyper-parameters (``hyper_parameters``, with the net config),
the class names, the calibrated thresholds [k] and the preprocessing (window size S,
ImageNet mean / std).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from cocoer.checkpoint.export_format import FORMAT, META_KEY, VERSION, read_export
from cocoer.constants import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["FORMAT", "META_KEY", "VERSION", "export_config", "export_paths", "read_export"]


def export_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights file, JSON file) for ``out`` (a folder or a ``.safetensors`` file)."""
    out = Path(out)
    if out.suffix == ".safetensors":
        return out, out.with_suffix(".json")
    return out / "model.safetensors", out / "config.json"


def export_config(hparams: dict[str, Any], state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The JSON config of an export: hyper-parameters, classes, thresholds, preprocessing.

    The ``net`` hyper-parameters are validated as a :class:`CocoERConfig` (the model itself
    is not built: that takes seconds and gigabytes for the paper model).

    Raises:
        ValueError: ``net`` is not a valid model config, or its class names do not match k.
    """
    from cocoer.models.cocoer import class_names_of
    from cocoer.models.factory import model_config

    cfg = model_config(hparams["net"], pretrained=False)
    thresholds = state.get("thresholds", torch.full((cfg.num_classes,), 0.5))
    return {
        "format": FORMAT,
        "version": VERSION,
        "hyper_parameters": hparams,
        "class_names": list(class_names_of(cfg)),
        "multi_label": bool(cfg.multi_label),
        "thresholds": [float(t) for t in thresholds.tolist()],
        "preprocessing": {
            "image_size": hparams["net"].get("hfe", {}).get("image_size"),
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
    }


def input_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a model input consists of (an export folder: its two files)."""
    p = Path(path)
    return [p / "model.safetensors", p / "config.json"] if p.is_dir() else [p]


def write_export(
    ckpt: str | os.PathLike[str], out: str | os.PathLike[str], overwrite: bool = False
) -> tuple[Path, Path]:
    """Export checkpoint ``ckpt`` (read safely) to ``out``; returns the files written.

    Raises:
        cocoer.errors.InputError: an output file exists (and not ``overwrite``) or is the
            input itself (always refused), or ``ckpt`` cannot be read.
    """
    from safetensors.torch import save_file

    from cocoer.checkpoint.model import load_model
    from cocoer.utils.files import (
        atomic_save_as,
        atomic_write_text,
        refuse_overwrite,
    )

    weights, js = export_paths(out)
    refuse_overwrite([weights, js], overwrite, input_files(ckpt))
    loaded = load_model(ckpt)  # the model must build from the file before it is shared
    hparams, state = loaded.hparams, loaded.state_dict()
    config = export_config(hparams, state)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    text = json.dumps(config, indent=2)
    atomic_save_as(weights, lambda tmp: save_file(tensors, str(tmp), metadata={META_KEY: text}))
    atomic_write_text(js, text + "\n")
    return weights, js

"""A model folder in the Hugging Face Hub's layout, and its upload.

    cocoer-export --format hub --ckpt run/checkpoints/last.ckpt --out hub/        # a folder
    cocoer-export --format hub --ckpt converted.ckpt --out hub/ --push ORG/NAME   # + upload

The source is a training checkpoint, a converted authors' checkpoint (``cocoer-convert``), a
safetensors export or a hub folder, rebuilt without running code from it
(:func:`cocoer.checkpoint.model.load_model`). The folder holds ``model.safetensors`` (the
net's state dict, CLIP's weights included), ``config.json``
(:func:`cocoer.hub.config.build_hub_config`: no local path, nothing executable) and
``README.md`` (:func:`cocoer.export.model_card.render_card`, with the run's test metrics when
a ``metrics.json`` sits in the checkpoint's run directory). The folder is written next to
``--out`` and renamed into place once it loads back (:func:`cocoer.hub.load.read_hub_folder`);
an ``--out`` that exists and is not empty is refused.

``--push ORG/NAME`` uploads the folder with ``huggingface_hub`` (the token of ``hf auth
login``), to a private repository unless ``--public``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cocoer.errors import InputError
from cocoer.export.model_card import RunInfo, render_card
from cocoer.hub.config import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    build_hub_config,
    read_json_file,
)
from cocoer.utils.files import atomic_folder


@dataclass(frozen=True)
class HubFolder:
    """What :func:`write_hub_folder` wrote."""

    folder: Path
    sha256: str  # of model.safetensors
    size: int  # bytes of model.safetensors

    def summary(self) -> str:
        return (
            f"wrote {self.folder} ({WEIGHTS_NAME}: {self.size / 1e6:.1f} MB, "
            f"SHA-256 {self.sha256}; {CONFIG_NAME}; {CARD_NAME})"
        )


def read_source(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """``(hyper_parameters, state_dict, source)`` of a checkpoint, a converted checkpoint, a
    safetensors export or a hub folder, rebuilt by
    :func:`cocoer.checkpoint.model.load_model`; ``source`` = ``{"kind", "file"}``."""
    from cocoer.checkpoint.model import load_model

    loaded = load_model(path)
    source = {"kind": loaded.kind, "file": Path(path).name}
    if loaded.hub_config is not None:  # a hub folder again: what it was made from
        source = dict(loaded.hub_config.source) or {"kind": "safetensors", "file": source["file"]}
    return loaded.hparams, loaded.state_dict(), source


def run_files(ckpt: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(``metrics.json``, ``config.yaml``) of the run a checkpoint belongs to (its folder or
    the one above, ``<run>/checkpoints/x.ckpt``), each None when absent."""
    import yaml

    for run in (ckpt.parent, ckpt.parent.parent):
        if (run / "metrics.json").is_file():
            metrics = read_json_file(run / "metrics.json")
            config = None
            if (run / "config.yaml").is_file():
                with contextlib.suppress(yaml.YAMLError, OSError, RecursionError):
                    config = yaml.safe_load((run / "config.yaml").read_text()[: 1 << 20])
            return (metrics if isinstance(metrics, dict) else None), (
                config if isinstance(config, dict) else None
            )
    return None, None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(out, "exists and is not an empty folder (choose a new --out)")


def write_hub_folder(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    repo_id: str = "ORG/NAME",
    metrics: str | os.PathLike[str] | None = None,
    detector: str = "auto",
) -> HubFolder:
    """Write the hub folder of ``source`` to ``out`` (see the module docstring).

    Args:
        repo_id: the name the card's usage examples give the model.
        metrics: a ``metrics.json`` for the card (default: the checkpoint's run's).
        detector: the detector recorded as the model's choice (``auto`` | ...).
    Raises:
        InputError: unreadable source, ``out`` not empty, a config that cannot be written.
    """
    from safetensors.torch import save_file

    from cocoer.hub.load import read_hub_folder

    source, out = Path(source), Path(out)
    _check_out(out)
    hp, state, origin = read_source(source)
    run_metrics, run_config = run_files(source)
    if metrics is not None:
        run_metrics = read_json_file(metrics)
    net_state = {
        k[4:]: v.detach().cpu().contiguous() for k, v in state.items() if k.startswith("net.")
    }
    k = int(hp["net"].get("num_classes") or 0)
    thr = state.get("thresholds", torch.full((k,), 0.5))
    rule = "authors_demo" if origin["kind"] == "converted" else str(hp.get("threshold_rule", "f1"))
    try:
        config = build_hub_config(hp, thr.tolist(), rule=rule, source=origin, detector=detector)
    except ValueError as exc:
        raise InputError(source, f"cannot describe this model ({exc})") from None
    with atomic_folder(out) as tmp:
        weights = tmp / WEIGHTS_NAME
        save_file(net_state, str(weights), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        read_hub_folder(tmp)  # the folder must load before it is published
        sha, size = _sha256(weights), weights.stat().st_size
        info = RunInfo(metrics=run_metrics, run_config=run_config, repo_id=repo_id)
        (tmp / CARD_NAME).write_text(render_card(config, info, sha, size), encoding="utf-8")
    return HubFolder(out, sha, size)


def push_to_hub(folder: str | os.PathLike[str], repo_id: str, private: bool = True) -> str:
    """Upload a hub folder to ``repo_id`` (created if needed, private by default) with the
    token of ``hf auth login``; returns the repository's URL. Never called by the tests."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="cocoer-export")
    except (OSError, ValueError) as exc:  # the Hub's HTTP errors are OSErrors
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise InputError(repo_id, f"upload failed ({first[:160]})") from None
    return str(url)

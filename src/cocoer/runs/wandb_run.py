"""A stable W&B run per run directory: the run id lives in ``<run dir>/wandb_run_id``, so a
resumed run (same directory, ``ckpt_path=auto``) continues the same W&B run."""

from __future__ import annotations

import secrets
import string
from pathlib import Path

from omegaconf import DictConfig, open_dict

from cocoer.utils.files import atomic_write_text

ID_FILE = "wandb_run_id"
_ALPHABET = string.ascii_lowercase + string.digits


def new_run_id(length: int = 8) -> str:
    """A random W&B-style run id (lowercase letters and digits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def run_id_for(run_dir: str | Path, write: bool = True) -> str:
    """The run id stored in ``run_dir`` (created and, if ``write``, stored on first use)."""
    path = Path(run_dir) / ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = new_run_id()
    if write:
        atomic_write_text(path, run_id + "\n")
    return run_id


def wandb_logger_keys(cfg: DictConfig) -> list[str]:
    """Names of the entries of ``cfg.logger`` that build a ``WandbLogger``."""
    loggers = cfg.get("logger") or {}
    return [
        k
        for k, v in loggers.items()
        if v is not None and str(v.get("_target_", "")).endswith("WandbLogger")
    ]


def attach_wandb_run(cfg: DictConfig, group: str | None = None, write: bool = True) -> str | None:
    """Fill ``id`` (stored per run directory), ``resume`` and a default ``name``/``group`` of
    every W&B logger of ``cfg``; returns the run id (None without a W&B logger)."""
    keys = wandb_logger_keys(cfg)
    if not keys:
        return None
    out = Path(cfg.paths.output_dir)
    run_id = None
    with open_dict(cfg):
        for k in keys:
            node = cfg.logger[k]
            if not node.get("id"):
                run_id = run_id or run_id_for(out, write=write)
                node.id = run_id
            run_id = node.id
            node.resume = node.get("resume") or "allow"
            if not node.get("name"):
                node.name = f"{out.parent.name}/{out.name}"
            if group and not node.get("group"):
                node.group = group
    return run_id

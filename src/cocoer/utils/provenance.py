"""What a run directory records about how it was made (config, overrides, code, packages)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from cocoer.utils.files import atomic_write_text

PACKAGES = (
    "torch", "torchvision", "lightning", "hydra-core", "omegaconf", "torchmetrics",
    "open_clip_torch", "qpth", "wandb", "numpy", "scipy", "opencv-python-headless",
    "insightface", "onnxruntime", "onnxruntime-gpu", "grad-cam",
)  # fmt: skip


def git_state(repo: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the source tree (None outside a git checkout)."""
    repo = repo or Path(__file__).resolve().parents[3]

    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True
            )
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_config(cfg: DictConfig) -> DictConfig:
    """The run's own config: the composed config without Hydra's ``hydra`` node."""
    keys = cast(list[str], [k for k in cfg if k != "hydra"])  # a Hydra config's root keys: str
    return OmegaConf.masked_copy(cfg, keys)


def write_provenance(
    cfg: DictConfig, out_dir: str | Path, overrides: list[str] | None = None
) -> Path:
    """Write ``config.yaml`` (resolved), ``overrides.txt`` and ``provenance.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(run_config(cfg), resolve=True))
    if overrides is not None:
        atomic_write_text(out / "overrides.txt", "\n".join(overrides) + ("\n" if overrides else ""))
    info = {
        "git": git_state(),
        "python": sys.version,
        "platform": platform.platform(),
        "argv": sys.argv,
        "seed": cfg.get("seed"),
        "packages": package_versions(),
    }
    path = out / "provenance.json"
    atomic_write_text(path, json.dumps(info, indent=2))
    return path

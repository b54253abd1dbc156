"""What a run directory records about how it was made (config, overrides, code, packages).

``cocoer-train`` has Hydra write nothing into the run directory when a job starts
(``hydra.output_subdir: null`` in conf/train.yaml): :func:`write_provenance` writes the run's
records, Hydra's three files under ``.hydra/`` included, once the run has passed its checks,
so a launch or resume that is refused leaves the records of the run already there as they
were.
"""

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
    """Write ``config.yaml`` (resolved), ``overrides.txt``, ``provenance.json`` and, under
    Hydra, ``.hydra/`` (:func:`write_hydra_records`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_hydra_records(cfg, out)
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


HYDRA_DIR = ".hydra"


def write_hydra_records(cfg: DictConfig, out_dir: str | Path, only_if_absent: bool = False) -> bool:
    """Write what Hydra writes into ``<run>/.hydra/`` when ``hydra.output_subdir`` is set:
    ``config.yaml`` (the job's config, unresolved), ``hydra.yaml`` (Hydra's own node) and
    ``overrides.yaml`` (the command-line overrides). Nothing outside a Hydra job, and with
    ``only_if_absent`` nothing if ``.hydra/`` exists. Returns whether it wrote."""
    from hydra.core.hydra_config import HydraConfig

    folder = Path(out_dir) / HYDRA_DIR
    if not HydraConfig.initialized() or (only_if_absent and folder.exists()):
        return False
    hydra_cfg = cast(DictConfig | None, HydraConfig.instance().cfg)  # {"hydra": ...}
    if hydra_cfg is None:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.yaml", OmegaConf.to_yaml(run_config(cfg)))
    atomic_write_text(folder / "hydra.yaml", OmegaConf.to_yaml(hydra_cfg))
    atomic_write_text(
        folder / "overrides.yaml",
        OmegaConf.to_yaml(OmegaConf.select(hydra_cfg, "hydra.overrides.task")),
    )
    return True

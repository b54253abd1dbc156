"""Compose a run config without the ``@hydra.main`` entry point (tests, benchmarks, notebooks).

``compose_config("train", out_dir, overrides=[...])`` composes ``conf/train.yaml`` with
Hydra's Compose API and points every output path (run, logs, work, data) into ``out_dir``,
so nothing is written elsewhere; ``data_root`` reads an existing dataset instead of
generating one.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from cocoer import config_dir
from cocoer.configs import register_resolvers


def compose_config(
    name: str, out_dir: Path, data_root: Path | None = None, overrides: list[str] | None = None
) -> DictConfig:
    """Compose ``conf/<name>.yaml`` into ``out_dir`` (see the module docstring)."""
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(name, overrides=list(overrides or []), return_hydra_config=True)
        with open_dict(cfg):
            cfg.paths.root_dir = str(out_dir)
            cfg.paths.output_dir = str(out_dir / "run")
            cfg.paths.log_dir = str(out_dir / "logs")
            cfg.paths.work_dir = str(out_dir)
            cfg.paths.data_dir = str(out_dir / "data")
            if data_root is not None:
                cfg.data.root = str(data_root)
                cfg.data.synthetic = None
        HydraConfig().set_config(cfg)
    return cfg

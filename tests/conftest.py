"""Shared fixtures: Hydra configs composed into tmp_path, a tiny generated dataset, and a
tiny trained checkpoint (trained once per test session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from cocoer import config_dir
from cocoer.configs import register_resolvers

register_resolvers()
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: skip-if helper for tests that need a CUDA device (they also carry the `gpu` marker,
#: which `make test` deselects; run them with `pytest -m gpu` on a GPU machine)
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

#: small generated EMOTIC-layout dataset used by the training tests
TINY_DATA = {"n_train": 24, "n_val": 8, "n_test": 8, "seed": 0, "image_size": [48, 72]}

#: overrides that make a training run take seconds
TINY_OVERRIDES = [
    "experiment=smoke",
    "model.net.vi.clip_weights_path=null",  # random-weight CLIP: no pre-training step
    "data.image_size=32",
    "data.batch_size=8",
    "data.eval_batch_size=8",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
    "extras.print_config=false",
    "model.net.hfe.tiny_width=8",
    "model.net.hfe.d_h=16",
    "model.net.d=16",
]


def compose_config(
    name: str, out_dir: Path, data_root: Path | None = None, overrides: list[str] | None = None
) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with Hydra's Compose API into ``out_dir``.

    The run directory, the log directory and (optionally) the data root point into
    ``out_dir`` so that nothing is written outside tmp_path.
    """
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


@pytest.fixture(scope="session")
def tiny_emotic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset in the EMOTIC layout (generated once per session)."""
    from cocoer.data import generate_emotic

    root = tmp_path_factory.mktemp("emotic_tiny")
    generate_emotic(root, **TINY_DATA)
    return root


@pytest.fixture
def tiny_train_cfg(tmp_path: Path, tiny_emotic_root: Path) -> DictConfig:
    """The smoke experiment shrunk to seconds, on the tiny generated dataset."""
    return compose_config("train", tmp_path, tiny_emotic_root, TINY_OVERRIDES)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_emotic_root: Path) -> Path:
    """A checkpoint of the tiny model trained for one epoch (once per session)."""
    from cocoer.train import train

    out = tmp_path_factory.mktemp("tiny_ckpt")
    cfg = compose_config("train", out, tiny_emotic_root, [*TINY_OVERRIDES, "logger=csv"])
    metrics = train(cfg)
    path = Path(metrics["best_ckpt"])
    assert path.is_file()
    return path

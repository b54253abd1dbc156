"""Shared fixtures: a tiny generated dataset and a tiny trained checkpoint (trained once per
test session). Helpers that test files import are in ``tests/helpers.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from tests.helpers import TINY_DATA, TINY_OVERRIDES, compose_config


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

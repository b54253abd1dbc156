"""Helpers the tests import: Hydra composition into tmp_path (``compose_config``, from the
package), the tiny-run overrides, the
CUDA skip marker. (Fixtures live in ``conftest.py``, which pytest loads by itself.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from cocoer.configs import register_resolvers
from cocoer.configs.compose import compose_config

__all__ = [
    "TINY_DATA",
    "TINY_OVERRIDES",
    "cli_train_args",
    "compose_config",
    "requires_cuda",
    "resumable",
]

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


def cli_train_args(tmp: Path, data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    """The tiny run as ``cocoer-train`` arguments: a CSV logger, the data at ``data_root``
    (nothing generated), outputs under ``tmp`` in ``run_dir``, then ``extra``."""
    return [
        *TINY_OVERRIDES,
        "logger=csv",
        f"data.root={data_root}",
        "data.synthetic=null",
        f"paths.root_dir={tmp}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def resumable(epochs: int) -> list[str]:
    """Overrides of a deterministic run of ``epochs`` epochs with no test stage (the runs
    the resume tests interrupt and compare)."""
    return [f"trainer.max_epochs={epochs}", "trainer.deterministic=true", "test=false"]

"""Training-level numerics: the pre-alignment stage logs no first-excluded (Table 5) share,
and a run driven into saturation (high learning rate, many steps) ends with finite weights
and metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from cocoer.checkpoint.safe_load import load_cocoer_checkpoint
from cocoer.train import train
from tests.support.helpers import TINY_OVERRIDES, compose_config


def test_prealign_logs_no_first_excluded_share(tmp_path: Path, tiny_emotic_root: Path) -> None:
    """Pre-alignment trains W alone: there is no exclusion order, so no Table 5 share (it used
    to count the zero-filled order as 100% context)."""
    over = [*TINY_OVERRIDES, "model.stage=prealign"]
    metrics = train(compose_config("train", tmp_path, tiny_emotic_root, over))
    assert "test/mAP" in metrics
    assert not [k for k in metrics if "first_excluded" in k], metrics


def _saturating_run(tmp_path: Path, root: Path, extra: list[str]) -> dict:
    over = [
        *TINY_OVERRIDES,
        "trainer.max_epochs=15",
        "model.optimizer.lr=0.05",
        "model.optimizer.weight_decay=0.0",
        "model.scheduler.step_size=100",
        "logger=csv",
        *extra,
    ]
    cfg = compose_config("train", tmp_path, root, over)
    with open_dict(cfg):
        cfg.callbacks.model_checkpoint.monitor = None
    return train(cfg)


@pytest.mark.slow
def test_a_run_driven_into_saturation_ends_finite(tmp_path: Path, tiny_emotic_root: Path) -> None:
    """15 epochs at lr 0.05 (800x the paper's) on 24 images: the level heads become
    confident; with the finite-gradient check on (stop by default) the run must finish, with
    finite weights and metrics."""
    metrics = _saturating_run(tmp_path, tiny_emotic_root, [])
    numbers = {k: v for k, v in metrics.items() if isinstance(v, float)}
    assert numbers and all(math.isfinite(v) for v in numbers.values()), numbers
    ckpt = load_cocoer_checkpoint(Path(tmp_path, "run", "checkpoints", "last.ckpt"))
    assert ckpt["global_step"] >= 15 * 3  # every epoch ran (3 or more steps each)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    loss, mAP = numbers.get("train/loss_epoch"), numbers.get("test/mAP")
    print(f"\nsaturating run: train/loss_epoch {loss}, test/mAP {mAP}")

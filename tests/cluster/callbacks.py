"""Callbacks the cluster tests put into a job's config (the jobs import them from the
repository, which is on their PYTHONPATH): a stall that keeps a job's first run waiting
until the scheduler interrupts it, and a NaN planted on one DDP rank."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch


class Stall(L.Callback):
    """On a job's first run only (SLURM_RESTART_COUNT unset or 0): after training epoch
    ``epoch`` (its last.ckpt written), write ``stalled`` into the run directory and sleep
    ``seconds``, until the scheduler interrupts the job. Changes no number."""

    def __init__(self, epoch: int = -1, seconds: float = 900.0) -> None:
        self.epoch, self.seconds = int(epoch), float(seconds)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch != self.epoch or os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
            return
        Path(trainer.default_root_dir, "stalled").write_text(f"{trainer.current_epoch}\n")
        time.sleep(self.seconds)


class NaNOnRank(L.Callback):
    """Fill the first parameter with NaN on global rank ``rank`` before step ``step``, so
    that this rank's loss, and only this rank's, is NaN at that step (``rank < 0``: never)."""

    def __init__(self, rank: int = -1, step: int = 1) -> None:
        self.rank, self.step = int(rank), int(step)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))

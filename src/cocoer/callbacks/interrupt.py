"""Stop a run on purpose after a number of optimiser steps (tests and demos of resume)."""

from __future__ import annotations

from typing import Any

import lightning as L


class TrainingInterrupted(RuntimeError):
    """Raised by :class:`InterruptAfterSteps`; stands for a crash or a killed job."""


class InterruptAfterSteps(L.Callback):
    """Raise :class:`TrainingInterrupted` once ``trainer.global_step`` reaches ``steps``.

    Nothing is saved on the way out, exactly as when a job is killed: what survives is the
    last checkpoint written before the interruption.
    """

    def __init__(self, steps: int) -> None:
        if steps < 1:
            raise ValueError("steps must be >= 1")
        self.steps = int(steps)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        if trainer.global_step >= self.steps:
            raise TrainingInterrupted(f"interrupted after {trainer.global_step} steps")

"""Lightning callbacks of cocoer: result tables at test end, RNG state in checkpoints, the
finiteness check of the gradients, speed options (compile, channels-last), and a deliberate
interruption (for resume tests and demos)."""

from __future__ import annotations

from cocoer.callbacks.finite_gradients import FiniteGradients
from cocoer.callbacks.interrupt import InterruptAfterSteps, TrainingInterrupted
from cocoer.callbacks.result_tables import ResultTables
from cocoer.callbacks.rng_state import RNGStateCheckpoint
from cocoer.callbacks.speed import SpeedConfig, SpeedOptions

__all__ = [
    "FiniteGradients",
    "InterruptAfterSteps",
    "RNGStateCheckpoint",
    "ResultTables",
    "SpeedConfig",
    "SpeedOptions",
    "TrainingInterrupted",
]

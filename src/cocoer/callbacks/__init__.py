"""Lightning callbacks of cocoer: result tables at test end, RNG state in checkpoints, and a
deliberate interruption (for resume tests and demos), speed options (compile, channels-last)."""

from __future__ import annotations

from cocoer.callbacks.interrupt import InterruptAfterSteps, TrainingInterrupted
from cocoer.callbacks.result_tables import ResultTables
from cocoer.callbacks.rng_state import RNGStateCheckpoint
from cocoer.callbacks.speed import SpeedConfig, SpeedOptions

__all__ = [
    "InterruptAfterSteps",
    "RNGStateCheckpoint",
    "ResultTables",
    "SpeedConfig",
    "SpeedOptions",
    "TrainingInterrupted",
]

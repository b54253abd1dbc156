"""Lightning callbacks of cocoer: result tables at test end, RNG state in checkpoints, and a
deliberate interruption (for resume tests and demos)."""

from __future__ import annotations

from cocoer.callbacks.interrupt import InterruptAfterSteps, TrainingInterrupted
from cocoer.callbacks.result_tables import ResultTables
from cocoer.callbacks.rng_state import RNGStateCheckpoint

__all__ = ["InterruptAfterSteps", "RNGStateCheckpoint", "ResultTables", "TrainingInterrupted"]

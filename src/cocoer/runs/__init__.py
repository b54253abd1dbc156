"""Runs and sweeps: job bookkeeping wrapped around a task (done marker, failures,
resume), W&B run ids, the paper's reference numbers and the sweep aggregator.

(``conf/experiment/`` holds experiment configs and ``experiments/`` the scripts of the
paper's runs; this package is the machinery that runs and collects them.)"""

from __future__ import annotations

from cocoer.runs.jobs import (
    DONE,
    FAILED,
    is_done,
    mark_done,
    record_failure,
    run_job,
    task_wrapper,
)

__all__ = ["DONE", "FAILED", "is_done", "mark_done", "record_failure", "run_job", "task_wrapper"]

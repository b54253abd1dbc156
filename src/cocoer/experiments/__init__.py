"""Experiments: job bookkeeping for runs and multiruns (done marker, failures, resume),
W&B run ids, the paper's reference numbers and the sweep aggregator."""

from __future__ import annotations

from cocoer.experiments.jobs import DONE, FAILED, is_done, mark_done, record_failure, run_job

__all__ = ["DONE", "FAILED", "is_done", "mark_done", "record_failure", "run_job"]

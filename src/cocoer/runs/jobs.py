"""Bookkeeping of one run / multirun job in its directory, wrapped around the task.

:func:`run_job` / :func:`task_wrapper` wrap a task such as :func:`cocoer.train.train`
(the shape of lightning-hydra-template's ``task_wrapper``): the task knows nothing of the
bookkeeping, which depends on nothing but the task's signature ``cfg -> metrics``.

- ``done``: written (with the metrics) when a training job returned;
- ``failed.json``: the exception and traceback of a job that failed (with Hydra's
  ``.hydra/`` records if the job failed before writing its records); a job refused before it
  started (:class:`cocoer.runs.run_dir.RunDirError`: a busy or finished directory, a resume
  that does not fit) writes nothing;
- ``resume=true``: a job with a ``done`` marker is skipped (its metrics are read back), any
  other continues from its own ``checkpoints/last.ckpt`` (``ckpt_path=auto``);
- a job that SLURM requeued (``SLURM_RESTART_COUNT`` > 0: preempted, ``scontrol requeue``,
  a time limit reached) resumes in the same way, also without ``resume=true``; while SLURM
  stops a job (SIGTERM) it ends at once and writes no ``failed.json``
  (:mod:`cocoer.runs.slurm_stop`).
- the directory is locked for the job (:mod:`cocoer.runs.run_dir`): a second process there
  stops with one line, and a launch without resume into a finished directory (or one that
  holds checkpoints) is refused before anything is written; records are written atomically.

Only rank zero writes (the rank is read from the environment, so this also holds before a
trainer exists and in processes started by a DDP launcher).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, open_dict

from cocoer.runs.run_dir import RunDirError, check_relaunch, run_dir_lock
from cocoer.runs.slurm_stop import JobStopped, stop_on_sigterm
from cocoer.utils.files import atomic_write_text, loads_json, os_error_line
from cocoer.utils.provenance import write_hydra_records

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed.json"
METRICS = "metrics.json"


def is_rank_zero() -> bool:
    """True in the process of global rank zero (or without any distributed launcher)."""
    return getattr(rank_zero_only, "rank", 0) == 0


def is_done(run_dir: str | Path) -> bool:
    """Whether the job in ``run_dir`` finished (its ``done`` marker exists)."""
    return (Path(run_dir) / DONE).is_file()


def mark_done(run_dir: str | Path, metrics: dict[str, Any]) -> None:
    """Write the ``done`` marker (and drop a stale ``failed.json``); rank zero only."""
    if not is_rank_zero():
        return
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "metrics": metrics}
    atomic_write_text(out / DONE, json.dumps(info, indent=2, default=str))
    (out / FAILED).unlink(missing_ok=True)


def record_failure(run_dir: str | Path, exc: BaseException) -> Path | None:
    """Write ``failed.json`` with the exception type, message and traceback; rank zero only.
    None if it could not be written (the job's error stays the one reported)."""
    if not is_rank_zero():
        return None
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
    path = out / FAILED
    try:
        atomic_write_text(path, json.dumps(info, indent=2))
    except OSError as err:  # a full disk: the job's own error is the one to report
        log.error("could not record the failure: %s", os_error_line(err))
        return None
    return path


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a finished job (empty dict if absent)."""
    path = Path(run_dir) / METRICS
    return loads_json(path.read_bytes(), path) if path.is_file() else {}


def slurm_restarts() -> int:
    """How many times SLURM requeued this job (0 outside SLURM or on its first start)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)


Task = Callable[[DictConfig], dict[str, Any]]


def run_job(cfg: DictConfig, fn: Task, catch: bool = False) -> dict[str, Any]:
    """Run the task ``fn(cfg)`` (e.g. :func:`cocoer.train.train`) as a resumable job.

    With ``cfg.resume`` true a finished job is skipped and an unfinished one resumes from
    its ``last.ckpt``. A job that trained (``cfg.train``, default true) and returned gets
    its ``done`` marker. A failure is written to ``failed.json``; with ``catch``
    (multiruns) it is also swallowed, so the remaining jobs of a sweep still run, and the
    returned dict holds ``failed: True`` and the error. A job requeued by SLURM resumes.
    """
    run_dir = Path(cfg.paths.output_dir)
    # rank zero owns the directory: DDP processes of the same job run in it unlocked
    with run_dir_lock(run_dir) if is_rank_zero() else contextlib.nullcontext():
        return _run_locked(cfg, fn, catch, run_dir)


def _run_locked(cfg: DictConfig, fn: Task, catch: bool, run_dir: Path) -> dict[str, Any]:
    """:func:`run_job` once the directory's lock is held."""
    restarts = slurm_restarts()
    if restarts:
        log.info("SLURM requeued this job (restart %d): resuming it", restarts)
    if cfg.get("resume", False) or restarts:
        if is_done(run_dir):
            log.info("resume: %s is done, skipping it", run_dir)
            return {**read_metrics(run_dir), "skipped": True, "output_dir": str(run_dir)}
        if cfg.get("ckpt_path") is None:
            with open_dict(cfg):
                cfg.ckpt_path = "auto"
        log.info("resume: %s continues from its last.ckpt if it has one", run_dir)
    if cfg.get("train", True) and is_rank_zero():  # refused before anything is written
        check_relaunch(run_dir, bool(cfg.get("ckpt_path")), DONE)
    with stop_on_sigterm() as stopped:
        try:
            metrics = fn(cfg)
        except RunDirError as exc:  # refused before it ran: the directory keeps what it holds
            if not catch:
                raise
            log.error("job refused: %s", exc)
            return {"failed": True, "refused": True, "error": str(exc), "output_dir": str(run_dir)}
        except Exception as exc:
            if stopped():  # SLURM stops the job (requeue, preemption): not its failure
                raise JobStopped(143) from exc
            path = record_failure(run_dir, exc)
            if path is not None:  # a job that failed before its records: which job it was
                with contextlib.suppress(OSError):
                    write_hydra_records(cfg, run_dir, only_if_absent=True)
            log.error("job failed (%s: %s); recorded in %s", type(exc).__name__, exc, path)
            if not catch:
                raise
            error = f"{type(exc).__name__}: {exc}"
            return {"failed": True, "error": error, "output_dir": str(run_dir)}
        if cfg.get("train", True):
            mark_done(run_dir, metrics)
    return metrics


def task_wrapper(fn: Task, catch: bool = False) -> Task:
    """``fn`` with the job bookkeeping of :func:`run_job` around it."""

    @functools.wraps(fn)
    def wrapped(cfg: DictConfig) -> dict[str, Any]:
        return run_job(cfg, fn, catch)

    return wrapped

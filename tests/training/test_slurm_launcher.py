"""The SLURM pieces that need no cluster (the cluster itself: tests/cluster/, `make
test-cluster`): the one line of a refused submission, and a job that SLURM requeued
resuming without resume=true."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from omegaconf import DictConfig

from cocoer.runs.jobs import run_job
from cocoer.runs.slurm_stop import JobStopped
from hydra_plugins.cocoer_slurm_launcher.slurm_launcher import slurm_error_line
from tests.support.helpers import compose_config

#: what sbatch (SLURM 22.05) prints when it refuses, as submitit passes it on
REFUSED = {
    "sbatch: error: invalid partition specified: nosuch\n"
    "sbatch: error: Batch job submission failed: Invalid partition name specified\n": (
        "SLURM refused the jobs of this sweep: invalid partition specified: nosuch; "
        "Batch job submission failed: Invalid partition name specified"
    ),
    "sbatch: error: Batch job submission failed: More processors requested than permitted": (
        "SLURM refused the jobs of this sweep: "
        "Batch job submission failed: More processors requested than permitted"
    ),
    "Job 12_0 (task: 0) with path /x/12_0_0_result.pkl\nhas not produced any output "
    "(state: CANCELLED by 0)": (
        "a SLURM job of this sweep ended without a result: Job 12_0 (task: 0) with path "
        "/x/12_0_0_result.pkl"
    ),
}


@pytest.mark.parametrize("message", list(REFUSED))
def test_a_refusal_is_one_line_naming_the_reason(message: str) -> None:
    assert slurm_error_line(message) == REFUSED[message]


def test_a_requeued_job_resumes_without_the_resume_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    cfg = compose_config("train", tmp_path)
    assert not cfg.resume and cfg.ckpt_path is None
    seen = {}

    def task(c: DictConfig) -> dict:
        seen["ckpt_path"] = c.ckpt_path
        return {}

    run_job(cfg, task)  # a first start: nothing changes
    assert seen["ckpt_path"] is None
    (Path(cfg.paths.output_dir) / "done").unlink()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    run_job(cfg, task)
    assert seen["ckpt_path"] == "auto"

    def must_not_run(_: DictConfig) -> dict:
        raise AssertionError("a finished job was run again")

    assert run_job(cfg, must_not_run)["skipped"]  # done (by the run above): skipped


def test_a_job_that_slurm_stops_ends_at_once_and_is_not_recorded_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    cfg = compose_config("train", tmp_path)
    run = Path(cfg.paths.output_dir)
    before = signal.getsignal(signal.SIGTERM)
    reached = []

    def stopped(_: DictConfig) -> dict:
        os.kill(os.getpid(), signal.SIGTERM)  # what SLURM sends first
        reached.append("after the signal")
        return {}

    def fails_because_stopped(_: DictConfig) -> dict:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except SystemExit:  # e.g. the W&B service, gone with the stop, fails the next call
            raise RuntimeError("Connection lost") from None
        return {}

    for task in (stopped, fails_because_stopped):
        with pytest.raises(JobStopped) as info:
            run_job(cfg, task, catch=True)
        assert info.value.code == 143
        assert not (run / "failed.json").exists() and not (run / "done").exists()
        assert signal.getsignal(signal.SIGTERM) is before
    assert reached == []

    monkeypatch.delenv("SLURM_JOB_ID")  # outside SLURM: a failure as any other
    out = run_job(cfg, _fails, catch=True)
    assert out["failed"] and (run / "failed.json").is_file()


def _fails(_: DictConfig) -> dict:
    raise RuntimeError("Connection lost")

"""Interrupted SLURM jobs resume: one requeued by `scontrol requeue` (what a preemption
does) and one that reaches its time limit (submitit requeues it on the warning signal)
continue from their last.ckpt in the same directory and the same W&B run, without
resume=true, and end with the weights of the same job run without interruption."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from cocoer.checkpoint.safe_load import load_cocoer_checkpoint
from cocoer.runs.wandb_run import ID_FILE
from tests.cluster.sweeps import (
    completed_job,
    job_dir,
    job_fields,
    job_log,
    scontrol,
    slurm_id,
    start_sweep,
    sweep_dir,
    wait_for,
    wait_until,
    write_experiment,
)

pytestmark = pytest.mark.cluster

EPOCHS = 5
STALL = 2  # the interrupted jobs stall after this epoch on their first run
COMMON = [f"trainer.max_epochs={EPOCHS}", "test=false", "logger=wandb"]
#: the warning signal (submitit's USR2, on which it requeues the job) 60 s before the time
#: limit; a limit of at most 10 minutes counts as reached for submitit whenever it comes.
#: Once the job has stalled the test shortens its limit (`scontrol update`) to one minute
#: past its run time, so the job reaches it within about two minutes however slow the
#: machine was (slurmctld checks limits every 30 s); requeued, it gets 30 minutes back.
#: SLURM checks time limits and warning signals periodically (about once a minute): the
#: warning comes 120 s before the limit, so that at least one check falls between them.
TIME_LIMIT = ["hydra.launcher.timeout_min=10", "hydra.launcher.signal_delay_s=120"]


def _limit_at_run_time_plus_a_minute(slurm: dict[str, str], job_id: str) -> None:
    run_time = job_fields(slurm, job_id)["RunTime"]  # [D-]HH:MM:SS
    days, _, hms = run_time.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    minutes = int(days or 0) * 1440 + h * 60 + m + (1 if s else 0) + 2
    scontrol(slurm, "update", f"JobId={job_id}", f"TimeLimit={minutes}")


def _finish(proc: subprocess.Popen, log: Path) -> None:
    try:
        assert proc.wait(timeout=1800) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def _assert_resumed(slurm: dict[str, str], sweep: Path, job: Path, reference: Path) -> None:
    _, log = completed_job(slurm, sweep, job, Restarts="1")
    assert "SLURM requeued this job (restart 1): resuming it" in log, log[-3000:]
    last = job / "checkpoints" / "last.ckpt"
    assert f"Restoring states from the checkpoint path at {last}" in log, log[-3000:]
    assert (job / "stalled").read_text().strip() == str(STALL)
    assert (job / "done").is_file()
    # the same W&B run: both runs of the job wrote offline runs with the stored id
    run_id = (job / ID_FILE).read_text().strip()
    offline = sorted(p.name for p in (job / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(n.endswith(f"-{run_id}") for n in offline), offline
    a = load_cocoer_checkpoint(reference / "checkpoints" / "last.ckpt")
    b = load_cocoer_checkpoint(last)
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"] == EPOCHS - 1
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_requeued_and_timed_out_jobs_resume_to_the_uninterrupted_weights(
    slurm: dict[str, str], tmp_path: Path, tiny_emotic_root: Path
) -> None:
    conf = write_experiment(tmp_path, tiny_emotic_root)
    # sweep "preempt": the uninterrupted reference (no stall) and the job to requeue;
    # sweep "limit": the same job under a time limit, started at the same time
    logs = tmp_path / "preempt.log", tmp_path / "limit.log"
    preempt = start_sweep(
        conf, tmp_path, slurm, logs[0], *COMMON, "sweep_name=preempt",
        f"callbacks.stall.epoch=-1,{STALL}",
    )  # fmt: skip
    limit = start_sweep(
        conf, tmp_path, slurm, logs[1], *COMMON, *TIME_LIMIT, "sweep_name=limit",
        f"callbacks.stall.epoch={STALL}",
    )  # fmt: skip
    try:
        sweeps = sweep_dir(tmp_path, "preempt"), sweep_dir(tmp_path, "limit")
        reference = job_dir(sweeps[0], "callbacks.stall.epoch=-1", "test=False")
        requeued = job_dir(sweeps[0], f"callbacks.stall.epoch={STALL}", "test=False")
        timed_out = job_dir(sweeps[1], f"callbacks.stall.epoch={STALL}", "test=False")
        wait_for(requeued / "stalled", preempt)
        assert not (requeued / "done").exists()
        scontrol(slurm, "requeue", slurm_id(requeued))
        wait_for(timed_out / "stalled", limit)
        limited = slurm_id(timed_out)
        _limit_at_run_time_plus_a_minute(slurm, limited)
        # the warning SLURM sends signal_delay_s before the limit (its periodic check can
        # deliver it together with the kill on this one-node cluster): sent now, as SLURM would
        warn = subprocess.run(
            ["scancel", "--signal=USR2", limited], env=slurm, capture_output=True, text=True
        )
        assert warn.returncode == 0, warn.stderr
        # once requeued, the job gets its time back (the limit counts from each start)
        wait_until(lambda: job_fields(slurm, limited)["Restarts"] == "1", limit)
        scontrol(slurm, "update", f"JobId={limited}", "TimeLimit=30")
        _finish(preempt, logs[0])
        _finish(limit, logs[1])
    finally:
        for proc in (preempt, limit):
            if proc.poll() is None:
                proc.kill()
    assert "this job is timed-out" in job_log(sweeps[1], slurm_id(timed_out))
    _assert_resumed(slurm, sweeps[0], requeued, reference)
    _assert_resumed(slurm, sweeps[1], timed_out, reference)

"""A sweep through `hydra/launcher=submitit_slurm` on the one-node test cluster: every job
is a SLURM job that writes its done marker and metrics, a failing job leaves failed.json
while the others finish, `cocoer-aggregate` reads the sweep, and a relaunch with
resume=true skips the finished jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.sweeps import (
    final_fields,
    job_log,
    run_sweep,
    slurm_id,
    sweep_dir,
    write_experiment,
)
from tests.support.sweeps import aggregate_alpha_sweep

pytestmark = pytest.mark.cluster


def test_sweep_runs_as_slurm_jobs_fails_one_aggregates_and_skips_done_jobs(
    slurm: dict[str, str], tmp_path: Path, tiny_emotic_root: Path
) -> None:
    conf = write_experiment(tmp_path, tiny_emotic_root)
    # alpha = -1 is refused when the job validates its config: that job fails on its own
    args = ["hparams_search=smoke_alpha", "sweep_name=ab", "model.loss.alpha=0.0,0.1,-1.0"]
    first = run_sweep(conf, tmp_path, slurm, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    sweep = sweep_dir(tmp_path, "ab")
    jobs = {a: sweep / f"model.loss.alpha={a}" for a in ("0.0", "0.1", "-1.0")}
    ids = {a: slurm_id(job) for a, job in jobs.items()}
    assert len(set(ids.values())) == 3 and all("_" in i for i in ids.values()), ids  # array
    for a in ("0.0", "0.1"):
        fields = final_fields(slurm, ids[a])
        assert fields["JobState"] == "COMPLETED" and fields["Partition"] == "debug", fields
        assert (jobs[a] / "done").is_file(), job_log(sweep, ids[a])[-3000:]
        assert "test/mAP" in json.loads((jobs[a] / "metrics.json").read_text())
    failed = json.loads((jobs["-1.0"] / "failed.json").read_text())
    assert "alpha" in failed["message"] and "\n" not in failed["message"]
    assert not (jobs["-1.0"] / "done").exists()

    aggregate_alpha_sweep(sweep, tmp_path / "summary", jobs)

    # relaunch: the finished jobs are new SLURM jobs that skip (their markers unchanged)
    done_before = {a: (jobs[a] / "done").read_text() for a in ("0.0", "0.1")}
    again = run_sweep(conf, tmp_path, slurm, *args, "resume=true")
    assert again.returncode == 0, again.stderr[-3000:]
    for a in ("0.0", "0.1"):
        # a skipped job leaves its records (.hydra included) as they were: its new SLURM
        # job is found by its log
        assert slurm_id(jobs[a]) == ids[a]
        skipped = f"resume: already done, skipped {jobs[a]}"
        new_ids = [
            d.name for d in (sweep / ".submitit").iterdir() if skipped in job_log(sweep, d.name)
        ]
        assert len(new_ids) == 1 and new_ids[0] != ids[a], new_ids
        assert (jobs[a] / "done").read_text() == done_before[a]
    assert (jobs["-1.0"] / "failed.json").is_file()

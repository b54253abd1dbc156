"""DDP across SLURM tasks: a job with 2 tasks (srun; Lightning's SLURM environment; gloo on
CPU) trains to the metrics of the same training in one process, and a NaN on one rank
stops both ranks with one line.

Full-batch training makes the two runs the same computation: every step sees the whole
training set (one batch of 24 in one process; 12 per rank in DDP, whose gradient
all-reduce averages the two halves), without augmentation. They differ only in the order
of floating-point sums, so the metrics agree to TOL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.sweeps import (
    final_fields,
    job_dir,
    job_log,
    run_sweep,
    slurm_id,
    sweep_dir,
    sweep_env,
    write_experiment,
)
from tests.helpers import TINY_DATA

pytestmark = pytest.mark.cluster

N_TRAIN = TINY_DATA["n_train"]
EPOCHS = 3
#: metrics compared: the last training loss and the validation mAP (in points)
TOL = {"train/loss": 1e-4, "val/mAP": 1e-2}
FULL_BATCH = [f"trainer.max_epochs={EPOCHS}", "data.augment.enabled=false", "test=false"]
DDP = ["hydra.launcher.tasks_per_node=2", "trainer=ddp_cpu", f"data.batch_size={N_TRAIN // 2}"]
#: what names the DDP jobs' directories besides the swept value
NAMED_BY = ["data.augment.enabled=False", f"data.batch_size={N_TRAIN // 2}", "test=False"]


def test_two_task_ddp_job_matches_one_process_and_a_nan_on_one_rank_stops_both(
    slurm: dict[str, str], tmp_path: Path, tiny_emotic_root: Path
) -> None:
    conf = write_experiment(tmp_path, tiny_emotic_root)
    # the same training in one process (outside SLURM), the reference
    single_dir = tmp_path / "single"
    single = subprocess.Popen(
        [
            sys.executable, "-m", "cocoer.cli.train", f"hydra.searchpath=[file://{conf}]",
            "experiment=cluster_tiny", *FULL_BATCH, f"data.batch_size={N_TRAIN}",
            f"hydra.run.dir={single_dir}",
        ],
        cwd=tmp_path,
        env={k: v for k, v in sweep_env(slurm, tmp_path).items() if not k.startswith("SLURM")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # two 2-task jobs: a clean one, and one whose rank 1 gets a NaN before step 1
    out = run_sweep(
        conf, tmp_path, slurm, *FULL_BATCH, *DDP, "sweep_name=ddp", "callbacks.nan.rank=-1,1"
    )
    _, err = single.communicate(timeout=600)
    assert single.returncode == 0, err[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = sweep_dir(tmp_path, "ddp")
    clean = job_dir(sweep, "callbacks.nan.rank=-1", *NAMED_BY)
    poisoned = job_dir(sweep, "callbacks.nan.rank=1", *NAMED_BY)

    job_id = slurm_id(clean)
    fields = final_fields(slurm, job_id)
    assert fields["JobState"] == "COMPLETED" and fields["NumTasks"] == "2", fields
    log = job_log(sweep, job_id)
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log, log[-3000:]
    ddp = json.loads((clean / "metrics.json").read_text())
    ref = json.loads((single_dir / "metrics.json").read_text())
    for key, tol in TOL.items():
        assert ddp[key] == pytest.approx(ref[key], abs=tol), (key, ddp[key], ref[key])

    # the NaN: both ranks stop at that step with the same one line; the job ends
    job_id = slurm_id(poisoned)
    assert final_fields(slurm, job_id)["JobState"] == "COMPLETED"
    line = "non-finite loss at step 1 (epoch 1) on rank 1: "
    message = json.loads((poisoned / "failed.json").read_text())["message"]
    assert message.startswith(line) and "\n" not in message, message
    assert "training stopped, the last saved checkpoint is kept" in message
    for task in (0, 1):
        task_log = "".join(
            p.read_text() for p in (sweep / ".submitit" / job_id).glob(f"*_{task}_log.*")
        )
        assert f"job failed: NonFiniteLossError: {message}" in task_log, (task, task_log[-3000:])
    assert not (poisoned / "done").exists()

"""DDP across SLURM tasks: a job with 2 tasks (srun; Lightning's SLURM environment; gloo on
CPU) trains to the metrics of the same training in one process, and a NaN on one rank
stops both ranks with one line.

Full-batch training makes the two runs the same computation: every step sees the whole
training set (one batch of 24 persons in one process; 12 per rank in DDP, whose gradient
all-reduce averages the two halves), without augmentation, without EMOTIC's dynamic class
weights and with each image's own BatchNorm statistics (``backbone_norm=per_sample``):
batch-dependent weights and statistics would be per rank in DDP. On data with one
person per image (24 / 8 persons: the splits halve exactly, no rank is padded with a
repeated person). They differ only in the order of floating-point sums, so the metrics
agree to TOL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.sweeps import (
    completed_job,
    final_fields,
    job_dir,
    run_sweep,
    slurm_id,
    sweep_dir,
    sweep_env,
    write_experiment,
)
from tests.support.helpers import TINY_DATA

pytestmark = pytest.mark.cluster

N_TRAIN = TINY_DATA["n_train"]  # images = persons (one person per image)
EPOCHS = 3
#: metrics compared (gathered over the ranks): the validation loss and mAP (in points)
TOL = {"val/loss": 1e-4, "val/mAP": 1e-2}
FULL_BATCH = [
    f"trainer.max_epochs={EPOCHS}",
    "data.augment.enabled=false",
    "model.loss.dynamic_weights=false",
    "model.net.hfe.backbone_norm=per_sample",
    "test=false",
]
DDP = ["hydra.launcher.tasks_per_node=2", "trainer=ddp_cpu", f"data.batch_size={N_TRAIN // 2}"]
#: what names the DDP jobs' directories besides the swept value
NAMED_BY = [
    "data.augment.enabled=False",
    f"data.batch_size={N_TRAIN // 2}",
    "model.loss.dynamic_weights=False",
    "model.net.hfe.backbone_norm=per_sample",
    "test=False",
]


@pytest.fixture(scope="module")
def one_person_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset with one person per image."""
    from cocoer.data import generate_emotic

    root = tmp_path_factory.mktemp("emotic_one_person")
    generate_emotic(root, **TINY_DATA, multi_person_rate=0.0)
    return root


def test_two_task_ddp_job_matches_one_process_and_a_nan_on_one_rank_stops_both(
    slurm: dict[str, str], tmp_path: Path, one_person_root: Path
) -> None:
    conf = write_experiment(tmp_path, one_person_root)
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

    _, log = completed_job(slurm, sweep, clean, NumTasks="2")
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log, log[-3000:]
    ddp = json.loads((clean / "metrics.json").read_text())
    ref = json.loads((single_dir / "metrics.json").read_text())
    for key, tol in TOL.items():
        assert ddp[key] == pytest.approx(ref[key], abs=tol), (key, ddp[key], ref[key])

    # the NaN: both ranks stop at that step (each says so on one line); the job ends
    job_id = slurm_id(poisoned)
    assert final_fields(slurm, job_id)["JobState"] == "COMPLETED"
    at = "non-finite loss at step 1 (epoch 1) on rank"
    message = json.loads((poisoned / "failed.json").read_text())["message"]
    assert message.startswith(f"{at}(s) 1; training stopped on every rank"), message
    assert "\n" not in message
    for task, says in ((0, f"{at}(s) 1; "), (1, f"{at} 1: L_c=nan")):
        task_log = "".join(
            p.read_text() for p in (sweep / ".submitit" / job_id).glob(f"*_{task}_log.*")
        )
        failed = [ln for ln in task_log.splitlines() if ln.startswith("job failed: ")]
        assert len(failed) == 1, (task, task_log[-3000:])
        assert failed[0].startswith(f"job failed: NonFiniteLossError: {says}"), failed
    assert not (poisoned / "done").exists()

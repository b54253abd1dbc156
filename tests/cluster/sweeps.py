"""What the cluster tests share: a tiny experiment config, the launcher overrides of the
test cluster, `cocoer-train -m` on it, and reading a job's SLURM id, state and logs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from tests.support import sweeps as support_sweeps

REPO = Path(__file__).resolve().parents[2]

#: the test callbacks of every job (no stall, no NaN unless a sweep sets their step/rank)
CALLBACKS = """  stall:
    _target_: tests.cluster.callbacks.Stall
    epoch: -1
  nan:
    _target_: tests.cluster.callbacks.NaNOnRank
    rank: -1
"""

#: the launcher on the test cluster: its one partition, one CPU and no GPU per task
LAUNCHER = [
    "hydra/launcher=submitit_slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=20",
]


def write_experiment(tmp: Path, data_root: Path) -> Path:
    """A config dir holding ``experiment/cluster_tiny.yaml``: the tiny model on the tiny
    data, deterministic on CPU, with the test callbacks; returns the dir."""
    trainer = "  deterministic: true\n"
    return support_sweeps.write_experiment(tmp, data_root, "cluster_tiny", trainer, CALLBACKS)


def sweep_command(conf: Path, *args: str) -> list[str]:
    """``cocoer-train -m`` on the test cluster with the tiny experiment."""
    return [
        sys.executable,
        "-m",
        "cocoer.cli.train",
        "-m",
        f"hydra.searchpath=[file://{conf}]",
        "experiment=cluster_tiny",
        *LAUNCHER,
        *args,
    ]


def sweep_env(slurm: dict[str, str], root: Path) -> dict[str, str]:
    """The cluster's environment, plus what the jobs inherit through sbatch: the repository
    on PYTHONPATH (the test callbacks), the sweep root and offline W&B."""
    path = os.pathsep.join(p for p in (str(REPO), slurm.get("PYTHONPATH", "")) if p)
    env = {**slurm, "PYTHONPATH": path, "COCOER_ROOT": str(root), "WANDB_MODE": "offline"}
    for key in ("WANDB_API_KEY", "SLURM_JOB_ID", "SLURM_RESTART_COUNT"):
        env.pop(key, None)
    for key in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        env[key] = str(root / key.lower())
    return env


def run_sweep(
    conf: Path, root: Path, slurm: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``cocoer-train -m`` on the test cluster (:func:`sweep_command`), to its end."""
    return subprocess.run(
        **_in_sweep_env(conf, root, slurm, args), capture_output=True, text=True, timeout=1800
    )


def start_sweep(
    conf: Path, root: Path, slurm: dict[str, str], log: Path, *args: str
) -> subprocess.Popen:
    """:func:`run_sweep` in the background, its output into ``log``."""
    out = open(log, "w")  # noqa: SIM115 - the child holds it; closed when the test ends
    return subprocess.Popen(
        **_in_sweep_env(conf, root, slurm, args), stdout=out, stderr=subprocess.STDOUT, text=True
    )


def _in_sweep_env(
    conf: Path, root: Path, slurm: dict[str, str], args: tuple[str, ...]
) -> dict[str, Any]:
    return {"args": sweep_command(conf, *args), "cwd": root, "env": sweep_env(slurm, root)}


def sweep_dir(root: Path, name: str) -> Path:
    return root / "logs" / "train" / "multiruns" / name


def job_dir(sweep: Path, *overrides: str) -> Path:
    """A job's directory: Hydra's ``override_dirname`` of the overrides that name it
    (sorted, comma-joined; booleans as Python writes them; conf/hydra/default.yaml)."""
    return sweep / ",".join(sorted(overrides))


def slurm_id(job: Path) -> str:
    """The SLURM id (``ARRAY_TASK``) of a multirun job, from Hydra's record of the job."""
    return str(OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.job.id)


def scontrol(slurm: dict[str, str], *args: str) -> str:
    out = subprocess.run(["scontrol", *args], env=slurm, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def job_fields(slurm: dict[str, str], job_id: str) -> dict[str, str]:
    """``scontrol show job`` of one job as a dict (JobState, Restarts, NumTasks...)."""
    text = scontrol(slurm, "show", "job", "-o", job_id)
    return dict(f.split("=", 1) for f in text.split() if "=" in f)


def final_fields(slurm: dict[str, str], job_id: str, timeout: float = 60) -> dict[str, str]:
    """:func:`job_fields` once the job has ended (its result can come before its end)."""
    deadline = time.monotonic() + timeout
    while True:
        fields = job_fields(slurm, job_id)
        if fields["JobState"] not in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED"):
            return fields
        assert time.monotonic() < deadline, fields
        time.sleep(0.5)


def completed_job(slurm: dict[str, str], sweep: Path, job: Path, **want: str) -> tuple[str, str]:
    """The SLURM id and the log of the multirun job in ``job``, once it ended COMPLETED with
    the ``scontrol`` fields ``want`` (``Restarts="1"``, ``NumTasks="2"``...)."""
    job_id = slurm_id(job)
    fields = final_fields(slurm, job_id)
    assert fields["JobState"] == "COMPLETED", fields
    assert {k: fields[k] for k in want} == want, fields
    return job_id, job_log(sweep, job_id)


def job_log(sweep: Path, job_id: str) -> str:
    """stdout and stderr of every task of a SLURM job (submitit's files)."""
    folder = sweep / ".submitit" / job_id
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*_log.*")))


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 1200) -> None:
    """Until ``path`` exists (the sweep command ``proc`` still running)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the sweep ended before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.2)


def wait_until(check: Callable[[], bool], proc: subprocess.Popen, timeout: float = 1200) -> None:
    """Until ``check()`` holds (the sweep command ``proc`` still running)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, "the sweep ended first"
        assert time.monotonic() < deadline, f"not reached in {timeout} s"
        time.sleep(0.5)

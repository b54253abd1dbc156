"""Sweeps on SLURM: hydra-submitit-launcher's SLURM launcher, reporting a submission the
scheduler refuses (or a job that ends without a result) on one line.

``conf/hydra/launcher/submitit_slurm.yaml`` points Hydra at :class:`SlurmLauncher` (Hydra
takes launchers only from the ``hydra_plugins`` package and imports every module of it at
start: this one imports nothing heavy). The plugin submits one SLURM job per multirun job
(an array job) and waits for their results. What the scheduler says when it refuses the
jobs (``sbatch: error: ...``: an unknown partition, more CPUs than a node has) ends
``cocoer-train -m`` with one line on stderr and exit status 2 instead of a traceback. A
requeued job (preemption, ``scontrol requeue``, a time limit reached with
``max_num_timeout`` left) runs the same job again in the same directory, where
:func:`cocoer.runs.jobs.run_job` resumes it from its ``last.ckpt``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as _SubmititSlurmLauncher,
)

from cocoer.errors import CocoerError

PROG = "cocoer-train"


class SlurmJobError(CocoerError):
    """SLURM refused the sweep's jobs, or a job ended without a result."""


def slurm_error_line(message: str) -> str:
    """One line from submitit's error text: the ``error:`` lines of ``sbatch`` joined
    (a refused submission), else the first non-empty line (a job without a result)."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    reasons = [ln.split("error:", 1)[1].strip() for ln in lines if "error:" in ln]
    if reasons:
        return "SLURM refused the jobs of this sweep: " + "; ".join(reasons)
    return "a SLURM job of this sweep ended without a result: " + (lines[0] if lines else "?")


class SlurmLauncher(_SubmititSlurmLauncher):
    """The plugin's ``SlurmLauncher``; a refusal or a lost job is one line, exit status 2.

    The jobs already submitted keep running on the cluster; relaunching the sweep with the
    same ``sweep_name`` and ``resume=true`` skips the finished ones.
    """

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from submitit.core.utils import UncompletedJobError

        try:
            return super().launch(job_overrides, initial_job_idx)
        except UncompletedJobError as exc:  # FailedJobError (a refused sbatch) included
            err = SlurmJobError(slurm_error_line(str(exc)))
            print(f"{PROG}: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

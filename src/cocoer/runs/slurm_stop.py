"""A SLURM job that SLURM stops (SIGTERM: a requeue, a preemption, ``scancel``, a time limit
passed) ends at once, and its end is not recorded as a failure of the job.

SLURM sends SIGTERM to every process of the job, waits ``KillWait`` seconds, then sends
SIGKILL. Meanwhile a job that goes on could fail for a reason that is only the stop
(the W&B service, also a process of the job, is gone) and write ``failed.json`` and a
result: the sweep would read the job as failed while SLURM runs it again. Inside
:func:`stop_on_sigterm` SIGTERM raises :class:`JobStopped` (a ``SystemExit``, which
:func:`cocoer.runs.jobs.run_job` does not record); Lightning's own SIGTERM handler, set up
during ``fit``, calls this one after its own.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


class JobStopped(SystemExit):
    """SLURM is stopping this job (SIGTERM); exit status 143 = 128 + SIGTERM."""


def in_slurm_job() -> bool:
    """Whether this process runs inside a SLURM job (batch script or ``srun`` task)."""
    return "SLURM_JOB_ID" in os.environ


@contextmanager
def stop_on_sigterm() -> Iterator[Callable[[], bool]]:
    """Inside a SLURM job and in the main thread, SIGTERM raises :class:`JobStopped`;
    yields a function telling whether SIGTERM came (elsewhere: nothing changes, and the
    function answers False)."""
    received = threading.Event()
    if not in_slurm_job() or threading.current_thread() is not threading.main_thread():
        yield received.is_set
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.set()
        raise JobStopped(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received.is_set
    finally:
        signal.signal(signal.SIGTERM, previous)

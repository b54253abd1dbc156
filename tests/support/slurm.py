"""The processes of the cluster tests' one-node SLURM cluster (tests/cluster/conftest.py
starts and stops it): its daemons' PIDs, the job-step daemons it left, whether a PID lives."""

from __future__ import annotations

import os
from pathlib import Path


def daemon_pids(state: Path) -> dict[str, int]:
    """PIDs of the test cluster's daemons, from their PID files in its state folder."""
    files = {
        "slurmctld": state / "slurmctld.pid",
        "slurmd": state / "slurmd.pid",
        "munged": state / "munge" / "munged.pid",
    }
    return {name: int(f.read_text()) for name, f in files.items() if f.is_file()}


def slurmstepd_pids(conf: Path) -> set[int]:
    """PIDs of the running ``slurmstepd`` processes (the daemons that run a job's steps) of
    the cluster configured by ``conf`` (they inherit slurmd's SLURM_CONF)."""
    out = set()
    mark = f"SLURM_CONF={conf}".encode()
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != "slurmstepd":
                continue
            if mark in (comm.parent / "environ").read_bytes().split(b"\0"):
                out.add(int(comm.parent.name))
        except OSError:  # the process ended meanwhile
            continue
    return out


def is_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

"""The one-node SLURM cluster of the cluster tests: started once per session by
``tests/cluster/slurm_up.sh`` and stopped by ``slurm_down.sh`` (its daemons, by their PIDs);
the tests then check that none of them is left."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.slurm import daemon_pids, is_alive, slurmstepd_pids

HERE = Path(__file__).resolve().parent

#: exit status of slurm_up.sh when SLURM is missing and cannot be installed here
CANNOT_INSTALL = 3


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment (SLURM_CONF, PATH with the test ``sacct``) of a running cluster."""
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run(
        [str(HERE / "slurm_up.sh"), str(state)], capture_output=True, text=True, timeout=900
    )
    if up.returncode == CANNOT_INSTALL:
        pytest.skip(up.stderr.strip().splitlines()[-1])
    assert up.returncode == 0, up.stdout + up.stderr
    pids = daemon_pids(state)
    assert set(pids) == {"slurmctld", "slurmd", "munged"}, pids
    env = {
        **os.environ,
        "SLURM_CONF": str(state / "slurm.conf"),
        "PATH": f"{HERE / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    try:
        yield env
    finally:
        down = subprocess.run(
            [str(HERE / "slurm_down.sh"), str(state)], capture_output=True, text=True, timeout=120
        )
        left = {name: pid for name, pid in pids.items() if is_alive(pid)}
        left.update({f"slurmstepd {pid}": pid for pid in slurmstepd_pids(state / "slurm.conf")})
        assert down.returncode == 0 and not left, (left, down.stderr)


@pytest.fixture(autouse=True)
def _cancel_jobs_after(slurm: dict[str, str]) -> Iterator[None]:
    """After each test, no job of it is left on the cluster (also when the test failed)."""
    yield
    subprocess.run(["scancel", "--full", "--user=root"], env=slurm, timeout=60, check=False)
    for _ in range(120):
        queue = subprocess.run(["squeue", "-h"], env=slurm, capture_output=True, text=True)
        if not queue.stdout.strip():
            return
        time.sleep(0.5)

"""A sweep that the scheduler refuses (an unknown partition, more CPUs than the node has)
ends `cocoer-train -m` with one line naming SLURM's reason and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.sweeps import run_sweep, write_experiment

pytestmark = pytest.mark.cluster

CASES = {
    "hydra.launcher.partition=nosuch": "Invalid partition name specified",
    "hydra.launcher.cpus_per_task=64": "More processors requested than permitted",
}


@pytest.mark.parametrize("override", list(CASES))
def test_a_refused_sweep_ends_with_one_line_naming_the_reason(
    slurm: dict[str, str], tmp_path: Path, tiny_emotic_root: Path, override: str
) -> None:
    conf = write_experiment(tmp_path, tiny_emotic_root)
    out = run_sweep(conf, tmp_path, slurm, "sweep_name=refused", "seed=0,1", override)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("cocoer-train: error: SLURM refused the jobs of this sweep: ")
    assert CASES[override] in lines[-1]
    assert "Traceback" not in out.stderr

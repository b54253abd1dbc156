"""Simulated DDP (trainer=ddp_sim: 2 CPU processes, gloo): trains and tests, and only rank
zero writes the run directory."""

from __future__ import annotations

import json
from pathlib import Path

from cocoer.runs.jobs import run_job
from cocoer.train import train
from tests.support.helpers import TINY_OVERRIDES, compose_config


def test_ddp_sim_trains_and_only_rank_zero_writes(tmp_path: Path, tiny_emotic_root: Path) -> None:
    cfg = compose_config(
        "train", tmp_path, tiny_emotic_root, [*TINY_OVERRIDES, "trainer=ddp_sim", "logger=csv"]
    )
    metrics = run_job(cfg, train)
    run = Path(cfg.paths.output_dir)
    assert 0.0 <= metrics["test/mAP"] <= 100.0
    assert (run / "done").is_file() and json.loads((run / "metrics.json").read_text())
    assert (run / "checkpoints" / "last.ckpt").is_file()
    # one run directory, one CSV log, one copy of each table
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["run"]
    assert len(list(run.rglob("metrics.csv"))) == 1
    assert len(list(run.rglob("first_excluded.csv"))) == 1

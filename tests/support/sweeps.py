"""What the multirun tests share (local and on the test SLURM cluster): the tiny experiment
as a config file, so that a job's directory is named by its swept values only (an
``experiment=...`` override would be part of it), and ``cocoer-aggregate`` on an alpha sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support.helpers import TINY_OVERRIDES

#: TINY_OVERRIDES as an experiment file; ``trainer`` and ``callbacks`` add indented lines
TINY_EXPERIMENT = """# @package _global_
defaults:
  - smoke
data:
  root: {root}
  synthetic: null
{data}
model:
  net:
    d: 16
    vi:
      clip_weights_path: null
    hfe:
      tiny_width: 8
      d_h: 16
trainer:
  max_epochs: 1
  log_every_n_steps: 1
{trainer}extras:
  print_config: false
callbacks:
  model_summary: null
  progress_bar: null
{callbacks}"""


def write_experiment(
    tmp: Path, data_root: Path, name: str, trainer: str = "", callbacks: str = ""
) -> Path:
    """A config dir holding ``experiment/{name}.yaml`` (the tiny run on ``data_root``);
    returns the dir, for ``hydra.searchpath=[file://...]``."""
    data = "".join(
        f"  {o.split('=')[0].split('.', 1)[1]}: {o.split('=')[1]}\n"
        for o in TINY_OVERRIDES
        if o.startswith("data.")
    )
    conf = tmp / "conf"
    (conf / "experiment").mkdir(parents=True, exist_ok=True)
    text = TINY_EXPERIMENT.format(root=data_root, data=data, trainer=trainer, callbacks=callbacks)
    (conf / "experiment" / f"{name}.yaml").write_text(text)
    return conf


def aggregate_alpha_sweep(
    sweep: Path, summary: Path, jobs: dict[str, Path]
) -> subprocess.CompletedProcess[str]:
    """``cocoer-aggregate`` on a sweep of ``model.loss.alpha`` over 0.0, 0.1 (finished) and
    -1.0 (failed; ``jobs`` maps each value to its directory): the alpha table has the two
    finished jobs, the 0.1 row the job's own test mAP, and the tables mention the failure."""
    agg = subprocess.run(
        [sys.executable, "-m", "cocoer.cli.aggregate", str(sweep), "--out", str(summary)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert agg.returncode == 0, agg.stderr[-3000:]
    table = pd.read_csv(summary / "alpha.csv")
    assert list(table["alpha"]) == [0.0, 0.1] and list(table["n"]) == [1, 1]
    ours = json.loads((jobs["0.1"] / "metrics.json").read_text())["test/mAP"]
    assert float(table["ours mAP"][1]) == pytest.approx(ours, abs=0.006)
    assert "failed" in (summary / "tables.md").read_text().lower()
    return agg

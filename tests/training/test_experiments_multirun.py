"""A real multirun through `cocoer-train -m` (subprocess): stable job directories named by
the overrides, `done` markers, a failing job recorded without stopping the sweep, a resumed
relaunch that skips finished jobs and continues unfinished ones from their last.ckpt, and
`cocoer-aggregate` on the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import TINY_OVERRIDES

#: TINY_OVERRIDES as an experiment file, so that the job directories are named by the swept
#: value only (experiment=... is not part of a job's directory name)
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
extras:
  print_config: false
callbacks:
  model_summary: null
  progress_bar: null
"""


def _experiment(tmp: Path, data_root: Path) -> Path:
    data = "".join(
        f"  {o.split('=')[0].split('.', 1)[1]}: {o.split('=')[1]}\n"
        for o in TINY_OVERRIDES
        if o.startswith("data.")
    )
    conf = tmp / "conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "experiment" / "tiny_test.yaml").write_text(
        TINY_EXPERIMENT.format(root=data_root, data=data)
    )
    return conf


def cocoer_train(args: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COCOER_ROOT": str(root), "HYDRA_FULL_ERROR": "1"}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "cocoer.cli.train", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_multirun_jobs_resume_failures_and_aggregate(
    tmp_path: Path, tiny_emotic_root: Path
) -> None:
    conf = _experiment(tmp_path, tiny_emotic_root)
    base = [
        "-m",
        f"hydra.searchpath=[file://{conf}]",
        "experiment=tiny_test",
        "hparams_search=smoke_alpha",
        "sweep_name=ab",
    ]
    first = cocoer_train([*base, "model.loss.alpha=0.0,0.1,-1.0"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    sweep = tmp_path / "logs" / "train" / "multiruns" / "ab"
    jobs = {a: sweep / f"model.loss.alpha={a}" for a in ("0.0", "0.1", "-1.0")}
    for a in ("0.0", "0.1"):
        assert (jobs[a] / "done").is_file(), a
        assert "test/mAP" in json.loads((jobs[a] / "metrics.json").read_text())
        assert (jobs[a] / "checkpoints" / "last.ckpt").is_file()
    failed = json.loads((jobs["-1.0"] / "failed.json").read_text())
    assert "alpha" in failed["message"] and "Traceback" in failed["traceback"]
    assert not (jobs["-1.0"] / "done").exists()

    # relaunch: 0.0 is done (skipped), 0.1 lost its marker (continues from its last.ckpt)
    done_before = (jobs["0.0"] / "done").read_text()
    (jobs["0.1"] / "done").unlink()
    again = cocoer_train([*base, "model.loss.alpha=0.0,0.1,-1.0", "resume=true"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    out = again.stdout + again.stderr
    assert f"skipped {jobs['0.0']}" in out
    assert (
        f"Restoring states from the checkpoint path at {jobs['0.1']}/checkpoints/last.ckpt" in out
    )
    assert (jobs["0.0"] / "done").read_text() == done_before
    assert (jobs["0.1"] / "done").is_file()
    assert (jobs["-1.0"] / "failed.json").is_file()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == sorted(
        p.name for p in jobs.values()
    )  # no extra (timestamped) directories

    summary = tmp_path / "summary"
    agg = subprocess.run(
        [sys.executable, "-m", "cocoer.cli.aggregate", str(sweep), "--out", str(summary)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert agg.returncode == 0, agg.stderr[-3000:]
    assert "Table 4b: alpha" in agg.stdout and "34.81" in agg.stdout and "37.32" in agg.stdout
    for name in ("tables.md", "alpha.csv", "alpha.png", "first_excluded.csv", "jobs.csv"):
        assert (summary / name).is_file(), name
    import pandas as pd

    table = pd.read_csv(summary / "alpha.csv")
    assert list(table["alpha"]) == [0.0, 0.1] and list(table["n"]) == [1, 1]
    ours = json.loads((jobs["0.1"] / "metrics.json").read_text())["test/mAP"]
    assert float(table["ours mAP"][1]) == pytest.approx(ours, abs=0.006)
    assert "failed" in (summary / "tables.md").read_text().lower()

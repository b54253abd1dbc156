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

from tests.support.sweeps import aggregate_alpha_sweep, write_experiment


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
    conf = write_experiment(tmp_path, tiny_emotic_root, "tiny_test")
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
    agg = aggregate_alpha_sweep(sweep, summary, jobs)
    assert "Table 4b: alpha" in agg.stdout and "34.81" in agg.stdout and "37.32" in agg.stdout
    for name in ("tables.md", "alpha.csv", "alpha.png", "first_excluded.csv", "jobs.csv"):
        assert (summary / name).is_file(), name

"""A refused launch leaves every file of a run directory byte-identical, Hydra's `.hydra/`
included (conf/train.yaml has Hydra write nothing at job start; cocoer writes `.hydra/`
with its own records once the run has passed its checks). `cocoer-train` as a user runs it:
a finished tiny run, then a resume with another model config and a plain relaunch into it;
and the same resume into an unfinished copy of it (no `done`), which is refused by the
checkpoint check after the model is built. `cocoer-eval` into a directory that holds an
earlier run's results is refused the same way."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.support.helpers import cli_train_args

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def train_args(tmp: Path, data_root: Path, name: str, *extra: str) -> list[str]:
    return cli_train_args(tmp, data_root, tmp / name, *extra)


def hashes(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (names in ``skip`` left out)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in skip
    }


def cocoer_train(tmp: Path, data: Path, run: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cocoer.cli.train", *train_args(tmp, data, run, *extra)]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def assert_one_line_refusal(proc: subprocess.CompletedProcess, match: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [x for x in proc.stderr.splitlines() if x.startswith("cocoer-train: error: ")]
    assert len(errors) == 1 and match in errors[0], proc.stderr[-2000:]
    assert proc.stderr.rstrip().endswith(errors[0])  # the last line (Lightning chats before)


def test_refused_resume_and_relaunch_leave_every_record_byte_identical(
    tmp_path: Path, tiny_emotic_root: Path
) -> None:
    run = tmp_path / "run"
    first = cocoer_train(tmp_path, tiny_emotic_root, "run")
    assert first.returncode == 0, first.stderr[-3000:]
    # cocoer wrote Hydra's three records after the checks, with this run's overrides
    hydra = run / ".hydra"
    assert sorted(p.name for p in hydra.iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]
    assert "model.net.d=16" in list(OmegaConf.load(hydra / "overrides.yaml"))
    assert OmegaConf.load(hydra / "hydra.yaml").hydra.run.dir == str(run)
    assert OmegaConf.load(hydra / "config.yaml").model.net.d == 16
    before = hashes(run)
    assert {".hydra/overrides.yaml", "config.yaml", "done", "checkpoints/last.ckpt"} <= set(before)

    other_model = cocoer_train(
        tmp_path, tiny_emotic_root, "run", "ckpt_path=auto", "model.net.d=24"
    )
    assert_one_line_refusal(other_model, "holds a finished run")
    relaunch = cocoer_train(tmp_path, tiny_emotic_root, "run")
    assert_one_line_refusal(relaunch, "holds a finished run")
    assert hashes(run) == before

    # an unfinished run (a copy without its `done`): the resume is refused once the model
    # is built, before any record is written, and writes no failed.json; only the log grows
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "done").unlink()
    (unfinished / "metrics.json").unlink()
    log = "train.log"
    before = hashes(unfinished, skip=(log,))
    log_before = (unfinished / log).read_bytes()
    mismatch = cocoer_train(
        tmp_path, tiny_emotic_root, "unfinished", "ckpt_path=auto", "model.net.d=24"
    )
    assert_one_line_refusal(mismatch, "does not fit this run's model")
    assert hashes(unfinished, skip=(log,)) == before
    assert (unfinished / log).read_bytes().startswith(log_before)


def test_eval_into_a_directory_with_results_refuses_and_keeps_every_record(
    tmp_path: Path,
) -> None:
    run = tmp_path / "finished"
    (run / ".hydra").mkdir(parents=True)
    records = {
        "metrics.json": '{"test/mAP": 41.0}',
        ".hydra/config.yaml": "seed: 1\n",
        ".hydra/overrides.yaml": "- seed=1\n",
        "config.yaml": "seed: 1\n",
    }
    for name, text in records.items():
        (run / name).write_text(text)
    before = hashes(run)
    cmd = [
        sys.executable, "-m", "cocoer.cli.evaluate", f"ckpt_path={tmp_path / 'any.ckpt'}",
        f"paths.root_dir={tmp_path}", f"hydra.run.dir={run}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "holds an earlier run's results (metrics.json)" in lines[0]
    # Hydra's log file of the job is the only new file, and it is empty
    assert {k: v for k, v in hashes(run).items() if k != "eval.log"} == before
    assert not (run / "eval.log").exists() or (run / "eval.log").stat().st_size == 0

"""The command-line tools as a user runs them (subprocesses), given hostile files: a
checkpoint with a code payload and random bytes are refused by cocoer-infer, cocoer-eval
and cocoer-train (ckpt_path= and model.init_from=) with one line on stderr, a non-zero
exit status, no traceback, and the payload never runs. Also: a run killed in the middle
of saving last.ckpt leaves the previous last.ckpt intact, and a NaN loss stops the run
naming the step and the term without saving over the last good checkpoint.

The processes of a test run concurrently (each costs seconds of torch import)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from cocoer.checkpoint.safe_load import load_cocoer_checkpoint
from tests.support.checkpoint_payloads import write_bad_files, write_payload_checkpoint
from tests.support.helpers import cli_train_args

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


def train_args(tmp: Path, data_root: Path, name: str, *extra: str) -> list[str]:
    return cli_train_args(tmp, data_root, tmp / name, *extra)


def run_all(cmds: dict[str, list[str]], cwd: Path) -> dict[str, tuple[int, str, str]]:
    """Run every command at once; name -> (exit status, stdout, stderr)."""
    procs = {
        k: subprocess.Popen(
            c, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for k, c in cmds.items()
    }
    out = {}
    for k, p in procs.items():
        so, se = p.communicate(timeout=600)
        out[k] = (p.returncode, so, se)
    return out


def test_hostile_checkpoints_are_refused_by_every_cli(
    tiny_checkpoint: Path, tiny_emotic_root: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "payload_ran"
    base = load_cocoer_checkpoint(tiny_checkpoint)  # a real checkpoint around the payload
    evil = write_payload_checkpoint(tmp_path / "shared.ckpt", marker, base)
    rand = write_bad_files(tmp_path / "bad")["random"]
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (120, 90, 60)).save(photo)
    py = sys.executable
    cmds: dict[str, list[str]] = {}
    for name, ck in (("payload", evil), ("random", rand)):
        cmds[f"infer-{name}"] = [py, "-m", "cocoer.cli.infer", str(photo), "--ckpt", str(ck)]
        cmds[f"eval-{name}"] = [
            py, "-m", "cocoer.cli.evaluate", f"ckpt_path={ck}",
            f"data.root={tiny_emotic_root}", "data.synthetic=null",
            f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path / f'eval-{name}'}",
        ]  # fmt: skip
        cmds[f"train-{name}"] = [
            py, "-m", "cocoer.cli.train",
            *train_args(tmp_path, tiny_emotic_root, f"train-{name}", f"ckpt_path={ck}"),
        ]  # fmt: skip
    cmds["init_from-payload"] = [
        py, "-m", "cocoer.cli.train",
        *train_args(tmp_path, tiny_emotic_root, "init", f"model.init_from={evil}"),
    ]  # fmt: skip
    results = run_all(cmds, tmp_path)
    for name, (code, stdout, stderr) in results.items():
        ck = evil if name.endswith("payload") else rand
        what = "refused type exec" if name.endswith("payload") else "not a checkpoint"
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("cocoer-")]
        assert code == 2, (name, stderr[-2000:])
        assert len(errors) == 1 and errors == lines[-1:], (name, stderr[-2000:])
        assert f"cannot load checkpoint {ck}: {what}" in errors[0], (name, errors)
        assert "Traceback" not in stdout + stderr, name
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "train-payload" / "checkpoints").exists()  # refused before fit


@pytest.mark.slow
def test_kill_during_save_keeps_the_previous_last_ckpt(
    tiny_emotic_root: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "half_written"
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "support" / "patched_train.py"),
        *train_args(tmp_path, tiny_emotic_root, "run", "trainer.max_epochs=3", "test=false"),
        "~callbacks.model_checkpoint",
    ]
    env = {**ENV, "COCOER_TEST_SLOW_SAVE": str(marker)}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stderr.read()[-2000:]  # type: ignore[union-attr]
    folder = tmp_path / "run" / "checkpoints"
    partial = list(folder.glob(".last.ckpt.*.tmp"))
    assert len(partial) == 1  # the save of epoch 1 was cut in the middle...
    ckpt = load_cocoer_checkpoint(folder / "last.ckpt")  # ...and last.ckpt is epoch 0's
    assert ckpt["epoch"] == 0
    assert partial[0].stat().st_size < (folder / "last.ckpt").stat().st_size


@pytest.mark.slow
def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tiny_emotic_root: Path, tmp_path: Path
) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "support" / "patched_train.py"),
        *train_args(tmp_path, tiny_emotic_root, "run", "trainer.max_epochs=3"),
    ]
    env = {**ENV, "COCOER_TEST_NAN_FROM_EPOCH": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    folder = tmp_path / "run" / "checkpoints"
    last = load_cocoer_checkpoint(folder / "last.ckpt")
    assert last["epoch"] == 0  # nothing written after the bad step
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    assert all(
        torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point()
    )
    error = proc.stderr.strip().splitlines()[-1]
    step = last["global_step"]  # the first step of epoch 1 is the first bad one
    assert error.startswith(f"cocoer-train: error: non-finite loss at step {step} (epoch 1)")
    assert "L_G=nan" in error


@pytest.mark.slow
def test_nan_loss_on_one_ddp_rank_stops_every_rank_with_one_line(
    tiny_emotic_root: Path, tmp_path: Path
) -> None:
    """trainer=ddp_sim (2 spawned processes, gloo), L_G NaN on rank 1 only from epoch 1: the
    run ends (no rank left in the all-reduce) with one line and exit status 2."""
    cmd = [
        sys.executable,
        str(ROOT / "tests" / "support" / "patched_train.py"),
        *train_args(tmp_path, tiny_emotic_root, "run", "trainer.max_epochs=3", "trainer=ddp_sim"),
    ]
    env = {**ENV, "COCOER_TEST_NAN_FROM_EPOCH": "1", "COCOER_TEST_NAN_RANK": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("cocoer-train: error: non-finite loss at step "), error
    # rank 0 (finite loss) names rank 1; rank 1 names the term
    assert "on rank(s) 1; training stopped on every rank" in error or "on rank 1: L_G=nan" in error
    last = load_cocoer_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 0

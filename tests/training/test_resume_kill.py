"""Resume after a real kill: `cocoer-train` is SIGKILLed mid-run, relaunched with
``ckpt_path=auto`` in the same run directory, and ends with the weights of a run that was
never interrupted (CPU, deterministic, no data-loader workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from cocoer.checkpoint.safe_load import load_cocoer_checkpoint
from tests.support.helpers import cli_train_args, resumable

EPOCHS = 6


def command(tmp: Path, data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    args = cli_train_args(tmp, data_root, run_dir, *resumable(EPOCHS), *extra)
    return [sys.executable, "-m", "cocoer.cli.train", *args]


def run_to_end(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_sigkilled_run_resumes_to_the_same_weights(tmp_path: Path, tiny_emotic_root: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"
    run_to_end(command(tmp_path, tiny_emotic_root, ref_dir))

    last = cut_dir / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(
        command(tmp_path, tiny_emotic_root, cut_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside the next epoch
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = load_cocoer_checkpoint(last)["epoch"]
    assert killed_at < EPOCHS - 1
    assert not (cut_dir / "done").exists()

    run_to_end(command(tmp_path, tiny_emotic_root, cut_dir, "ckpt_path=auto"))
    assert (cut_dir / "done").exists()
    a = load_cocoer_checkpoint(ref_dir / "checkpoints" / "last.ckpt")
    b = load_cocoer_checkpoint(last)
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"] == EPOCHS - 1
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-5, atol=1e-6, msg=k)

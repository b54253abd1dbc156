"""Copied and moved run directories, end to end with real tiny training: a run is copied
(and, separately, moved) elsewhere and resumed there with ``ckpt_path=auto`` for one more
epoch. Every checkpoint the resumed run loads (the resume itself and the final test of its
best checkpoint) and the best checkpoint it reports are its own; the original directory
stays byte-identical (copy) and is not recreated (move).

The runs are unfinished ones: their ``done`` marker is removed, as a run interrupted after
its first epoch would have none (a finished run is refused or skipped,
tests/training/test_run_dirs.py).
The resumed epoch does not validate, so no new best checkpoint is saved: the best one is
the one restored from ``last.ckpt``, and only the relocation of its path
(``cocoer.runs.run_dir.relocate_checkpoint_paths``) decides whose file is tested."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from cocoer.runs.jobs import run_job
from cocoer.training.checkpoint_io import AtomicCheckpointIO
from tests.support.helpers import TINY_OVERRIDES, compose_config

pytestmark = pytest.mark.slow

#: one more epoch, without validation (no new best checkpoint: see the module docstring)
RESUME = ("ckpt_path=auto", "trainer.max_epochs=2", "+trainer.limit_val_batches=0")


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run(base: Path, data: Path, loaded: list[Path], *extra: str) -> dict[str, Any]:
    """A tiny training job whose run directory is ``base/run``; the checkpoints it loads
    are appended to ``loaded``."""
    from cocoer.train import train

    overrides = [*TINY_OVERRIDES, "logger=csv", *extra]
    cfg = compose_config("train", base, data, overrides)
    start = len(loaded)
    metrics = run_job(cfg, train)
    metrics["loaded"] = loaded[start:]
    return metrics


def last_epoch(folder: Path) -> int:
    from cocoer.checkpoint.safe_load import load_cocoer_checkpoint

    return int(load_cocoer_checkpoint(folder / "checkpoints" / "last.ckpt")["epoch"])


def inside(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_copied_and_moved_run_directories_resume_on_their_own_checkpoints(
    tmp_path: Path, tiny_emotic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[Path] = []
    real_load = AtomicCheckpointIO.load_checkpoint

    def spy(self: AtomicCheckpointIO, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        loaded.append(Path(path))
        return real_load(self, path, *args, **kwargs)

    monkeypatch.setattr(AtomicCheckpointIO, "load_checkpoint", spy)
    original = tmp_path / "a" / "run"
    first = run(tmp_path / "a", tiny_emotic_root, loaded)
    assert inside(first["best_ckpt"], original)
    (original / "done").unlink()  # an unfinished run: it may be continued
    before = hashes(original)

    copy = tmp_path / "b" / "run"
    shutil.copytree(original, copy)
    resumed = run(tmp_path / "b", tiny_emotic_root, loaded, *RESUME)
    # the resume read the copy's last.ckpt, the final test the copy's best checkpoint
    assert resumed["loaded"][0] == copy / "checkpoints" / "last.ckpt"
    assert len(resumed["loaded"]) == 2 and all(inside(p, copy) for p in resumed["loaded"])
    assert Path(first["best_ckpt"]).name == "epoch_000.ckpt"
    assert resumed["best_ckpt"] == str(copy.resolve() / "checkpoints" / "epoch_000.ckpt")
    assert resumed["loaded"][1] == Path(resumed["best_ckpt"])
    assert (copy / "done").is_file() and last_epoch(copy) == 1 == last_epoch(original) + 1
    assert hashes(original) == before  # nothing of the original was read-modified or deleted

    moved = tmp_path / "c" / "run"
    moved.parent.mkdir()
    original.rename(moved)
    copy_before = hashes(copy)
    again = run(tmp_path / "c", tiny_emotic_root, loaded, *RESUME)
    assert again["loaded"][0] == moved / "checkpoints" / "last.ckpt"
    assert all(inside(p, moved) for p in again["loaded"]) and last_epoch(moved) == 1
    assert again["best_ckpt"] == str(moved.resolve() / "checkpoints" / "epoch_000.ckpt")
    assert not original.exists()  # nothing written at the old place
    assert hashes(copy) == copy_before

"""A run directory has one owner and keeps its records.

- :func:`run_dir_lock`: an exclusive ``flock`` on ``<run>/.lock`` held for the whole job; a
  second process in the same directory stops with one line (:class:`RunDirError`);
- :func:`check_relaunch`: a relaunch into a finished directory (``done``) or into one that
  holds checkpoints, without resuming, is refused before anything is written there;
- :func:`check_fresh_dir`: an evaluation into a directory that holds an earlier run's
  results (``metrics.json``) is refused before anything is written there;
- :func:`check_resume_fits`: the checkpoint a run resumes from must fit the model just built
  (same keys and shapes), checked before the run's records are (re)written, so a failed
  resume leaves the directory as it was;
- :func:`relocate_checkpoint_paths`: a checkpoint resumed from a copied or moved directory
  points its ``ModelCheckpoint`` state (best / last / top-k paths) into the directory it
  now lives in, not into the one it was written in.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cocoer.errors import CheckpointError, CocoerError

LOCK = ".lock"
#: ModelCheckpoint state keys that hold one path
_PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


class RunDirError(CocoerError):
    """A run directory that this process may not use (busy, finished, holds checkpoints).
    A job refused with it never ran: :func:`cocoer.runs.jobs.run_job` writes no
    ``failed.json`` for it."""


class ResumeMismatchError(CheckpointError, RunDirError):
    """The checkpoint a run would resume from does not fit the model it built."""


@contextlib.contextmanager
def run_dir_lock(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` (RunDirError at once if another process has
    it). Without ``fcntl`` (Windows) the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunDirError(
                f"{folder}: another process is running in this run directory (locked {LOCK})"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def check_relaunch(run_dir: str | os.PathLike[str], resuming: bool, done: str) -> None:
    """Refuse a training launch into a directory that holds a finished run (its ``done``
    marker; ``resume=true`` skips such a job before this check), or, without resuming
    (``ckpt_path``), checkpoints of an unfinished one (they would be overwritten)."""
    folder = Path(run_dir)
    if (folder / done).is_file():
        raise RunDirError(
            f"{folder}: holds a finished run ({done}); pass resume=true to skip it, or choose "
            "another directory"
        )
    if not resuming and (folder / "checkpoints" / "last.ckpt").is_file():
        raise RunDirError(
            f"{folder}: holds checkpoints of an unfinished run; pass ckpt_path=auto (or "
            "resume=true) to continue it, or choose another directory"
        )


def check_fresh_dir(run_dir: str | os.PathLike[str], results: str = "metrics.json") -> None:
    """Refuse a run whose results would replace an earlier run's (``results`` in
    ``run_dir``): one line, nothing written."""
    folder = Path(run_dir)
    if (folder / results).exists():
        raise RunDirError(
            f"{folder}: holds an earlier run's results ({results}); choose another "
            "run_name or hydra.run.dir"
        )


def check_resume_fits(model: Any, ckpt_path: str | os.PathLike[str]) -> None:
    """The state dict of ``ckpt_path`` must have the keys and shapes of ``model``'s.

    Raises:
        ResumeMismatchError: one line naming the first difference (a
            :class:`~cocoer.errors.CheckpointError` and a :class:`RunDirError`).
    """
    from cocoer.checkpoint.safe_load import load_cocoer_checkpoint

    state = load_cocoer_checkpoint(ckpt_path)["state_dict"]
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise ResumeMismatchError(
            ckpt_path,
            f"does not fit this run's model (missing {missing[:3]}, unexpected {extra[:3]}); "
            "resume with the config it was trained with",
        )
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ResumeMismatchError(
                ckpt_path,
                f"does not fit this run's model ({k} is {list(state[k].shape)} in the file, "
                f"{list(v.shape)} here); resume with the config it was trained with",
            )


def _moved(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
        return new + value[len(old) :]
    return value


def relocate_checkpoint_paths(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Point the ``ModelCheckpoint`` states of ``checkpoint`` (loaded from ``path``) at the
    folder ``path`` is in now, when it was written in another one (a copied / moved run)."""
    new = os.path.realpath(Path(path).parent)
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if not (str(key).startswith("ModelCheckpoint") and isinstance(state, dict)):
            continue
        old = state.get("dirpath")
        if not isinstance(old, str) or old == new:
            continue
        state["dirpath"] = new
        for name in _PATH_KEYS:
            state[name] = _moved(state.get(name), old, new)
        top_k = state.get("best_k_models")
        if isinstance(top_k, dict):
            state["best_k_models"] = {_moved(k, old, new): v for k, v in top_k.items()}

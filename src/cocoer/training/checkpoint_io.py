"""Atomic checkpoint writes: a run killed during a save leaves the previous file intact.

:class:`AtomicCheckpointIO` (given to every Trainer by :func:`cocoer.train.prepare`)
writes a checkpoint to a temporary file in the target's folder, flushes and fsyncs it,
renames it over the target with :func:`os.replace` (atomic on POSIX and Windows) and
fsyncs the folder, so that ``last.ckpt`` is at every instant either the old or the new
complete file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cocoer.utils.files import atomic_write


def write_checkpoint(checkpoint: dict[str, Any], f: IO[bytes]) -> None:
    """Serialise ``checkpoint`` into the open binary file ``f`` (the step that a killed
    process can interrupt; tests replace it with a slow writer)."""
    torch.save(checkpoint, f)


def atomic_save(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (:func:`cocoer.utils.files.atomic_write`)."""
    return atomic_write(path, lambda f: write_checkpoint(checkpoint, f))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with atomic saves (:func:`atomic_save`); a loaded
    checkpoint's ``ModelCheckpoint`` paths follow the folder it lives in now (a copied or
    moved run directory resumes on its own checkpoints,
    :func:`cocoer.runs.run_dir.relocate_checkpoint_paths`)."""

    def load_checkpoint(
        self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        from cocoer.runs.run_dir import relocate_checkpoint_paths

        if map_location is None:  # Lightning's default (storages stay on the CPU)
            checkpoint = super().load_checkpoint(path, weights_only=weights_only)
        else:
            checkpoint = super().load_checkpoint(path, map_location, weights_only)
        relocate_checkpoint_paths(checkpoint, path)
        return checkpoint

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__} does not support storage_options, got {storage_options}"
            )
        atomic_save(checkpoint, path)

"""Listing of CAER-S: ``CAER-S/{train,test}/{Anger,...,Surprise}/*.png``.

``root`` may be the folder that contains ``CAER-S/`` or the ``CAER-S/`` folder itself
(:func:`resolve_caer_s_root` decides; the ``CAER-S`` child wins when both look valid). Record
image paths are relative to the resolved ``CAER-S/`` folder, which is also where the box cache
(``cocoer_boxes.jsonl``) and the skip reports live.

CAER-S ships train and test only. The ``"val"`` split is carved out of ``train`` with a fixed
seed, stratified by class: in each class the sorted file list is shuffled by
``numpy.random.default_rng([split_seed, class_index])`` and the first
``round(val_fraction * n)`` files go to val; ``"train"`` is the rest. Same seed, same split,
independent of the file system's listing order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cocoer.constants import CAER_S_CLASSES
from cocoer.data.records import PersonRecord, SkipReport, skip_or_raise
from cocoer.errors import ConfigError, MissingFileError, check_choice

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
_IGNORED = {".DS_Store", "Thumbs.db", "desktop.ini"}


def resolve_caer_s_root(root: str | os.PathLike[str]) -> Path:
    """The ``CAER-S/`` folder given it or its parent (see module doc); it need not exist yet."""
    root = Path(root)
    child = root / "CAER-S"
    if child.is_dir() or (root.name != "CAER-S" and not (root / "train").is_dir()):
        return child
    return root


def split_train_val(
    files: list[str], val_fraction: float, split_seed: int, class_index: int
) -> tuple[list[str], list[str]]:
    """Deterministic per-class split of sorted ``files`` into (train, val)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(files)
    perm = np.random.default_rng([int(split_seed), int(class_index)]).permutation(len(ordered))
    n_val = round(val_fraction * len(ordered))
    val_idx = set(perm[:n_val].tolist())
    train = [f for i, f in enumerate(ordered) if i not in val_idx]
    val = [f for i, f in enumerate(ordered) if i in val_idx]
    return train, val


def list_caer_s(
    root: str | os.PathLike[str],
    split: str,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    report: SkipReport | None = None,
    strict: bool = False,
) -> list[PersonRecord]:
    """One record per image of a CAER-S split (labels = 1-tuple of the class index).

    Args:
        root: ``CAER-S/`` or its parent.
        split: ``"train"``, ``"val"`` (held out from train) or ``"test"``.
        val_fraction, split_seed: the validation hold-out (see module doc).
        report: receives skipped entries (unknown class folders, non-image files).
        strict: raise ``BadSampleError`` instead of skipping.

    Raises:
        FileNotFoundError: the split folder does not exist (naming it).
    """
    check_choice("split", split, ("train", "val", "test"))
    base = resolve_caer_s_root(root)
    folder = base / ("test" if split == "test" else "train")
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: CAER-S split folder not found (root={root})")
    known = {c: i for i, c in enumerate(CAER_S_CLASSES)}
    per_class: dict[int, list[str]] = {}
    for entry in sorted(folder.iterdir()):
        rel = entry.relative_to(base).as_posix()
        if entry.name in _IGNORED:
            continue
        if not entry.is_dir():
            if split != "val":
                skip_or_raise(report, strict, rel, "unexpected file outside a class folder")
            continue
        if entry.name not in known:
            if split != "val":
                skip_or_raise(report, strict, rel, f"unknown class folder {entry.name!r}")
            continue
        files = []
        for f in sorted(entry.iterdir()):
            if f.name in _IGNORED:
                continue
            frel = f.relative_to(base).as_posix()
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(frel)
            elif split != "val":  # reported once, with the train listing
                skip_or_raise(report, strict, frel, "not an image file (unknown extension)")
        per_class[known[entry.name]] = files
    records: list[PersonRecord] = []
    for cls_idx in sorted(per_class):
        files = per_class[cls_idx]
        if split != "test":
            train, val = split_train_val(files, val_fraction, split_seed, cls_idx)
            files = val if split == "val" else train
        records.extend(
            PersonRecord(
                image=f, person=0, split=split, labels=(cls_idx,), body_box=None, head_box=None
            )
            for f in files
        )
    return records

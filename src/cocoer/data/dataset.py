"""Torch dataset of persons -> windows, and the setup-time resolution of images and boxes.

:func:`resolve_records` runs once per split at setup: it probes every image cheaply (missing,
unreadable, truncated, over the pixel cap -> counted skip of all persons in it), clips the boxes
to the real image size, and fills missing boxes in this order:

- body: annotation -> box cache -> ``body_from_face(head)`` ("heuristic") -> whole image
  ("full_image");
- head: annotation -> box cache -> ``head_from_body(body)`` ("heuristic").

The resolved records carry both boxes, with ``extra["body_source"]`` / ``extra["head_source"]``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from cocoer.constants import VAD_NAMES
from cocoer.data.heuristics import (
    body_from_face,
    full_image_box,
    head_from_body,
    sanitize_box,
    tag_note,
)
from cocoer.data.records import BadSampleError, PersonRecord, SkipReport, skip_or_raise
from cocoer.data.transforms import WindowTransform
from cocoer.data.windows import DEFAULT_MAX_PIXELS, load_image, probe_image


def _box_from_cache(entry: dict[str, Any] | None, level: str) -> tuple[Any, str | None]:
    if entry is None or entry.get(f"{level}_box") is None:
        return None, None
    return tuple(entry[f"{level}_box"]), entry.get(f"{level}_source") or "cache"


def resolve_records(
    records: Sequence[PersonRecord],
    root: Path,
    box_cache: dict[tuple[str, int], dict[str, Any]],
    report: SkipReport,
    strict: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> list[PersonRecord]:
    """Probe images and fill/clip boxes (see module doc); bad inputs go to ``report``."""
    probed: dict[str, tuple[int, int] | BadSampleError] = {}
    out: list[PersonRecord] = []
    for rec in records:
        if rec.image not in probed:
            try:
                probed[rec.image] = probe_image(root / rec.image, max_pixels)
            except BadSampleError as exc:
                if strict:
                    raise
                probed[rec.image] = exc
        size = probed[rec.image]
        where = rec.record_id
        if isinstance(size, BadSampleError):
            report.add(where, f"{size.reason} [{size.where}]")
            continue
        width, height = size
        entry = box_cache.get(rec.key)
        boxes: dict[str, Any] = {}
        sources: dict[str, str | None] = {}
        bad = False
        for level, annotated in (("body", rec.body_box), ("head", rec.head_box)):
            box, src = (annotated, "annotation") if annotated is not None else (None, None)
            if box is None:
                box, src = _box_from_cache(entry, level)
            if box is not None:
                fixed, notes = sanitize_box(box, width, height)
                if fixed is None:
                    if level == "body" or src == "annotation":
                        skip_or_raise(
                            report, strict, where, tag_note(notes[-1], f"{level} box from {src}")
                        )
                        bad = True
                        break
                    box, src = None, None  # a useless cached head: fall back to the heuristic
                else:
                    for note in notes:
                        report.add_fixed(where, tag_note(note, f"{level} box from {src}"))
                    box = fixed
            boxes[level], sources[level] = box, src
        if bad:
            continue
        if boxes["body"] is None:
            if boxes["head"] is not None:
                boxes["body"], sources["body"] = (
                    body_from_face(boxes["head"], width, height),
                    "heuristic",
                )
            else:
                boxes["body"], sources["body"] = full_image_box(width, height), "full_image"
        if boxes["head"] is None:
            boxes["head"], sources["head"] = head_from_body(boxes["body"]), "heuristic"
        extra = dict(rec.extra)
        extra.update(body_source=sources["body"], head_source=sources["head"], loaded_size=size)
        out.append(
            dataclasses.replace(
                rec, body_box=tuple(boxes["body"]), head_box=tuple(boxes["head"]), extra=extra
            )
        )
    return out


def source_counts(records: Sequence[PersonRecord]) -> dict[str, dict[str, int]]:
    """How many persons got each box source, per level."""
    return {
        level: dict(Counter(str(r.extra.get(f"{level}_source")) for r in records))
        for level in ("body", "head")
    }


def vad_targets(records: Sequence[PersonRecord]) -> torch.Tensor | None:
    """Continuous targets of the records: float32 [N, 3] (valence, arousal, dominance; NaN
    where a record has none), or None when no record has any (CAER-S)."""
    names = VAD_NAMES
    if not any(names[0] in r.extra for r in records):
        return None
    nan = float("nan")
    return torch.tensor(
        [[float(r.extra.get(n, nan)) for n in names] for r in records], dtype=torch.float32
    ).reshape(len(records), 3)


class PersonWindowsDataset(Dataset):
    """Index-aligned with :attr:`records` (resolved: both boxes set).

    ``__getitem__`` returns ``context``/``body``/``head`` float32 [3, S, S], ``body_box``/
    ``head_box`` float32 [4], ``labels`` float32 [k] (multi-hot, or one-hot when single-label)
    and ``index`` int64 []; with ``conflict_levels`` (generated data) also ``conflict_level``
    int64 []: the planted conflicting level (index in LEVELS: context, body, head) or -1.
    When any record carries continuous values (EMOTIC), also ``vad`` float32 [3]: valence,
    arousal, dominance, NaN for a person whose values were dropped (masked in loss and metrics).
    A file that fails to decode raises :class:`BadSampleError` naming it.
    """

    def __init__(
        self,
        records: Sequence[PersonRecord],
        root: str | Path,
        num_classes: int,
        transform: WindowTransform,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        conflict_levels: dict[tuple[str, int], int] | None = None,
    ) -> None:
        self.records = list(records)
        self.conflict_levels = conflict_levels
        self.root = Path(root)
        self.num_classes = int(num_classes)
        self.transform = transform
        self.max_pixels = max_pixels
        for r in self.records:
            if r.body_box is None or r.head_box is None:
                raise ValueError(
                    f"{r.record_id}: record has unresolved boxes (run resolve_records)"
                )
        self.vad = vad_targets(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def labels_tensor(self, index: int) -> torch.Tensor:
        """Multi/one-hot labels of one record: float32 [k]."""
        y = torch.zeros(self.num_classes, dtype=torch.float32)
        y[list(self.records[index].labels)] = 1.0
        return y

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rec = self.records[index]
        image = load_image(self.root / rec.image, self.max_pixels)
        sample = self.transform(image, rec.body_box, rec.head_box)  # type: ignore[arg-type]
        sample["labels"] = self.labels_tensor(index)
        sample["index"] = torch.tensor(index, dtype=torch.int64)
        if self.vad is not None:
            sample["vad"] = self.vad[index]
        if self.conflict_levels is not None:
            level = self.conflict_levels.get(rec.key, -1)
            sample["conflict_level"] = torch.tensor(level, dtype=torch.int64)
        return sample

"""Plain records shared by the dataset readers, the box cache and the datamodules.

A :class:`PersonRecord` is one annotated person (EMOTIC) or one image (CAER-S). Readers never
drop an input silently: every input they cannot use is added to a :class:`SkipReport` with a
reason (or, in strict mode, raises :class:`BadSampleError`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cocoer.errors import InputError
from cocoer.utils.files import atomic_write_text

#: Pixel box ``(x1, y1, x2, y2)`` in the ORIGINAL image frame.
BBox = tuple[float, float, float, float]

#: Reasons that denote a repaired (kept) input rather than a dropped one.
FIXED_PREFIX = "fixed:"


@dataclass(frozen=True)
class PersonRecord:
    """One person to classify.

    Attributes:
        image: image path relative to the dataset root, posix style.
        person: person index within the image (always 0 for CAER-S).
        split: ``"train"``, ``"val"`` or ``"test"``.
        labels: class indices into the dataset's class list (sorted, unique).
        body_box: body box in pixels, or ``None`` when the dataset has none (then the box cache).
        head_box: head box in pixels, or ``None`` when absent (then the box cache / heuristic).
        image_size: ``(width, height)`` as annotated, if known.
        extra: dataset-specific metadata (valence/arousal/dominance, gender, age, annotators).
    """

    image: str
    person: int
    split: str
    labels: tuple[int, ...]
    body_box: BBox | None
    head_box: BBox | None
    image_size: tuple[int, int] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        """``(image, person)``: the key of this record in the box cache."""
        return (self.image, self.person)

    @property
    def record_id(self) -> str:
        """Human-readable id used in skip reports, e.g. ``"mscoco/images/x.jpg#1"``."""
        return f"{self.image}#{self.person}"


@dataclass
class SkipReport:
    """Counted, reported skips (and fixes): never a silent drop.

    ``items`` holds ``(where, reason)`` pairs, ``where`` being a file or record id. Reasons that
    start with ``"fixed:"`` mark inputs that were repaired and kept (e.g. an inverted box); they
    are listed but not counted by :meth:`num_skipped`.
    """

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, reason: str) -> None:
        """Record that ``where`` (a file or record id) was skipped (or fixed) for ``reason``."""
        self.items.append((str(where), str(reason)))

    def add_fixed(self, where: str, reason: str) -> None:
        """Record a repaired-and-kept input (reason is prefixed with ``"fixed:"``)."""
        self.add(where, f"{FIXED_PREFIX} {reason}")

    def extend(self, other: SkipReport) -> None:
        """Append all items of ``other``."""
        self.items.extend(other.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Items that were dropped (not merely fixed)."""
        return [it for it in self.items if not it[1].startswith(FIXED_PREFIX)]

    @property
    def fixed(self) -> list[tuple[str, str]]:
        """Items that were repaired and kept."""
        return [it for it in self.items if it[1].startswith(FIXED_PREFIX)]

    def num_skipped(self) -> int:
        """Number of dropped inputs."""
        return len(self.skipped)

    def num_fixed(self) -> int:
        """Number of repaired-and-kept inputs."""
        return len(self.fixed)

    @staticmethod
    def _kind(reason: str) -> str:
        """Short category of a reason: the text before the first ``':'``."""
        if reason.startswith(FIXED_PREFIX):
            rest = reason[len(FIXED_PREFIX) :].strip()
            return FIXED_PREFIX + " " + rest.split(":", 1)[0].split(" [", 1)[0]
        return reason.split(":", 1)[0].split(" [", 1)[0]

    def counts(self) -> dict[str, int]:
        """Number of items per reason kind (text before the first ``':'`` or ``' ['``)."""
        return dict(Counter(self._kind(r) for _, r in self.items))

    def summary(self, title: str = "skip report", max_rows: int = 20) -> str:
        """Human-readable table: counts per reason kind, then up to ``max_rows`` items."""
        lines = [
            f"{title}: {self.num_skipped()} skipped, {self.num_fixed()} fixed",
        ]
        if not self.items:
            return lines[0]
        counts = self.counts()
        lines.append("  count  reason")
        for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {n:5d}  {kind}")
        lines.append("  items:")
        for where, reason in self.items[:max_rows]:
            lines.append(f"    {where}: {reason}")
        if len(self.items) > max_rows:
            lines.append(f"    ... and {len(self.items) - max_rows} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "num_skipped": self.num_skipped(),
            "num_fixed": self.num_fixed(),
            "counts": self.counts(),
            "items": [{"where": w, "reason": r} for w, r in self.items],
        }

    def write(self, path: str | Path) -> Path:
        """Write the report as JSON to ``path``; returns the path."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> SkipReport:
        """Read a report written by :meth:`write`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(items=[(d["where"], d["reason"]) for d in data["items"]])


class BadSampleError(InputError):
    """A bad input (file or annotation) met in strict mode, or at load time.

    The message names the file (or record) and the reason; the one-argument form (a full
    message) keeps the error re-raisable across DataLoader worker processes, which rebuild
    exceptions as ``type(msg)`` (:class:`cocoer.errors.InputError`).
    """


def skip_or_raise(report: SkipReport | None, strict: bool, where: str, reason: str) -> None:
    """Raise :class:`BadSampleError` when ``strict``, else add the skip to ``report``."""
    if strict:
        raise BadSampleError(where, reason)
    if report is not None:
        report.add(where, reason)

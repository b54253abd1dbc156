"""What one ``cocoer-prepare`` run did: per-split counts and a plain-text table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cocoer.data.box_cache import SOURCES
from cocoer.data.records import SkipReport


@dataclass
class SplitStats:
    """Per-split counts of one preparation run.

    Attributes:
        persons: records read for the split (after the readers' own skips).
        done_before: persons already in the cache when the run started.
        written: persons written by this run.
        skipped: persons not written because their image could not be read.
        reader_skipped: persons the annotation reader dropped (see the report).
        head_sources / body_sources: boxes by source over ALL persons of the split in the
            cache after the run (so a re-run still shows what the cache holds).
    """

    persons: int = 0
    done_before: int = 0
    written: int = 0
    skipped: int = 0
    reader_skipped: int = 0
    head_sources: Counter[str] = field(default_factory=Counter)
    body_sources: Counter[str] = field(default_factory=Counter)


@dataclass
class PrepareSummary:
    """What :func:`prepare_dataset` did; :meth:`table` renders it for the CLI."""

    dataset: str
    root: Path
    cache_path: Path
    face_detector: str | None
    person_detector: str | None
    splits: dict[str, SplitStats]
    report: SkipReport
    detector_calls: int = 0

    @property
    def written(self) -> int:
        """Persons written by this run, all splits."""
        return sum(s.written for s in self.splits.values())

    @property
    def skipped(self) -> int:
        """Persons skipped by this run (unreadable images), all splits."""
        return sum(s.skipped for s in self.splits.values())

    def table(self) -> str:
        """Plain-text summary: per split counts, then boxes by source per level."""
        lines = [
            f"cocoer-prepare {self.dataset}: {self.root} -> {self.cache_path}",
            f"detectors: face={self.face_detector or '-'} person={self.person_detector or '-'}"
            f" (calls this run: {self.detector_calls})",
            "",
            f"{'split':<8}{'persons':>9}{'cached':>9}{'written':>9}{'skipped':>9}"
            f"{'reader-skipped':>16}",
        ]
        for name, s in self.splits.items():
            lines.append(
                f"{name:<8}{s.persons:>9}{s.done_before:>9}{s.written:>9}{s.skipped:>9}"
                f"{s.reader_skipped:>16}"
            )
        lines += ["", "boxes in the cache by source"]
        lines.append(f"{'split':<8}{'level':<6}" + "".join(f"{src:>13}" for src in SOURCES))
        for name, s in self.splits.items():
            for level, counts in (("head", s.head_sources), ("body", s.body_sources)):
                cells = "".join(f"{counts.get(src, 0):>13}" for src in SOURCES)
                missing = counts.get("none", 0)
                tail = f"   (no box: {missing})" if missing else ""
                lines.append(f"{name:<8}{level:<6}{cells}{tail}")
        return "\n".join(lines)

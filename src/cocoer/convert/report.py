"""The account of a conversion of the authors' weights (see :mod:`cocoer.convert.authors`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConversionReport:
    """Every source tensor, and every target tensor not filled from a source.

    Source keys are GWT.pth's as they are, ``clip:<key>`` for the CLIP file and
    ``w.pth:<key>`` for the V-I pre-alignment file.

    Attributes:
        mapped: ``(source key(s), target key, note)`` per assignment.
        unused: source key -> why the authors' forward pass does not need it.
        unexplained: source key -> why no rule took it (must be empty).
        dropped: source key the authors' forward uses but the target config has no place
            for (an option that is not the authors') -> reason.
        shape_mismatch: ``(source key, target key, source shape, expected shape)``.
        kept_from_config: target key not filled from a source -> reason.
        notes: options of the target config that differ from the authors'.
    """

    mapped: list[tuple[str, str, str]] = field(default_factory=list)
    unused: dict[str, str] = field(default_factory=dict)
    unexplained: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    shape_mismatch: list[tuple[str, str, list[int], list[int]]] = field(default_factory=list)
    kept_from_config: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing unexplained, dropped or mismatched."""
        return not (self.unexplained or self.dropped or self.shape_mismatch)

    def to_json(self) -> dict[str, Any]:
        """Plain containers (lists, dicts, strings, numbers) only."""
        return {
            "ok": self.ok,
            "mapped": [{"source": s, "target": t, "note": n} for s, t, n in self.mapped],
            "unused": dict(self.unused),
            "unexplained": dict(self.unexplained),
            "dropped": dict(self.dropped),
            "shape_mismatch": [
                {"source": s, "target": t, "source_shape": list(a), "expected_shape": list(b)}
                for s, t, a, b in self.shape_mismatch
            ],
            "kept_from_config": dict(self.kept_from_config),
            "notes": list(self.notes),
        }

    def summary(self, detail: int = 10) -> str:
        """The report for the terminal: counts, reasons grouped, the problems in full."""
        files = Counter(_origin(s) for s, _, _ in self.mapped)
        lines = [
            "mapped: " + ", ".join(f"{n} from {f}" for f, n in sorted(files.items())),
            f"unused: {len(self.unused)}",
        ]
        reasons = Counter(self.unused.values())
        lines += [f"  {n:4d} x {r}" for r, n in sorted(reasons.items())]
        lines.append(f"unexplained: {len(self.unexplained) or 'none'}")
        lines += [f"  {k}: {r}" for k, r in list(self.unexplained.items())[:detail]]
        if self.dropped:
            lines.append(f"dropped (used by the authors' forward): {len(self.dropped)}")
            lines += [f"  {k}: {r}" for k, r in list(self.dropped.items())[:detail]]
        if self.shape_mismatch:
            lines.append(f"shape mismatches: {len(self.shape_mismatch)}")
            lines += [f"  {s} -> {t}: {a} vs {b}" for s, t, a, b in self.shape_mismatch[:detail]]
        lines.append(f"target tensors not from a source: {len(self.kept_from_config)}")
        kept = Counter(self.kept_from_config.values())
        lines += [f"  {n:4d} x {r}" for r, n in sorted(kept.items())]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _origin(source: str) -> str:
    if source.startswith("clip:"):
        return "the CLIP file"
    if source.startswith("w.pth:"):
        return "w.pth"
    if source.startswith("("):
        return "derived"
    return "GWT.pth"

"""Terminal summary of an :class:`ImageResult` (a rich table, or plain text); text from
files (paths, class names) goes through :func:`cocoer.utils.files.printable`."""

from __future__ import annotations

from rich.table import Table

from cocoer.constants import LEVELS
from cocoer.infer.results import HeadPrediction, ImageResult
from cocoer.utils.files import printable


def _labels(pred: HeadPrediction, n: int = 3) -> str:
    names = pred.names[:n]
    more = len(pred.labels) - len(names)
    return (", ".join(printable(n) for n in names) + (f" +{more}" if more > 0 else "")) or "-"


def summary_table(result: ImageResult, max_labels: int = 3) -> Table:
    """One row per person: boxes' sources, final / V-I / level labels, f_m, exclusion."""
    table = Table(
        title=f"{printable(result.source)}  ({result.width}x{result.height}, "
        f"{len(result.persons)} persons)",
        title_justify="left",
    )
    for col in ("#", "boxes", "final", "V-I", *LEVELS, "f (c/b/h)", "exclusion"):
        table.add_column(col, overflow="fold")
    for p in result.persons:
        table.add_row(
            str(p.index if p.track_id is None else f"{p.index} (id {p.track_id})"),
            f"body:{p.body_source} head:{p.head_source}",
            _labels(p.final, max_labels),
            _labels(p.vi, max_labels),
            *(_labels(p.levels[m], max_labels) for m in LEVELS),
            "/".join(f"{p.level_losses[m]:.2f}" for m in LEVELS),
            " -> ".join(p.exclusion_sequence),
        )
    return table


def summary_text(result: ImageResult, max_labels: int = 3) -> str:
    """Plain-text version of :func:`summary_table`."""
    size = f"({result.width}x{result.height})"
    lines = [f"{printable(result.source)}: {len(result.persons)} persons {size}"]
    for p in result.persons:
        lines.append(
            f"  person {p.index}: final [{_labels(p.final, max_labels)}]  "
            f"V-I [{_labels(p.vi, max_labels)}]  "
            + "  ".join(f"{m} [{_labels(p.levels[m], max_labels)}]" for m in LEVELS)
        )
        lines.append(
            "    f: "
            + ", ".join(f"{m}={p.level_losses[m]:.3g}" for m in LEVELS)
            + f"  exclusion: {' -> '.join(p.exclusion_sequence)}"
        )
    return "\n".join(lines)

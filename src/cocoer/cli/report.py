"""``cocoer-report RUN_DIR``: the mechanism on generated data, as a table and a plot.

The analogue of the paper's Table 5 and Fig. 2 for one run on generated data (a planted
conflicting level per person, docs/method.md section 4): from the run's ``metrics.json`` it
writes ``RUN_DIR/mechanism.md`` and ``mechanism.csv`` (first-excluded shares per level over all
test persons; share of planted conflicts found first, per planted level, against chance; final
mAP with the workspace on and switched off, on conflicting and clean persons) and
``mechanism.png`` (the same as two bar charts).

    cocoer-report logs/smoke/2026-01-01_12-00-00     (or: python -m cocoer.cli.report ...)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cocoer.constants import LEVELS
from cocoer.errors import CocoerError, InputError, MissingFileError
from cocoer.utils.files import (
    atomic_save_as,
    atomic_write_text,
    loads_json,
    os_error_line,
    printable,
)


def mechanism_rows(metrics: dict[str, Any], split: str = "test") -> list[dict[str, Any]]:
    """Rows ``(table, row, value)`` of the report, from a run's metrics (missing -> absent)."""
    rows: list[dict[str, Any]] = []

    def add(table: str, row: str, key: str) -> None:
        if metrics.get(key) is not None:
            rows.append({"table": table, "row": row, "value": round(float(metrics[key]), 2)})

    for lvl in LEVELS:
        add("first-excluded share, all persons (%)", lvl, f"{split}/first_excluded/{lvl}")
    key = f"{split}/conflict_first_excluded"
    add("planted conflict excluded first (%)", "all planted levels", key)
    for lvl in LEVELS:
        add("planted conflict excluded first (%)", f"planted at {lvl}", f"{key}/{lvl}")
    add("planted conflict excluded first (%)", "chance", f"{key}/chance")
    add("planted conflict excluded first (%)", "conflicting persons (n)", f"{split}/conflict_n")
    for subset in ("conflict_persons", "clean_persons"):
        add(f"final mAP, {subset.replace('_', ' ')}", "workspace on", f"{split}/mAP/{subset}")
        add(
            f"final mAP, {subset.replace('_', ' ')}",
            "workspace off",
            f"{split}/mAP_ws_off/{subset}",
        )
    add("final mAP, all persons", "workspace on", f"{split}/mAP")
    add("final mAP, all persons", "workspace off", f"{split}/mAP_ws_off")
    add("other", "V-I mAP_t", f"{split}/mAP_t")
    add("other", "chance mAP", f"{split}/chance")
    add("other", "mean squared norm of delta", f"{split}/delta_sq")
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """One markdown table per report table."""
    out: list[str] = []
    for table in dict.fromkeys(r["table"] for r in rows):
        out += [f"### {table}", "", "| | value |", "|---|---:|"]
        out += [f"| {r['row']} | {r['value']:.2f} |" for r in rows if r["table"] == table]
        out.append("")
    return "\n".join(out)


def _paired_bars(
    ax: Any, ticks: Sequence[str], series: Sequence[tuple[str, list[float]]], top: float
) -> None:
    """Two bars per tick (``series``: two ``(label, values)``), each with its value; the y
    axis runs to ``top`` so that the legend, above the bars, covers none (ticks to 100 %)."""
    for dx, (label, values) in zip((-0.2, 0.2), series, strict=True):
        bars = ax.bar([i + dx for i in range(len(ticks))], values, 0.4, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(ticks)), list(ticks))
    ax.set_ylim(0, top)
    ax.set_yticks(range(0, 101, 20))


def plot(metrics: dict[str, Any], path: Path, split: str = "test") -> None:
    """Two panels: exclusion shares per level; mAP with the workspace on / off per subset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nan = float("nan")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    all_shares = [metrics.get(f"{split}/first_excluded/{lvl}", nan) for lvl in LEVELS]
    found = [metrics.get(f"{split}/conflict_first_excluded/{lvl}", nan) for lvl in LEVELS]
    series = [("first excluded, all persons", all_shares), ("planted level excluded first", found)]
    _paired_bars(ax1, LEVELS, series, top=135)
    chance = metrics.get(f"{split}/conflict_first_excluded/chance")
    if chance is not None:
        ax1.axhline(chance, color="grey", ls="--", lw=1, label="chance (planted conflicts)")
    ax1.set_ylabel("%")
    ax1.set_title("Competition (cf. Table 5)")
    subsets = ("conflict_persons", "clean_persons")
    on = [metrics.get(f"{split}/mAP/{s}", nan) for s in subsets]
    off = [metrics.get(f"{split}/mAP_ws_off/{s}", nan) for s in subsets]
    ticks = ["conflicting persons", "clean persons"]
    _paired_bars(ax2, ticks, [("workspace on", on), ("workspace off", off)], top=120)
    ax2.set_ylabel("final mAP (%)")
    ax2.set_title("Coordination (cf. Fig. 2)")
    for ax in (ax1, ax2):
        ax.legend(fontsize=7, loc="upper center", ncol=2)
    fig.tight_layout()
    atomic_save_as(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def write_report(run_dir: Path, split: str = "test") -> dict[str, Path]:
    """Write ``mechanism.{md,csv,png}`` into ``run_dir``; returns their paths."""
    import csv
    import io

    path = run_dir / "metrics.json"
    if not path.is_file():
        raise MissingFileError(f"{path}: no metrics.json (is this a cocoer run directory?)")
    metrics = loads_json(path.read_bytes(), path)  # InputError when damaged
    if not isinstance(metrics, dict):
        raise InputError(f"{path}: not a JSON object of metrics")
    # only numbers are metrics (a string, null or list in the file is not one)
    metrics = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e300
    }
    rows = mechanism_rows(metrics, split)
    if not any(r["table"].startswith("planted") for r in rows):
        raise InputError(
            f"{path}: no conflict metrics ({split}/conflict_first_excluded): the report needs a "
            "run on generated data with planted conflicts"
        )
    out = {k: run_dir / f"mechanism.{k}" for k in ("md", "csv", "png")}
    atomic_write_text(out["md"], markdown(rows))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=["table", "row", "value"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out["csv"], table.getvalue())
    plot(metrics, out["png"], split)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cocoer-report", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory holding metrics.json")
    parser.add_argument("--split", default="test", choices=("test", "val"))
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.run_dir, args.split)
    except CocoerError as exc:
        print(f"cocoer-report: error: {printable(str(exc), 1000)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the run directory is not writable, disk full
        print(f"cocoer-report: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    print(Path(paths["md"]).read_text(encoding="utf-8"))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

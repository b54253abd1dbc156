"""Result tables at the end of a test: per-class AP, the first-excluded level (Table 5) and
sample predictions with their exclusion sequence.

They are written as CSV and JSON under ``out_dir`` (for everyone) and logged to every
Weights & Biases logger of the trainer (tables plus a bar chart of the per-class AP).
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import lightning as L

from cocoer.constants import LEVELS
from cocoer.runs.paper import FIRST_EXCLUDED as PAPER_FIRST_EXCLUDED

log = logging.getLogger(__name__)


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts with the same keys) as ``<path>.csv`` and ``<path>.json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    if not rows:
        path.with_suffix(".csv").write_text("")
        return
    with path.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def per_class_ap_rows(pl_module: L.LightningModule) -> list[dict[str, Any]]:
    """One row per class: name and test AP (%) of the final prediction (multi-label only)."""
    if not getattr(pl_module, "multi_label", True):
        return []
    ap = getattr(pl_module, "_per_class_ap", None)
    names = list(getattr(pl_module.net, "class_names", None) or [])
    if ap is None or not names or len(names) != len(ap):
        return []
    return [
        {"class": n, "AP": round(float(v) * 100.0, 4) if v == v else None}
        for n, v in zip(names, ap.tolist(), strict=True)
    ]


def first_excluded_rows(
    metrics: dict[str, Any], dataset: str, stage: str = "test"
) -> list[dict[str, Any]]:
    """Table 5 form: our row for ``dataset`` and the paper's row when it has one."""
    ours: dict[str, Any] = {}
    for lvl in LEVELS:
        value = metrics.get(f"{stage}/first_excluded/{lvl}")
        if value is None:
            return []
        ours[lvl] = value
    rows = [
        {"dataset": dataset, "source": "ours", **{k: round(float(v), 2) for k, v in ours.items()}}
    ]
    if dataset in PAPER_FIRST_EXCLUDED:
        rows.append({"dataset": dataset, "source": "paper", **PAPER_FIRST_EXCLUDED[dataset]})
    return rows


class ResultTables(L.Callback):
    """Write and log the result tables when a test ends (rank zero only).

    Args:
        out_dir: where ``per_class_ap``, ``first_excluded`` and ``predictions`` (.csv and
            .json) go; None: ``<trainer.default_root_dir>/tables``.
        dataset: the row name of Table 5; None: EMOTIC for multi-label data, else CAER-S.
    """

    def __init__(self, out_dir: str | None = None, dataset: str | None = None) -> None:
        self.out_dir = out_dir
        self.dataset = dataset
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def _dataset(self, pl_module: L.LightningModule) -> str:
        if self.dataset:
            return self.dataset
        return "EMOTIC" if getattr(pl_module, "multi_label", True) else "CAER-S"

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", None)
        }
        self.tables = {
            "per_class_ap": per_class_ap_rows(pl_module),
            "first_excluded": first_excluded_rows(metrics, self._dataset(pl_module)),
            "predictions": list(getattr(pl_module, "prediction_rows", []) or []),
        }
        out = Path(self.out_dir or Path(trainer.default_root_dir) / "tables")
        for name, rows in self.tables.items():
            write_table(out / name, rows)
        log.info("result tables written to %s", out)
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                self._log_wandb(logger)

    def _log_wandb(self, logger: Any) -> None:
        import wandb

        run = logger.experiment
        payload: dict[str, Any] = {}
        for name, rows in self.tables.items():
            if not rows:
                continue
            columns = list(rows[0])
            # [*columns]: wandb annotates columns as the invariant list[str | int]
            table = wandb.Table(columns=[*columns], data=[[r[c] for c in columns] for r in rows])
            payload[f"test/tables/{name}"] = table
            if name == "per_class_ap":
                payload["test/charts/per_class_ap"] = wandb.plot.bar(
                    table, "class", "AP", title="test AP per class (%)"
                )
        if payload:
            run.log(payload)

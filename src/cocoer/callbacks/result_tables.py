"""Result tables at the end of a test: per-class AP, the first-excluded level (Table 5) and
sample predictions with their exclusion sequence.

They are written as CSV and JSON under ``out_dir`` (for everyone) and logged to every
Weights & Biases logger of the trainer (tables plus a bar chart of the per-class AP).

The callback reads what the LightningModule's ``test_step`` returns (``on_test_batch_end``'s
``outputs``: the batch's final ``scores`` [B, k], ``labels`` [B, k], ``prediction_rows``,
``class_names`` and ``multi_label``) and the metrics the test logged; it reads no attribute of
the module.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch import Tensor
from torchmetrics.classification import MultilabelAveragePrecision

from cocoer.constants import LEVELS
from cocoer.runs.paper import FIRST_EXCLUDED as PAPER_FIRST_EXCLUDED
from cocoer.utils.files import atomic_write_text

log = logging.getLogger(__name__)


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts with the same keys) as ``<path>.csv`` and ``<path>.json``."""
    atomic_write_text(path.with_suffix(".json"), json.dumps(rows, indent=2))
    table = io.StringIO(newline="")
    if rows:
        writer = csv.DictWriter(table, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path.with_suffix(".csv"), table.getvalue())


def per_class_ap_rows(ap: Tensor | None, names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per class: name and test AP (%) of the final prediction, from ``ap`` [k]
    (fractions, nan for a class without positives); none without AP or names."""
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
        self._ap: MultilabelAveragePrecision | None = None
        self._rows: list[dict[str, Any]] = []
        self._names: list[str] = []
        self._multi_label = True

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ap, self._rows, self._names, self._multi_label = None, [], [], True

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Collect the prediction rows and the final scores of the batch (``outputs``)."""
        if not isinstance(outputs, Mapping):
            return
        self._rows.extend(outputs.get("prediction_rows", []))
        self._names = list(outputs.get("class_names", self._names))
        self._multi_label = bool(outputs.get("multi_label", self._multi_label))
        scores, labels = outputs.get("scores"), outputs.get("labels")
        if scores is None or labels is None or not self._multi_label:
            return
        if self._ap is None:
            k = int(scores.shape[-1])
            self._ap = MultilabelAveragePrecision(num_labels=k, average=None).to(scores.device)
        self._ap.update(scores.detach(), labels.long())

    def _per_class_ap(self) -> Tensor | None:
        """AP [k] of the final prediction over the test split (every rank takes part: the
        metric's states are gathered over DDP ranks); None for single-label data."""
        if self._ap is None:
            return None
        with warnings.catch_warnings():  # classes without positives: nan, reported as None
            warnings.filterwarnings("ignore", message="No positive samples found")
            return self._ap.compute().detach().cpu()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ap = self._per_class_ap()
        if not trainer.is_global_zero:
            return
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", None)
        }
        dataset = self.dataset or ("EMOTIC" if self._multi_label else "CAER-S")
        self.tables = {
            "per_class_ap": per_class_ap_rows(ap, self._names),
            "first_excluded": first_excluded_rows(metrics, dataset),
            "predictions": list(self._rows),
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

"""Rows of the prediction table of a test run (the result-table callback writes them): per
person the ground truth, the prediction, the V-I pseudo label, the exclusion sequence and the
level losses f_m (docs/method.md section 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from cocoer.constants import LEVELS


def _names(names: Sequence[str], on: Tensor) -> str:
    return ", ".join(n for n, v in zip(names, on.tolist(), strict=True) if v)


def prediction_rows(
    out: Mapping[str, Tensor],
    batch: Mapping[str, Tensor],
    scores: Tensor,
    thresholds: Tensor,
    class_names: Sequence[str],
    multi_label: bool,
    limit: int,
) -> list[dict[str, Any]]:
    """At most ``limit`` rows for the first persons of a batch.

    Args:
        out: the model's ``y_t`` [B, k], ``order`` [B, 3], ``f`` [B, 3].
        batch: ``labels`` [B, k] and, when the data has it, ``index`` [B].
        scores: [B, k] final scores; thresholds: [k] (multi-label; single label: argmax).
    """
    scores = scores.detach().cpu()
    if multi_label:
        pred = scores > thresholds.cpu()
    else:
        pred = torch.nn.functional.one_hot(scores.argmax(-1), len(class_names)).bool()
    labels = batch["labels"].cpu() > 0.5
    y_t = out["y_t"].cpu() > 0.5
    rows = []
    for i in range(min(limit, scores.shape[0])):
        rows.append(
            {
                "index": int(batch["index"][i]) if "index" in batch else i,
                "ground_truth": _names(class_names, labels[i]),
                "prediction": _names(class_names, pred[i]),
                "vi_pseudo_label": _names(class_names, y_t[i]),
                "exclusion_sequence": " -> ".join(LEVELS[j] for j in out["order"][i].tolist()),
                **{f"f_{LEVELS[j]}": float(out["f"][i, j]) for j in range(3)},
            }
        )
    return rows

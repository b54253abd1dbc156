"""Epoch statistics of the LightningModule as torchmetrics ``Metric`` states.

Every state declares its DDP reduction (``sum`` or ``cat``), so the counts over the whole split
come from the library: no hand-written rank reductions.

- :class:`LevelCounts`: how often each level (context, body, head) was excluded first
  (Table 5 of the paper; docs/method.md section 4).
- :class:`ClassPositives`: positives per class (AP is undefined for a class without any).
- :class:`ScoreBank`: the final scores and labels of the validation split, kept for the
  threshold calibration (:func:`cocoer.training.calibration.calibrate_thresholds`).
- :class:`ConflictExclusion`: on generated data with a planted conflicting level, how often
  the first-excluded level is the planted one, per planted level, and the share expected by
  chance (first-excluded level independent of the planted one).
- :class:`MaskedMeanAP`: mAP (mean over the classes with positives) of a subset of persons
  (e.g. those with a planted conflict, or the clean ones).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import multilabel_average_precision
from torchmetrics.utilities import dim_zero_cat

from cocoer.constants import LEVELS


class LevelCounts(Metric):
    """Counts of the first-excluded level.  update(order [B, 3]); compute() -> [3] long."""

    full_state_update = False
    counts: Tensor

    def __init__(self, num_levels: int = len(LEVELS)) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.add_state("counts", torch.zeros(num_levels, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, order: Tensor) -> None:
        self.counts += torch.bincount(order[:, 0], minlength=self.num_levels)

    def compute(self) -> Tensor:
        return self.counts


class ClassPositives(Metric):
    """Positives per class.  update(labels [B, k]); compute() -> [k] long."""

    full_state_update = False
    counts: Tensor

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, labels: Tensor) -> None:
        self.counts += (labels > 0.5).sum(0).to(self.counts)

    def compute(self) -> Tensor:
        return self.counts


class ScoreBank(Metric):
    """Scores [N, k] and labels [N, k] of a whole split (gathered over ranks on compute)."""

    full_state_update = False
    scores: list[Tensor]
    labels: list[Tensor]

    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, scores: Tensor, labels: Tensor) -> None:
        self.scores.append(scores.detach().float())
        self.labels.append(labels.detach().float())

    def compute(self) -> tuple[Tensor, Tensor]:
        if isinstance(self.scores, list) and not self.scores:  # after a DDP sync: a tensor
            return torch.zeros(0, 0), torch.zeros(0, 0)
        return dim_zero_cat(self.scores), dim_zero_cat(self.labels)


class ConflictExclusion(Metric):
    """First-excluded level vs the planted conflicting level.

    update(order [B, 3], conflict_level [B] long: -1 none, else the level index in LEVELS).
    compute() -> dict: ``all`` (share, %, of conflicting persons whose first-excluded level is
    the planted one), one entry per level (the same among persons with that planted level),
    ``chance`` (%: sum over levels of P(planted = m) * P(first excluded = m), the share if the
    exclusion ignored the conflict), ``n`` (conflicting persons).
    """

    full_state_update = False
    planted: Tensor
    hits: Tensor
    first: Tensor

    def __init__(self, num_levels: int = len(LEVELS)) -> None:
        super().__init__()
        self.num_levels = num_levels
        zeros = torch.zeros(num_levels, dtype=torch.long)
        self.add_state("planted", zeros.clone(), dist_reduce_fx="sum")  # persons per planted level
        self.add_state("hits", zeros.clone(), dist_reduce_fx="sum")  # ... found first
        self.add_state("first", zeros.clone(), dist_reduce_fx="sum")  # first-excluded (all)

    def update(self, order: Tensor, conflict_level: Tensor) -> None:
        first = order[:, 0]
        m = self.num_levels
        self.first += torch.bincount(first, minlength=m)
        has = conflict_level >= 0
        planted = conflict_level[has]
        self.planted += torch.bincount(planted, minlength=m)
        self.hits += torch.bincount(planted[first[has] == planted], minlength=m)

    def compute(self) -> dict[str, Tensor]:
        n = self.planted.sum()
        out = {"all": 100.0 * self.hits.sum().float() / n.clamp_min(1).float()}
        for i, lvl in enumerate(LEVELS[: self.num_levels]):
            out[lvl] = 100.0 * self.hits[i].float() / self.planted[i].clamp_min(1).float()
        p_planted = self.planted.float() / n.clamp_min(1).float()
        p_first = self.first.float() / self.first.sum().clamp_min(1).float()
        out["chance"] = 100.0 * (p_planted * p_first).sum()
        out["n"] = n.float()
        return out


class MaskedMeanAP(Metric):
    """mAP (%) over a subset of persons: mean per-class AP over the classes with positives.

    update(scores [B, k], labels [B, k], mask [B] bool); compute() -> scalar (nan if empty).
    """

    full_state_update = False
    scores: list[Tensor]
    labels: list[Tensor]

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("scores", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, scores: Tensor, labels: Tensor, mask: Tensor) -> None:
        self.scores.append(scores.detach().float()[mask])
        self.labels.append(labels.detach().float()[mask])

    def compute(self) -> Tensor:
        if isinstance(self.scores, list) and not self.scores:  # after a DDP sync: a tensor
            return torch.tensor(float("nan"))
        s, y = dim_zero_cat(self.scores), dim_zero_cat(self.labels)
        valid = y.sum(0) > 0
        if s.shape[0] == 0 or not valid.any():
            return torch.tensor(float("nan"))
        with warnings.catch_warnings():  # classes without positives: excluded just below
            warnings.filterwarnings("ignore", message="No positive samples found")
            ap = multilabel_average_precision(
                s, y.long(), num_labels=self.num_classes, average="none"
            )
        return 100.0 * ap[valid].mean()


@contextmanager
def workspace_switched_off(workspace: Any) -> Iterator[None]:
    """Run the model with coordination switched off: ``delta_scale = inner_lr = 0``, so that
    z^_m = z_m (competition still runs; its order is unchanged)."""
    saved = workspace.delta_scale, workspace.inner_lr
    workspace.delta_scale, workspace.inner_lr = 0.0, 0.0
    try:
        yield
    finally:
        workspace.delta_scale, workspace.inner_lr = saved


def workspace_off_outputs(net: Any, batch: Any) -> dict[str, Tensor]:
    """The workspace-off pass: the outputs of ``net`` (a CocoER) on ``batch`` with coordination
    switched off (:func:`workspace_switched_off`), without gradients."""
    with torch.no_grad(), workspace_switched_off(net.workspace):
        return cast(dict[str, Tensor], net(batch))

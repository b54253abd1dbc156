"""Everything a validation or test epoch reports, in one module with ``update`` / ``compute``.

:class:`EpochStatistics` holds torchmetrics states only (each declares its DDP reduction), so
the figures of the whole split come from the library:

- ``{stage}/mAP`` (multi-label: mean of the per-class AP over the classes with positives) or
  ``{stage}/acc`` (single label) of the final prediction, and the same metric for the V-I
  prediction and each level (``{stage}/mAP_t``, ``{stage}/mAP_c``...);
- ``{stage}/first_excluded/{level}``: the share (%) of persons whose first excluded level is
  that level (Table 5; docs/method.md section 4);
- on generated data with a planted conflicting level: ``{stage}/conflict_first_excluded``
  (all, per level, chance), ``{stage}/conflict_n`` and the mAPs on conflicting / clean persons
  with the workspace on and switched off (``{stage}/mAP_ws_off``...).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAveragePrecision

from cocoer.constants import HEAD_NAMES, LEVEL_SHORT, LEVELS
from cocoer.training.epoch_metrics import (
    ClassPositives,
    ConflictExclusion,
    LevelCounts,
    MaskedMeanAP,
)

HEADS = tuple(HEAD_NAMES)  # G, t, c, b, h: final, V-I, context, body, head
#: the runs of the conflict statistics: the model as it is, and with the workspace off
RUNS = ("ws_on", "ws_off")
SUBSETS = ("all", "conflict", "clean")


def scores_of(logits: Tensor, multi_label: bool) -> Tensor:
    """Scores [B, k] of logits [B, k]: sigmoid (multi-label) or softmax (single label)."""
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)


@dataclass
class EpochResult:
    """What :meth:`EpochStatistics.compute` gives.

    heads: metric key -> value (%) as a 0-dim tensor, one per head (the final one first);
    counts: metric key -> value of the first-excluded and conflict statistics;
    per_class_ap: [k] AP (fraction, nan without positives) of the final prediction
    (multi-label only, else None).
    """

    heads: dict[str, Tensor] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    per_class_ap: Tensor | None = None


class EpochStatistics(nn.Module):
    """The statistics of one stage (``val`` or ``test``) over an epoch.

    Args:
        num_classes: k. multi_label: mAP (multi-label) or accuracy (single label).
        exclusion: the model has an exclusion order (not in the V-I pre-alignment stage).
    """

    def __init__(self, num_classes: int, multi_label: bool, exclusion: bool = True) -> None:
        super().__init__()
        self.multi_label, self.exclusion = multi_label, exclusion
        k = num_classes
        make: Callable[[], Metric]
        if multi_label:
            make = lambda: MultilabelAveragePrecision(num_labels=k, average=None)
        else:
            make = lambda: MulticlassAccuracy(num_classes=k, average="micro")
        self.heads = MetricCollection({h: make() for h in HEADS})
        stats: dict[str, Metric] = {
            "first": LevelCounts(),
            "positives": ClassPositives(k),
            "conflict": ConflictExclusion(),
        }
        if multi_label:
            for run in RUNS:
                for subset in SUBSETS:
                    stats[f"mAP_{run}_{subset}"] = MaskedMeanAP(k)
        self.stats = nn.ModuleDict(stats)

    def _stat(self, name: str) -> Metric:
        return cast(Metric, self.stats[name])

    def wants_workspace_off(self, batch: Mapping[str, Tensor]) -> bool:
        """Whether :meth:`update` needs the outputs with the workspace switched off
        (generated data with planted conflicts, multi-label)."""
        return self.exclusion and self.multi_label and "conflict_level" in batch

    def update(
        self,
        out: Mapping[str, Tensor],
        batch: Mapping[str, Tensor],
        off: Mapping[str, Tensor] | None = None,
    ) -> None:
        """Add a batch: the model's outputs ``out`` (``logits_G`` [B, k], ``logits_t``
        [B, k], ``logits_levels`` [B, 3, k], ``order`` [B, 3]), the batch (``labels`` [B, k],
        optional ``conflict_level`` [B]) and, when :meth:`wants_workspace_off`, the outputs
        of the same batch with the workspace switched off."""
        y = batch["labels"]
        target = y.long() if self.multi_label else y.argmax(-1)
        logits = {"G": out["logits_G"], "t": out["logits_t"]}
        logits.update(
            {h: out["logits_levels"][:, i] for i, h in enumerate(LEVEL_SHORT[m] for m in LEVELS)}
        )
        for h, lg in logits.items():
            self.heads[h].update(scores_of(lg.detach(), self.multi_label), target)
        if self.exclusion:
            self._stat("first").update(out["order"])
        self._stat("positives").update(y)
        if "conflict_level" in batch and self.exclusion:
            planted = batch["conflict_level"].long()
            self._stat("conflict").update(out["order"], planted)
            if off is not None and self.multi_label:
                masks = {"all": torch.ones_like(planted, dtype=torch.bool)}
                masks.update(conflict=planted >= 0, clean=planted < 0)
                for run, o in zip(RUNS, (out, off), strict=True):
                    scores = scores_of(o["logits_G"].detach(), True)
                    for subset, mask in masks.items():
                        self._stat(f"mAP_{run}_{subset}").update(scores, y, mask)

    def compute(self, stage: str) -> EpochResult:
        """The figures of the epoch, keyed ``{stage}/...`` (see the module docstring)."""
        result = EpochResult()
        name = "mAP" if self.multi_label else "acc"
        positives = cast(Tensor, self._stat("positives").compute())  # summed over ranks
        for h in HEADS:
            with warnings.catch_warnings():  # classes without positives are excluded below
                warnings.filterwarnings("ignore", message="No positive samples found")
                value = self.heads[h].compute()
            if self.multi_label:  # mean over classes with positives (AP undefined otherwise)
                per_class = value
                valid = torch.isfinite(per_class) & (positives > 0)
                value = (
                    per_class[valid].mean() if valid.any() else per_class.new_tensor(float("nan"))
                )
                if h == "G":
                    result.per_class_ap = per_class.detach().cpu()
            key = f"{stage}/{name}" if h == "G" else f"{stage}/{name}_{h}"
            result.heads[key] = value * 100.0
        first = cast(Tensor, self._stat("first").compute())
        result.counts = {
            f"{stage}/first_excluded/{lvl}": float(100.0 * first[i] / first.sum().clamp_min(1))
            for i, lvl in enumerate(LEVELS)
            if first.sum() > 0  # none in pre-alignment
        }
        result.counts.update(self._conflict_results(stage))
        return result

    def _conflict_results(self, stage: str) -> dict[str, float]:
        res = cast(dict[str, Tensor], self._stat("conflict").compute())
        if float(res["n"]) == 0:
            return {}
        key = f"{stage}/conflict_first_excluded"
        out = {key: float(res["all"]), f"{stage}/conflict_n": float(res["n"])}
        out.update({f"{key}/{lvl}": float(res[lvl]) for lvl in (*LEVELS, "chance")})
        if self.multi_label:
            for run, tag in zip(RUNS, ("mAP", "mAP_ws_off"), strict=True):
                for subset in ("conflict", "clean"):
                    value = self._stat(f"mAP_{run}_{subset}").compute()
                    out[f"{stage}/{tag}/{subset}_persons"] = float(value)
                if run == "ws_off":
                    out[f"{stage}/{tag}"] = float(self._stat(f"mAP_{run}_all").compute())
        return out

    def reset(self) -> None:
        """Empty every state (at the end of an epoch)."""
        for h in HEADS:
            self.heads[h].reset()
        for metric in self.stats.values():
            cast(Metric, metric).reset()

"""Calibration of the per-class decision thresholds on the validation split, stored in the
checkpoint's buffer ``thresholds`` and used by the ``calibrated`` inference mode
(:mod:`cocoer.infer.thresholds`, docs/method.md section 7)."""

from __future__ import annotations

import torch
from torch import Tensor

from cocoer.constants import CALIBRATION_RULES
from cocoer.errors import check_choice

__all__ = ["CALIBRATION_RULES", "calibrate_thresholds"]


def calibrate_thresholds(scores: Tensor, labels: Tensor, rule: str = "f1") -> Tensor:
    """Per-class thresholds from validation scores [N, k] and labels [N, k] -> [k].

    ``f1``: the candidate score maximising F1 of the class; ``pr_equal``: the candidate
    where precision and recall are closest; ``fixed``: 0.5. Classes without positives get
    0.5. Candidates are midpoints between consecutive sorted scores.

    >>> import torch
    >>> scores = torch.tensor([[0.9, 0.2], [0.7, 0.4], [0.3, 0.1], [0.1, 0.3]])
    >>> labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    >>> calibrate_thresholds(scores, labels)  # class 0: (0.7 + 0.3) / 2; class 1: no positive
    tensor([0.5000, 0.5000])
    >>> calibrate_thresholds(scores, labels, "fixed")
    tensor([0.5000, 0.5000])
    >>> s1, y1 = torch.tensor([[0.8], [0.6], [0.2]]), torch.tensor([[1.0], [1.0], [0.0]])
    >>> calibrate_thresholds(s1, y1)  # F1 = 1 between the positives and the negative
    tensor([0.4000])
    """
    check_choice("threshold rule", rule, CALIBRATION_RULES)
    k = scores.shape[1]
    out = torch.full((k,), 0.5)
    if rule == "fixed" or scores.numel() == 0:
        return out
    s, order = torch.sort(scores, dim=0, descending=True)
    y = labels.gather(0, order)
    tp = y.cumsum(0)
    fp = (1 - y).cumsum(0)
    pos = y.sum(0, keepdim=True)
    precision = tp / (tp + fp)
    recall = tp / pos.clamp_min(1)
    if rule == "f1":
        crit = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        best = crit.argmax(0)
    else:
        best = (precision - recall).abs().argmin(0)
    nxt = (best + 1).clamp_max(s.shape[0] - 1)
    cols = torch.arange(k)
    thr = torch.where(nxt > best, 0.5 * (s[best, cols] + s[nxt, cols]), s[best, cols] - 1e-6)
    return torch.where(pos[0] > 0, thr, out)

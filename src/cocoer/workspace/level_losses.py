"""The level losses f_m and their closed-form derivatives (docs/method.md sections 4-5).

Each level loss is used twice: as a training loss against the ground truth, and inside
the workspace as the per-sample level loss f_m against the V-I pseudo label y_t
(section 4, step 1). The workspace needs its derivative with respect to the logits,
d f / d l, in closed form (``LevelLoss.grad``) so that the gradient Gram matrix K and
the inner step are computed batched, without extra backward passes.

Kinds:
- ``bce``: binary cross-entropy with per-class weights, summed over classes (EMOTIC).
- ``l2``: weighted squared error on sigmoid outputs, summed over classes (EMOTIC option).
- ``ce``: softmax cross-entropy against a one-hot target (CAER-S).

The training objective L_emo built from them is :mod:`cocoer.training.losses`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from cocoer.errors import check_choice
from cocoer.workspace.config import LOSS_KINDS

#: Weight of a class with positives in EMOTIC's dynamic weighting: w = 1 / ln(n + 1.2).
EMOTIC_C = 1.2
#: Weight of a class without positives.
EMOTIC_EMPTY_WEIGHT = 1e-4


def emotic_batch_weights(y: Tensor) -> Tensor:
    """EMOTIC dynamic class weights of a batch: w_i = 1/ln(n_i + 1.2), 1e-4 if n_i = 0.

    Args:
        y: [B, k] multi-hot targets.
    Returns:
        [k] weights.
    """
    n = y.detach().sum(0)
    return torch.where(
        n > 0, 1.0 / torch.log(n + EMOTIC_C), torch.full_like(n, EMOTIC_EMPTY_WEIGHT)
    )


def emotic_sample_weights(y: Tensor) -> Tensor:
    """Per-sample weights from one sample's own (pseudo) label, as the authors' code does.

    A positive class gets 1/ln(1 + 1.2), any other 1e-4.  y [B, k] -> [B, k].
    """
    pos = 1.0 / math.log(1.0 + EMOTIC_C)
    y = y.detach()
    return torch.where(y > 0.5, torch.full_like(y, pos), torch.full_like(y, EMOTIC_EMPTY_WEIGHT))


def sigmoid_tail_exact(x: Tensor) -> Tensor:
    """sigma(x) with relative precision in both tails, from exp(-|x|) (same shape).

    ONNX Runtime's fused Sigmoid is exact only in absolute terms (sigma(-12) off by 0.6%,
    sigma(x <= -17) = 0); written with Exp it keeps float32's relative precision there,
    in PyTorch and in the exported graph alike.
    """
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_residual(logits: Tensor, y: Tensor) -> Tensor:
    """sigma(l) - y computed as (1 - y) sigma(l) - y sigma(-l) (equal for any y).

    For y in {0, 1} nothing cancels: the naive ``sigmoid(l) - 1`` of a confident positive
    (l = 12: 6e-6) keeps only about two significant digits in float32.  Shapes broadcast.
    """
    return (1.0 - y) * sigmoid_tail_exact(logits) - y * sigmoid_tail_exact(-logits)


def softmax_residual(logits: Tensor, y: Tensor) -> Tensor:
    """softmax(l) - y over the last axis [..., k], as p_i (1 - y_i) - y_i sum_{j != i} p_j.

    Equal to p - y for any y (sum p = 1); for a one-hot y no term cancels, so the true
    class's -(1 - p_c) keeps its relative precision when p_c is close to 1.
    """
    p = torch.softmax(logits, -1)
    k = p.shape[-1]
    off = 1.0 - torch.eye(k, dtype=p.dtype, device=p.device)  # [k, k], zero diagonal
    rest = (p.unsqueeze(-2) * off).sum(-1)  # [..., k]: sum_{j != i} p_j
    return p * (1.0 - y) - y * rest


@dataclass(frozen=True)
class LevelLoss:
    """A per-sample classification loss with its closed-form logit gradient.

    Attributes:
        kind: ``bce`` | ``l2`` | ``ce``.
    """

    kind: str = "bce"

    def __post_init__(self) -> None:
        check_choice("loss kind", self.kind, LOSS_KINDS)

    @property
    def multi_label(self) -> bool:
        return self.kind != "ce"

    def per_sample(self, logits: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        """Loss per sample.  logits, y [..., k]; w broadcastable to [..., k] -> [...]."""
        y = y.expand_as(logits)
        if self.kind == "ce":
            return -(y * F.log_softmax(logits, -1)).sum(-1)
        if self.kind == "bce":
            per_class = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        else:
            per_class = sigmoid_residual(logits, y).square()
        if w is not None:
            per_class = per_class * w
        return per_class.sum(-1)

    def grad(self, logits: Tensor, y: Tensor, w: Tensor | None = None) -> Tensor:
        """d per_sample / d logits, same shape as logits (differentiable).

        Written without cancellation (:func:`sigmoid_residual`, :func:`softmax_residual`):
        a confident logit's gradient keeps its relative precision, which the workspace's
        coordination step needs (docs/method.md section 4, "Rounding").
        """
        y = y.expand_as(logits)
        if self.kind == "ce":
            return softmax_residual(logits, y)
        r = sigmoid_residual(logits, y)
        g = (
            r
            if self.kind == "bce"
            else 2.0 * r * sigmoid_tail_exact(logits) * sigmoid_tail_exact(-logits)
        )
        return g * w if w is not None else g

    def batch_mean(self, logits: Tensor, y: Tensor, dynamic_weights: bool = True) -> Tensor:
        """Training loss against the ground truth: per-sample loss averaged over the batch.

        Multi-label kinds use EMOTIC's dynamic batch weights when ``dynamic_weights``.
        """
        w = emotic_batch_weights(y) if (self.multi_label and dynamic_weights) else None
        return self.per_sample(logits, y, w).mean()

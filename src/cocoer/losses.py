"""Classification losses and the training objective L_emo (docs/method.md section 5).

Each level loss is used twice: as a training loss against the ground truth, and inside
the workspace as the per-sample level loss f_m against the V-I pseudo label y_t
(section 4, step 1). The workspace needs its derivative with respect to the logits,
d f / d l, in closed form (``LevelLoss.grad``) so that the gradient Gram matrix K and
the inner step are computed batched, without extra backward passes.

Kinds:
- ``bce``: binary cross-entropy with per-class weights, summed over classes (EMOTIC).
- ``l2``: weighted squared error on sigmoid outputs, summed over classes (EMOTIC option).
- ``ce``: softmax cross-entropy against a one-hot target (CAER-S).

The optional continuous head (a cocoer extension, docs/method.md section 10) adds
beta_vad L_vad to L_emo (:func:`vad_loss`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from cocoer.constants import LEVEL_SHORT, LEVELS

#: Weight of a class with positives in EMOTIC's dynamic weighting: w = 1 / ln(n + 1.2).
EMOTIC_C = 1.2
#: Weight of a class without positives.
EMOTIC_EMPTY_WEIGHT = 1e-4
LOSS_KINDS = ("bce", "l2", "ce")


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
        if self.kind not in LOSS_KINDS:
            raise ValueError(f"unknown loss kind {self.kind!r}; choose one of {LOSS_KINDS}")

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


@dataclass
class LossWeights:
    """beta_c, beta_b, beta_h, beta_t, beta_G and alpha of L_emo (also the base of the
    config schema ``cocoer.configs.schema.LossConfig``)."""

    beta_c: float = 1.0
    beta_b: float = 1.0
    beta_h: float = 1.0
    beta_t: float = 1.0
    beta_G: float = 1.0
    alpha: float = 0.1
    beta_vad: float = 1.0  # weight of L_vad (only with the VAD head, section 10)


def emo_loss(
    loss: LevelLoss,
    logits_levels: Tensor,
    logits_t: Tensor,
    logits_G: Tensor,
    delta_sq: Tensor,
    y: Tensor,
    weights: LossWeights,
    dynamic_weights: bool = True,
    detach_level_terms: bool = False,
) -> dict[str, Tensor]:
    """L_emo = sum_m beta_m L_m + beta_t L_t + beta_G L_G + alpha |delta|^2 (section 5).

    Args:
        logits_levels: [B, 3, k] level logits l_c, l_b, l_h.
        logits_t: [B, k] V-I logits; logits_G: [B, k] final logits.
        delta_sq: [B] |delta|^2 = mu^T K mu per sample.
        y: [B, k] ground truth (multi-hot or one-hot).
        detach_level_terms: the authors' code (section 9) computes L_c, L_b, L_h and
            |delta|^2 from detached numbers; True reproduces that.
    Returns:
        dict with ``loss`` and every term (``loss_c``, ``loss_b``, ``loss_h``, ``loss_t``,
        ``loss_G``, ``delta_sq``).
    """
    terms = {
        f"loss_{m}": loss.batch_mean(logits_levels[:, i], y, dynamic_weights)
        for i, m in enumerate(LEVEL_SHORT[lvl] for lvl in LEVELS)
    }
    terms["loss_t"] = loss.batch_mean(logits_t, y, dynamic_weights)
    terms["loss_G"] = loss.batch_mean(logits_G, y, dynamic_weights)
    terms["delta_sq"] = delta_sq.mean()
    w = weights
    level = w.beta_c * terms["loss_c"] + w.beta_b * terms["loss_b"] + w.beta_h * terms["loss_h"]
    reg = w.alpha * terms["delta_sq"]
    if detach_level_terms:
        level, reg = level.detach(), reg.detach()
    terms["loss"] = level + w.beta_t * terms["loss_t"] + w.beta_G * terms["loss_G"] + reg
    return terms


def vad_predictions(out: dict[str, Tensor]) -> dict[str, Tensor]:
    """The VAD head's predictions by predictor name (G, t, c, b, h): each [B, 3]; {} when the
    model has no VAD head."""
    if "vad_G" not in out:
        return {}
    preds = {"G": out["vad_G"], "t": out["vad_t"]}
    preds.update({LEVEL_SHORT[m]: out["vad_levels"][:, i] for i, m in enumerate(LEVELS)})
    return preds


def vad_loss(preds: dict[str, Tensor], v: Tensor) -> Tensor:
    """L_vad: smooth L1 (Huber, threshold 1) between each predictor's values and the
    annotated v, averaged over the persons with values, the 3 dimensions and the 5
    predictors G, t, c, b, h (docs/method.md section 10).

    Args:
        preds: predictor name -> [B, 3] (:func:`vad_predictions`).
        v: [B, 3] annotated valence, arousal, dominance; NaN rows (dropped values) masked.
    Returns:
        [] the loss (0, still attached to the graph, when no person has values).
    """
    valid = torch.isfinite(v).all(-1)  # [B]
    target = torch.where(valid[:, None], v, torch.zeros_like(v))
    n = valid.sum().clamp_min(1)
    per = [
        (F.smooth_l1_loss(p, target, reduction="none").mean(-1) * valid).sum() / n
        for p in preds.values()
    ]
    return torch.stack(per).mean()

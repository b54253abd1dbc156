"""The training objective L_emo (docs/method.md section 5) and the continuous head's L_vad
(section 10), built from the level losses of :mod:`cocoer.workspace.level_losses`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cocoer.constants import LEVEL_SHORT, LEVELS
from cocoer.training.config import LossWeights
from cocoer.workspace.level_losses import LevelLoss


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

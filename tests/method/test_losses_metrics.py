"""Losses (closed-form logit gradients, EMOTIC weights, L_emo), threshold calibration, and
the reported test mAP against scikit-learn's average precision."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cocoer.training.calibration import calibrate_thresholds
from cocoer.training.losses import LossWeights, emo_loss
from cocoer.workspace.level_losses import (
    LOSS_KINDS,
    LevelLoss,
    emotic_batch_weights,
    emotic_sample_weights,
)


@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_closed_form_logit_gradient_matches_autograd(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    if kind == "ce":
        y = torch.nn.functional.one_hot(torch.randint(0, 7, (5, 1), generator=gen), 7).double()
    else:
        y = (torch.rand(5, 1, 7, generator=gen) > 0.5).double()
    w = None if kind == "ce" else torch.rand(5, 1, 7, generator=gen, dtype=torch.float64)
    loss = LevelLoss(kind)
    (auto,) = torch.autograd.grad(loss.per_sample(logits, y, w).sum(), logits)
    torch.testing.assert_close(loss.grad(logits, y, w), auto)


def test_emotic_weights() -> None:
    y = torch.tensor([[1.0, 0, 0], [1.0, 1, 0], [1.0, 0, 0]])
    w = emotic_batch_weights(y)
    expected = [1 / math.log(3 + 1.2), 1 / math.log(1 + 1.2), 1e-4]
    torch.testing.assert_close(w, torch.tensor(expected))
    ws = emotic_sample_weights(y)
    assert ws[1, 1] == pytest.approx(1 / math.log(2.2)) and ws[0, 2] == pytest.approx(1e-4)


def test_emo_loss_weights_each_term_and_can_detach_the_level_terms() -> None:
    gen = torch.Generator().manual_seed(1)
    lv = torch.randn(4, 3, 5, generator=gen, requires_grad=True)
    lt, lg = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    dsq = torch.rand(4, generator=gen, requires_grad=True)
    y = (torch.rand(4, 5, generator=gen) > 0.5).float()
    loss = LevelLoss("bce")
    w = LossWeights(beta_c=0.5, beta_b=2.0, beta_h=0.0, beta_t=1.0, beta_G=3.0, alpha=0.1)
    t = emo_loss(loss, lv, lt, lg, dsq, y, w)
    expected = (
        0.5 * t["loss_c"] + 2.0 * t["loss_b"] + t["loss_t"] + 3.0 * t["loss_G"] + 0.1 * dsq.mean()
    )
    torch.testing.assert_close(t["loss"], expected)
    torch.testing.assert_close(t["loss_G"], loss.per_sample(lg, y, emotic_batch_weights(y)).mean())
    detached = emo_loss(loss, lv, lt, lg, dsq, y, w, detach_level_terms=True)
    assert not detached["loss"].requires_grad  # only L_t and L_G would carry gradient


def brute_force_f1_threshold(s: np.ndarray, y: np.ndarray) -> float:
    best, arg = -1.0, 0.5
    for t in np.unique(s):
        pred = s >= t
        tp = (pred & (y == 1)).sum()
        f1 = 2 * tp / (pred.sum() + (y == 1).sum())
        if f1 > best:
            best, arg = f1, t
    return arg


def test_f1_threshold_calibration_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((200, 4)) < [0.1, 0.3, 0.5, 0.0]).astype(np.float32)
    s = np.clip(y * 0.3 + rng.random((200, 4)) * 0.7, 0, 1).astype(np.float32)
    thr = calibrate_thresholds(torch.from_numpy(s), torch.from_numpy(y), "f1").numpy()
    for c in range(3):
        t_star = brute_force_f1_threshold(s[:, c], y[:, c])
        ours = (s[:, c] > thr[c]) == (s[:, c] >= t_star)
        assert ours.all(), c  # the same decisions on the validation scores
    assert thr[3] == 0.5  # a class without positives keeps the default


def test_reported_map_equals_sklearn(tiny_checkpoint: Path, tiny_emotic_root: Path) -> None:
    """test/mAP from cocoer-eval = mean of sklearn's AP over classes with positives."""
    from sklearn.metrics import average_precision_score

    from cocoer.checkpoint.model import load_model
    from cocoer.data import EmoticDataModule
    from cocoer.train import evaluate
    from tests.support.helpers import TINY_OVERRIDES, compose_config

    model = load_model(tiny_checkpoint)
    dm = EmoticDataModule(
        root=str(tiny_emotic_root), image_size=32, batch_size=8, num_workers=0, augment=None
    )
    dm.setup("test")
    scores, labels = [], []
    with torch.inference_mode():
        for batch in dm.test_dataloader():
            scores.append(torch.sigmoid(model.net(batch)["logits_G"]))
            labels.append(batch["labels"])
    s, y = torch.cat(scores).numpy(), torch.cat(labels).numpy()
    has_pos = y.sum(0) > 0
    ref = 100 * np.mean([average_precision_score(y[:, c], s[:, c]) for c in np.where(has_pos)[0]])

    over = [o for o in TINY_OVERRIDES if not o.startswith(("trainer.max_epochs", "model."))]
    cfg = compose_config(
        "eval",
        tiny_checkpoint.parent / "eval",
        tiny_emotic_root,
        [*over, f"ckpt_path={tiny_checkpoint}"],
    )
    ours = evaluate(cfg)["test/mAP"]
    assert ours == pytest.approx(ref, abs=1e-3)

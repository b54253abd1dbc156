"""Training-time side of the continuous head (docs/method.md section 10): the L_vad term of a
step, the mean absolute errors logged on val / test, the training-mean baseline of a run and
the lines the run prints.

Logged (only when the model has the VAD head), for ``stage`` in val / test:
``{stage}/vad_mae`` (final prediction, mean over the 3 dimensions),
``{stage}/vad_mae/{valence|arousal|dominance}`` (final prediction, per dimension) and
``{stage}/vad_mae_{t|c|b|h}`` (V-I and each level, mean over dimensions); on every stage
``{stage}/loss_vad``. The errors are averages over the persons with values: each batch is
logged with its number of such persons as the weight, so Lightning's epoch mean is the MAE
of the whole split. ``metrics.json`` also holds ``test/vad_mae_baseline[/dim]``: the MAE of
predicting the training mean (:func:`vad_baseline`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import lightning as L
import torch
from torch import Tensor

from cocoer.constants import VAD_NAMES
from cocoer.errors import ConfigError
from cocoer.training.losses import vad_loss, vad_predictions


def vad_step(
    module: L.LightningModule,
    out: dict[str, Tensor],
    batch: Mapping[str, Tensor],
    terms: dict[str, Tensor],
    stage: str,
) -> dict[str, Tensor]:
    """``terms`` with ``loss_vad`` added (and beta_vad L_vad added to ``loss``), the errors
    logged on val / test; ``terms`` unchanged when the model has no VAD head.

    Raises:
        ConfigError: the model has the head but the batch carries no ``vad`` targets.
    """
    preds = vad_predictions(out)
    if not preds:
        return terms
    if "vad" not in batch:
        raise ConfigError(
            "model.net.vad.enabled needs continuous annotations (EMOTIC data); this data has none"
        )
    v = batch["vad"].to(preds["G"].dtype)  # [B, 3]
    loss = vad_loss(preds, v)
    beta = float(cast(Any, module).loss_weights.beta_vad)
    terms = {**terms, "loss_vad": loss, "loss": terms["loss"] + beta * loss}
    if stage != "train":
        log_vad_errors(module, preds, v, stage)
    return terms


def vad_errors(preds: Mapping[str, Tensor], v: Tensor) -> tuple[dict[str, Tensor], int]:
    """Mean absolute errors of one batch over the persons with values, and their number.

    Args:
        preds: predictor name (G, t, c, b, h) -> [B, 3]; v: [B, 3] targets (NaN rows masked).
    Returns:
        ``({"vad_mae": .., "vad_mae/valence": .., ..., "vad_mae_t": .., ...}, n)``: scalars.
    """
    valid = torch.isfinite(v).all(-1)  # [B]
    n = int(valid.sum())
    errors: dict[str, Tensor] = {}
    if n == 0:
        return errors, 0
    for name, p in preds.items():
        per_dim = (p.detach()[valid] - v[valid]).abs().mean(0)  # [3]
        key = "vad_mae" if name == "G" else f"vad_mae_{name}"
        errors[key] = per_dim.mean()
        if name == "G":
            errors.update({f"vad_mae/{d}": per_dim[i] for i, d in enumerate(VAD_NAMES)})
    return errors, n


def log_vad_errors(
    module: L.LightningModule, preds: Mapping[str, Tensor], v: Tensor, stage: str
) -> None:
    """Log :func:`vad_errors` weighted by the number of persons with values (epoch means)."""
    errors, n = vad_errors(preds, v)
    if n:
        module.log_dict(
            {f"{stage}/{k}": e for k, e in errors.items()},
            on_step=False,
            on_epoch=True,
            batch_size=n,
            sync_dist=True,
        )


def _split_vad(datamodule: Any, split: str) -> Tensor | None:
    ds = getattr(datamodule, "datasets", {}).get(split)
    return getattr(ds, "vad", None)


def vad_baseline(datamodule: Any, split: str = "test") -> dict[str, float]:
    """MAE on ``split`` of predicting the training mean of every dimension:
    ``{split}/vad_mae_baseline`` (mean over dimensions) and ``.../{valence|...}``; {} when
    the data has no continuous values or the training split is not loaded."""
    train, target = _split_vad(datamodule, "train"), _split_vad(datamodule, split)
    if train is None or target is None:
        return {}
    train = train[torch.isfinite(train).all(-1)]
    target = target[torch.isfinite(target).all(-1)]
    if len(train) == 0 or len(target) == 0:
        return {}
    per_dim = (target - train.mean(0)).abs().mean(0)  # [3]
    key = f"{split}/vad_mae_baseline"
    out = {key: float(per_dim.mean())}
    out.update({f"{key}/{d}": float(per_dim[i]) for i, d in enumerate(VAD_NAMES)})
    return out


def vad_lines(metrics: Mapping[str, Any], split: str) -> list[str]:
    """The run's printed line: the final prediction's MAE beside the training-mean baseline."""
    mae = metrics.get(f"{split}/vad_mae")
    if mae is None:
        return []
    base = metrics.get(f"{split}/vad_mae_baseline")
    per = ", ".join(
        f"{d} {metrics[f'{split}/vad_mae/{d}']:.3f}"
        for d in VAD_NAMES
        if f"{split}/vad_mae/{d}" in metrics
    )
    beside = f" (predicting the training mean: {base:.3f})" if base is not None else ""
    return [f"{split} VAD MAE: {mae:.3f}{beside}; {per}"]

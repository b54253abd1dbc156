"""LightningModule around :class:`cocoer.models.cocoer.CocoER` (docs/method.md section 5).

Logged (slash-separated): ``{stage}/loss`` and every term (``loss_c``, ``loss_b``,
``loss_h``, ``loss_t``, ``loss_G``, ``delta_sq``) and the epoch statistics of
:class:`~cocoer.training.epoch_statistics.EpochStatistics` (mAP or accuracy per head,
first-excluded shares, conflict statistics on generated data).

Per-class decision thresholds are calibrated on the validation split at the end of each
validation epoch (:func:`~cocoer.training.calibration.calibrate_thresholds`) and stored in the
checkpoint as the buffer ``thresholds``, so inference needs only the checkpoint file. The
options and their defaults are :class:`~cocoer.training.config.TrainingOptions`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor

from cocoer.checkpoint.safe_load import portable_hparams
from cocoer.constants import LEVELS
from cocoer.models import CocoER, create_model
from cocoer.training.calibration import calibrate_thresholds
from cocoer.training.config import TrainingOptions
from cocoer.training.epoch_metrics import ScoreBank, workspace_off_outputs
from cocoer.training.epoch_statistics import EpochStatistics, scores_of
from cocoer.training.expected_warnings import ExpectedWarnings
from cocoer.training.finite_loss import check_finite_loss
from cocoer.training.losses import emo_loss
from cocoer.training.optim import build_optimizer
from cocoer.training.predictions import prediction_rows
from cocoer.training.vad_metrics import vad_step


def to_plain(x: Any) -> Any:
    """``x`` with every mapping a dict, every sequence a list, paths as strings: only types
    that ``torch.load(weights_only=True)`` reads without an allow-list."""
    if isinstance(x, DictConfig | ListConfig):
        x = OmegaConf.to_container(x, resolve=True)
    if isinstance(x, Mapping):
        return {str(k): to_plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_plain(v) for v in x]
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return x


class CocoERLitModule(L.LightningModule):
    """Training, validation, test and prediction of CocoER.

    Args:
        net: the model's config (:class:`~cocoer.models.CocoERConfig` fields), built here
            by :func:`~cocoer.models.create_model` so that a checkpoint alone rebuilds the
            model (``CocoERLitModule.load_from_checkpoint``).
        loss, optimizer, scheduler, freeze_levels, freeze_backbones, threshold_rule,
        example_predictions, stage, init_from: the fields of
            :class:`~cocoer.training.config.TrainingOptions` (None: its default).

    ``test_step`` returns the batch's final ``scores`` [B, k], ``labels`` [B, k], its
    ``prediction_rows`` (up to ``example_predictions`` per test run; all kept in
    :attr:`prediction_rows`), ``class_names`` and ``multi_label``: what the result-table
    callback reads (``on_test_batch_end``'s ``outputs``).
    """

    # buffers registered in __init__
    thresholds: Tensor

    def __init__(
        self,
        net: Mapping[str, Any],
        loss: Mapping[str, Any] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        freeze_levels: list[str] | None = None,
        freeze_backbones: bool | None = None,
        threshold_rule: str | None = None,
        example_predictions: int | None = None,
        stage: str | None = None,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        given: dict[str, Any] = {
            "loss": loss,
            "optimizer": optimizer,
            "scheduler": scheduler,
            "freeze_levels": freeze_levels,
            "freeze_backbones": freeze_backbones,
            "threshold_rule": threshold_rule,
            "example_predictions": example_predictions,
            "stage": stage,
            "init_from": init_from,
        }
        self.options = TrainingOptions.from_kwargs(**to_plain(given))
        net = to_plain(net)
        self.save_hyperparameters({"net": net, **self.options.as_hparams()})
        self.net: CocoER = create_model(net)
        self.loss_weights = self.options.loss.weights()
        self.dynamic_weights = self.options.loss.dynamic_weights
        self.detach_level_terms = self.options.loss.detach_level_terms
        k, self.multi_label = self.net.num_classes, self.net.multi_label
        self.prealign = self.options.stage == "prealign"
        self.register_buffer("thresholds", torch.full((k,), 0.5))
        self.epoch_stats = torch.nn.ModuleDict(
            {s: EpochStatistics(k, self.multi_label, not self.prealign) for s in ("val", "test")}
        )
        self.val_scores = ScoreBank()
        self.prediction_rows: list[dict[str, Any]] = []
        self.expected_warnings = ExpectedWarnings()
        levels = LEVELS if self.options.freeze_backbones else self.options.freeze_levels
        for lvl in levels:
            self.net.hfe.backbones[LEVELS.index(lvl)].requires_grad_(False)
        if self.options.init_from:
            self.load_weights(self.options.init_from)

    def load_weights(self, path: str) -> None:
        """Initialise from another checkpoint's weights (e.g. the V-I pre-alignment stage),
        read safely (:func:`cocoer.checkpoint.safe_load.state_dict_of`: no code from the file runs).

        Keys that exist here with the same shape are loaded; the rest are reported.
        """
        from cocoer.checkpoint.safe_load import state_dict_of

        state = state_dict_of(path)
        own = self.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        self.load_state_dict(usable, strict=False)
        skipped = len(state) - len(usable)
        print(f"[cocoer] init_from {path}: loaded {len(usable)} tensors, skipped {skipped}")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The config goes into the checkpoint as plain containers (read back with
        ``torch.load(weights_only=True)`` and an empty allow-list), with no local path."""
        checkpoint["hyper_parameters"] = portable_hparams(to_plain(checkpoint["hyper_parameters"]))

    def on_fit_start(self) -> None:
        self.expected_warnings.enter()

    def on_fit_end(self) -> None:
        self.expected_warnings.exit()

    def _stats(self, stage: str) -> EpochStatistics:
        return cast(EpochStatistics, self.epoch_stats[stage])

    def _scores(self, logits: Tensor) -> Tensor:
        return scores_of(logits, self.multi_label)

    # ------------------------------------------------------------------ steps
    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.net(batch)

    def emo_terms(
        self, batch: Mapping[str, Tensor], out: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """L_emo and its terms (docs/method.md section 5) for the model's outputs ``out``."""
        return emo_loss(
            self.net.level_loss,
            out["logits_levels"],
            out["logits_t"],
            out["logits_G"],
            out["delta_sq"],
            batch["labels"],
            self.loss_weights,
            self.dynamic_weights,
            self.detach_level_terms,
        )

    def _step(
        self, batch: Mapping[str, Tensor], stage: str
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        bs, sync = batch["labels"].shape[0], stage != "train"
        if self.prealign:
            out, loss = self.net.vi.prealign_step(batch["context"], batch["labels"])
            self.log(f"{stage}/loss", loss.detach(), prog_bar=True, batch_size=bs, sync_dist=sync)
            return out, {"loss": loss}
        out = self.net(batch)
        terms = self.emo_terms(batch, out)
        terms = vad_step(self, out, batch, terms, stage)  # L_vad and its errors (VAD head only)
        each: dict[str, Any] = {"on_step": stage == "train", "on_epoch": True}
        each.update(batch_size=bs, sync_dist=sync)
        parts = {f"{stage}/{k}": v.detach() for k, v in terms.items() if k != "loss"}
        self.log_dict(parts, prog_bar=False, **each)
        self.log(f"{stage}/loss", terms["loss"].detach(), prog_bar=True, **each)
        return out, terms

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        _, terms = self._step(batch, "train")
        check_finite_loss(terms, self.device, self.global_step, self.current_epoch)
        return terms["loss"]

    def _update_stats(
        self, out: dict[str, Tensor], batch: Mapping[str, Tensor], stage: str
    ) -> None:
        stats = self._stats(stage)
        off = workspace_off_outputs(self.net, batch) if stats.wants_workspace_off(batch) else None
        stats.update(out, batch, off)

    def _log_epoch(self, stage: str) -> None:
        stats = self._stats(stage)
        result = stats.compute(stage)
        stats.reset()
        for i, (key, value) in enumerate(result.heads.items()):
            self.log(key, value, prog_bar=i == 0, sync_dist=True)  # the final head first
        for key, val in result.counts.items():
            # equal on every rank (synced Metric states): the mean keeps it, and no warning
            self.log(key, val, sync_dist=True)

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        out, _ = self._step(batch, "val")
        self._update_stats(out, batch, "val")
        self.val_scores.update(self._scores(out["logits_G"].detach()), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")
        if self.multi_label and self.val_scores.update_count > 0:
            scores, labels = self.val_scores.compute()  # the whole split, on every rank
            rule = self.options.threshold_rule
            self.thresholds.copy_(calibrate_thresholds(scores.cpu(), labels.cpu(), rule))
        self.val_scores.reset()

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """What the result-table callback reads (see the class docstring)."""
        out, _ = self._step(batch, "test")
        self._update_stats(out, batch, "test")
        scores = self._scores(out["logits_G"].detach())
        room = self.options.example_predictions - len(self.prediction_rows)
        rows = []
        if room > 0:
            names, ml = self.net.class_names, self.multi_label
            rows = prediction_rows(out, batch, scores, self.thresholds, names, ml, room)
            self.prediction_rows.extend(rows)
        return {
            "scores": scores,
            "labels": batch["labels"],
            "prediction_rows": rows,
            "class_names": self.net.class_names,
            "multi_label": self.multi_label,
        }

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        out = self.net(batch)
        out["scores"] = self._scores(out["logits_G"])
        return out

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """Adam + StepLR (:func:`~cocoer.training.optim.build_optimizer`); in the
        pre-alignment stage over W of the V-I module only."""
        if self.prealign:
            params = list(self.net.vi.W.parameters())
        else:
            params = [p for p in self.parameters() if p.requires_grad]
        optimizer, scheduler = build_optimizer(
            params, self.options.optimizer, self.options.scheduler
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

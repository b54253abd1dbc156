"""LightningModule around :class:`cocoer.models.cocoer.CocoER` (docs/method.md section 5).

Logged (slash-separated): ``{stage}/loss`` and every term (``loss_c``, ``loss_b``,
``loss_h``, ``loss_t``, ``loss_G``, ``delta_sq``); ``{stage}/mAP`` (multi-label, mean of
per-class AP over the classes with positives) or ``{stage}/acc`` (single label) for the
final prediction, and the same metric for the V-I prediction and each level
(``{stage}/mAP_t``, ``{stage}/mAP_c``...); ``{stage}/first_excluded/{level}``: the share
(%) of samples whose first excluded level is that level (Table 5).

Per-class decision thresholds are calibrated on the validation split at the end of each
validation epoch (rule ``f1``: the score maximising that class's F1; ``pr_equal``: where
precision meets recall; ``fixed``: 0.5) and stored in the checkpoint as the buffer
``thresholds``, so inference needs only the checkpoint file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MultilabelAveragePrecision

from cocoer.checkpoint.safe_load import portable_hparams
from cocoer.constants import HEAD_NAMES, LEVEL_SHORT, LEVELS
from cocoer.errors import NonFiniteLossError
from cocoer.models import CocoER, create_model
from cocoer.training.calibration import calibrate_thresholds
from cocoer.training.epoch_metrics import (
    ClassPositives,
    ConflictExclusion,
    LevelCounts,
    MaskedMeanAP,
    ScoreBank,
    workspace_switched_off,
)
from cocoer.training.losses import LossWeights, emo_loss
from cocoer.training.vad_metrics import vad_step
from cocoer.utils.distributed import dist_rank, dist_world_size, ranks_where

# The frozen CLIP stays in eval mode during training on purpose (VIModule.train).
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")

HEADS = tuple(HEAD_NAMES)  # G, t, c, b, h: final, V-I, context, body, head
#: rules of :func:`calibrate_thresholds`
THRESHOLD_RULES = ("f1", "pr_equal", "fixed")
#: ``main``: the whole model with L_emo; ``prealign``: only W of the V-I module, with the
#: cosine loss to the mean text embedding of the ground-truth classes (section 3).
STAGES = ("main", "prealign")
#: Symbols of the loss terms in messages (docs/method.md section 5).
TERM_NAMES = {
    "loss": "L_emo",
    "loss_c": "L_c",
    "loss_b": "L_b",
    "loss_h": "L_h",
    "loss_t": "L_t",
    "loss_G": "L_G",
    "delta_sq": "delta_sq",
}


def _plain(x: Any) -> Any:
    return OmegaConf.to_container(x, resolve=True) if isinstance(x, DictConfig) else x


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
        loss: beta_* / alpha weights and loss switches (:class:`LossWeights` + flags).
        optimizer: Adam ``lr``, ``weight_decay``, ``betas``.
        scheduler: StepLR ``step_size`` (epochs) and ``gamma``.
        freeze_levels: levels whose backbone is not trained; freeze_backbones: all.
        threshold_rule: ``f1`` | ``pr_equal`` | ``fixed`` (see :func:`calibrate_thresholds`).
        example_predictions: rows of the prediction table kept per test run.
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
        freeze_backbones: bool = False,
        threshold_rule: str = "f1",
        example_predictions: int = 16,
        stage: str = "main",
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"unknown training stage {stage!r}; choose one of {STAGES}")
        net, loss, optimizer, scheduler = map(_plain, (net, loss, optimizer, scheduler))
        self.save_hyperparameters(
            {
                "net": net,
                "loss": loss or {},
                "optimizer": optimizer or {},
                "scheduler": scheduler or {},
                "freeze_levels": list(freeze_levels or []),
                "freeze_backbones": freeze_backbones,
                "threshold_rule": threshold_rule,
                "example_predictions": example_predictions,
                "stage": stage,
                "init_from": init_from,
            }
        )
        self.net: CocoER = create_model(net)
        loss = dict(loss or {})
        self.dynamic_weights = bool(loss.pop("dynamic_weights", True))
        self.detach_level_terms = bool(loss.pop("detach_level_terms", False))
        self.loss_weights = LossWeights(**loss)
        k = self.net.num_classes
        self.multi_label = self.net.multi_label
        self.register_buffer("thresholds", torch.full((k,), 0.5))
        self.metrics = torch.nn.ModuleDict(
            {stage: self._make_metrics(k) for stage in ("val", "test")}
        )
        self.epoch_stats = torch.nn.ModuleDict(
            {stage: self._make_epoch_stats(k) for stage in ("val", "test")}
        )
        self.val_scores = ScoreBank()
        self._per_class_ap = torch.zeros(k)
        self.prediction_rows: list[dict[str, Any]] = []
        self._apply_freezing()
        if init_from:
            self.load_weights(init_from)

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

    def _make_metrics(self, k: int) -> MetricCollection:
        make: Callable[[], Metric]
        if self.multi_label:
            make = lambda: MultilabelAveragePrecision(num_labels=k, average=None)
        else:
            make = lambda: MulticlassAccuracy(num_classes=k, average="micro")
        return MetricCollection({h: make() for h in HEADS})

    def _make_epoch_stats(self, k: int) -> torch.nn.ModuleDict:
        """First-excluded counts, class positives, and (generated data) the conflict
        statistics: mAP of the final prediction on conflicting / clean persons, with the
        workspace on and switched off (``ws_off``)."""
        stats: dict[str, Metric] = {
            "first": LevelCounts(),
            "positives": ClassPositives(k),
            "conflict": ConflictExclusion(),
        }
        if self.multi_label:
            for run in ("ws_on", "ws_off"):
                for subset in ("all", "conflict", "clean"):
                    stats[f"mAP_{run}_{subset}"] = MaskedMeanAP(k)
        return torch.nn.ModuleDict(stats)

    def _stats(self, stage: str) -> Mapping[str, Metric]:
        return cast(Mapping[str, Metric], self.epoch_stats[stage])

    def _stage_metrics(self, stage: str) -> MetricCollection:
        """The metric collection of ``stage`` (``val`` | ``test``)."""
        return cast(MetricCollection, self.metrics[stage])

    def _apply_freezing(self) -> None:
        levels = LEVELS if self.hparams["freeze_backbones"] else self.hparams["freeze_levels"]
        for lvl in levels:
            self.net.hfe.backbones[LEVELS.index(lvl)].requires_grad_(False)

    # ------------------------------------------------------------------ steps
    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.net(batch)

    def _prealign_step(
        self, batch: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """W alone: loss = 1 - cos(W u, mean text embedding of the GT classes); the scores
        of the metrics are cos(W u, w_j) (a zero-shot classifier through W)."""
        vi = self.net.vi
        u = vi.encode_image(batch["context"])
        loss = vi.prealign_loss(u, batch["labels"])
        U = torch.nn.functional.normalize(vi.W(u), dim=-1)
        logits = 10.0 * U @ vi.text_embeddings.to(U.dtype).T
        out = {
            "logits_G": logits,
            "logits_t": logits,
            "logits_levels": logits.unsqueeze(1).expand(-1, 3, -1),
            "order": logits.new_zeros(logits.shape[0], 3, dtype=torch.long),  # not counted
            "y_t": (logits > 0).to(logits.dtype),
            "f": logits.new_zeros(logits.shape[0], 3),
        }
        return out, {"loss": loss}

    def _step(
        self, batch: Mapping[str, Tensor], stage: str
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        if self.hparams["stage"] == "prealign":
            out, terms = self._prealign_step(batch)
            self.log(
                f"{stage}/loss",
                terms["loss"].detach(),
                prog_bar=True,
                batch_size=batch["labels"].shape[0],
                sync_dist=stage != "train",
            )
            return out, terms
        out = self.net(batch)
        terms = emo_loss(
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
        terms = vad_step(self, out, batch, terms, stage)  # L_vad and its errors (VAD head only)
        bs = batch["labels"].shape[0]
        self.log_dict(
            {f"{stage}/{k}": v.detach() for k, v in terms.items() if k != "loss"},
            on_step=stage == "train",
            on_epoch=True,
            batch_size=bs,
            prog_bar=False,
            sync_dist=stage != "train",
        )
        self.log(
            f"{stage}/loss",
            terms["loss"].detach(),
            prog_bar=True,
            on_step=stage == "train",
            on_epoch=True,
            batch_size=bs,
            sync_dist=stage != "train",
        )
        return out, terms

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        _, terms = self._step(batch, "train")
        self._check_finite(terms)
        return terms["loss"]

    def _check_finite(self, terms: Mapping[str, Tensor]) -> None:
        """Stop the run at the first NaN / infinite loss term, before the optimiser step
        (nothing is saved: the last checkpoint stays the last good state).

        Under DDP every rank stops at that step, also those whose own loss is finite (the
        ranks agree through :func:`ranks_where`): a rank that stopped alone would leave
        the others waiting in ``backward``'s gradient all-reduce."""
        # one device-to-host copy per step (not one per term); the values only of bad terms
        finite = torch.stack([torch.isfinite(v.detach()).all() for v in terms.values()]).tolist()
        pairs = zip(terms.items(), finite, strict=True)
        bad = {k: float(v.detach()) for (k, v), ok in pairs if not ok}
        bad_ranks = ranks_where(bool(bad), self.device)  # a collective under DDP
        if not bad_ranks:
            return
        at = f"non-finite loss at step {self.global_step} (epoch {self.current_epoch})"
        if bad:
            named = ", ".join(f"{TERM_NAMES.get(k, k)}={v}" for k, v in bad.items())
            on = f" on rank {dist_rank()}" if dist_world_size() > 1 else ""
            why = f"{on}: {named}; training stopped"
        else:  # another rank's loss: stop here too
            why = f" on rank(s) {', '.join(map(str, bad_ranks))}; training stopped on every rank"
        raise NonFiniteLossError(f"{at}{why}, the last saved checkpoint is kept")

    def _scores(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, -1)

    def _update_metrics(
        self, out: dict[str, Tensor], batch: Mapping[str, Tensor], stage: str
    ) -> None:
        y = batch["labels"]
        target = y.long() if self.multi_label else y.argmax(-1)
        logits = {"G": out["logits_G"], "t": out["logits_t"]}
        logits.update(
            {h: out["logits_levels"][:, i] for i, h in enumerate(LEVEL_SHORT[m] for m in LEVELS)}
        )
        for h, lg in logits.items():
            self._stage_metrics(stage)[h].update(self._scores(lg.detach()), target)
        stats = self._stats(stage)
        if self.hparams["stage"] == "main":  # pre-alignment has no exclusion order
            stats["first"].update(out["order"])
        stats["positives"].update(y)
        if "conflict_level" in batch and self.hparams["stage"] == "main":
            self._update_conflict_stats(out, batch, stats)

    def _update_conflict_stats(
        self, out: dict[str, Tensor], batch: Mapping[str, Tensor], stats: Mapping[str, Metric]
    ) -> None:
        """Generated data: first-excluded vs planted level; mAP on conflicting / clean persons,
        with the workspace on and off (a second pass of the net, delta_scale = inner_lr = 0)."""
        planted = batch["conflict_level"].long()
        stats["conflict"].update(out["order"], planted)
        if not self.multi_label:
            return
        y = batch["labels"]
        with torch.no_grad(), workspace_switched_off(self.net.workspace):
            off = self.net(batch)
        masks = {"all": torch.ones_like(planted, dtype=torch.bool)}
        masks.update(conflict=planted >= 0, clean=planted < 0)
        for run, o in (("ws_on", out), ("ws_off", off)):
            scores = self._scores(o["logits_G"].detach())
            for subset, mask in masks.items():
                stats[f"mAP_{run}_{subset}"].update(scores, y, mask)

    def _log_epoch_metrics(self, stage: str) -> dict[str, float]:
        logged: dict[str, float] = {}
        name = "mAP" if self.multi_label else "acc"
        stats = self._stats(stage)
        positives = cast(Tensor, stats["positives"].compute())  # summed over ranks
        for h in HEADS:
            metric = self._stage_metrics(stage)[h]
            with warnings.catch_warnings():  # classes without positives are excluded below
                warnings.filterwarnings("ignore", message="No positive samples found")
                value = metric.compute()
            if self.multi_label:  # mean over classes with positives (AP undefined otherwise)
                per_class = value
                valid = torch.isfinite(per_class) & (positives > 0)
                value = (
                    per_class[valid].mean() if valid.any() else per_class.new_tensor(float("nan"))
                )
                if h == "G":
                    self._per_class_ap = per_class.detach().cpu()
            key = f"{stage}/{name}" if h == "G" else f"{stage}/{name}_{h}"
            self.log(key, value * 100.0, prog_bar=h == "G", sync_dist=True)
            logged[key] = float(value) * 100.0
            metric.reset()
        first = cast(Tensor, stats["first"].compute())
        counted = {
            f"{stage}/first_excluded/{lvl}": float(100.0 * first[i] / first.sum().clamp_min(1))
            for i, lvl in enumerate(LEVELS)
            if first.sum() > 0  # none in pre-alignment
        }
        counted.update(self._conflict_results(stage, stats))
        for key, val in counted.items():
            # equal on every rank (synced Metric states): the mean keeps it, and no warning
            self.log(key, val, sync_dist=True)
        logged.update(counted)
        for metric in stats.values():
            metric.reset()
        return logged

    def _conflict_results(self, stage: str, stats: Mapping[str, Metric]) -> dict[str, float]:
        """``{stage}/conflict_first_excluded[/level|/chance]``, ``{stage}/conflict_n`` and the
        mAPs on conflicting / clean persons with the workspace on and off (generated data)."""
        res = cast(dict[str, Tensor], stats["conflict"].compute())
        if float(res["n"]) == 0:
            return {}
        key = f"{stage}/conflict_first_excluded"
        out = {key: float(res["all"]), f"{stage}/conflict_n": float(res["n"])}
        out.update({f"{key}/{lvl}": float(res[lvl]) for lvl in (*LEVELS, "chance")})
        if self.multi_label:
            for run, tag in (("ws_on", "mAP"), ("ws_off", "mAP_ws_off")):
                for subset in ("conflict", "clean"):
                    value = stats[f"mAP_{run}_{subset}"].compute()
                    out[f"{stage}/{tag}/{subset}_persons"] = float(value)
                if run == "ws_off":
                    out[f"{stage}/{tag}"] = float(stats[f"mAP_{run}_all"].compute())
        return out

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        out, _ = self._step(batch, "val")
        self._update_metrics(out, batch, "val")
        self.val_scores.update(self._scores(out["logits_G"].detach()), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")
        if self.multi_label and self.val_scores.update_count > 0:
            scores, labels = self.val_scores.compute()  # the whole split, on every rank
            thr = calibrate_thresholds(scores.cpu(), labels.cpu(), self.hparams["threshold_rule"])
            self.thresholds.copy_(thr)
        self.val_scores.reset()

    def test_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        out, _ = self._step(batch, "test")
        self._update_metrics(out, batch, "test")
        if len(self.prediction_rows) < self.hparams["example_predictions"]:
            self._record_predictions(out, batch)

    def on_test_epoch_end(self) -> None:
        self.test_results = self._log_epoch_metrics("test")

    def predict_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        out = self.net(batch)
        out["scores"] = self._scores(out["logits_G"])
        return out

    def _record_predictions(self, out: dict[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        names = self.net.class_names
        scores = self._scores(out["logits_G"]).detach().cpu()
        if self.multi_label:
            pred = scores > self.thresholds.cpu()
        else:
            pred = torch.nn.functional.one_hot(scores.argmax(-1), len(names)).bool()
        labels = batch["labels"].cpu() > 0.5
        y_t = out["y_t"].cpu() > 0.5
        for i in range(scores.shape[0]):
            if len(self.prediction_rows) >= self.hparams["example_predictions"]:
                break
            self.prediction_rows.append(
                {
                    "index": int(batch["index"][i]) if "index" in batch else i,
                    "ground_truth": ", ".join(
                        n for n, v in zip(names, labels[i], strict=True) if v
                    ),
                    "prediction": ", ".join(n for n, v in zip(names, pred[i], strict=True) if v),
                    "vi_pseudo_label": ", ".join(
                        n for n, v in zip(names, y_t[i], strict=True) if v
                    ),
                    "exclusion_sequence": " -> ".join(LEVELS[j] for j in out["order"][i].tolist()),
                    **{f"f_{LEVELS[j]}": float(out["f"][i, j]) for j in range(3)},
                }
            )

    # ------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        opt_cfg = dict(self.hparams["optimizer"])
        if self.hparams["stage"] == "prealign":
            params = list(self.net.vi.W.parameters())
        else:
            params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(
            params,
            lr=opt_cfg.get("lr", 6e-5),
            weight_decay=opt_cfg.get("weight_decay", 5e-4),
            betas=tuple(opt_cfg.get("betas", (0.9, 0.999))),
        )
        sch_cfg = dict(self.hparams["scheduler"])
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=sch_cfg.get("step_size", 3), gamma=sch_cfg.get("gamma", 0.01)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

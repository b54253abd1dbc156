"""Training and evaluation as pure functions of a composed config.

``train(cfg)`` and ``evaluate(cfg)`` return a dict of metrics; the Hydra entry points in
:mod:`cocoer.cli` are thin wrappers, and the tests call these functions with configs
composed by Hydra's Compose API.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from cocoer.checkpoint.safe_load import load_cocoer_checkpoint
from cocoer.configs import validate_config
from cocoer.constants import LEVELS
from cocoer.errors import CheckpointError, ConfigError
from cocoer.runs.jobs import is_rank_zero
from cocoer.runs.run_dir import check_resume_fits
from cocoer.runs.wandb_run import attach_wandb_run
from cocoer.training.checkpoint_io import AtomicCheckpointIO
from cocoer.training.vad_metrics import vad_baseline, vad_lines
from cocoer.utils.files import atomic_write_text
from cocoer.utils.provenance import git_state, run_config, write_provenance

if TYPE_CHECKING:
    from cocoer.checkpoint.model import LoadedModel
    from cocoer.training.module import CocoERLitModule

log = logging.getLogger(__name__)


def instantiate_list(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a callbacks / logger group."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if c is not None and "_target_" in c]


def output_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir)


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path: auto`` -> this run directory's ``checkpoints/last.ckpt`` if it exists;
    a given path is checked with :func:`cocoer.checkpoint.safe_load.load_cocoer_checkpoint`."""
    ckpt = cfg.get("ckpt_path")
    if ckpt == "auto":
        last = output_dir(cfg) / "checkpoints" / "last.ckpt"
        return str(last) if last.is_file() else None
    if ckpt:
        # refuse an unsafe or corrupt file before Lightning opens it (it is then loaded
        # again by Lightning with weights_only=True)
        load_cocoer_checkpoint(ckpt)
    return ckpt


def seed_everything(seed: int | None) -> int:
    """Seed python, numpy, torch and the data-loader workers; seed 0 is a seed."""
    if seed is None:
        raise ConfigError("seed must be set (an integer >= 0)")
    L.seed_everything(int(seed), workers=True)
    log.info("seed: %d", int(seed))
    return int(seed)


def prepare(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Validate, seed, and build datamodule, model, callbacks, loggers and trainer."""
    validate_config(cfg)
    if cfg.get("extras", {}).get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    seed_everything(cfg.get("seed"))
    attach_wandb_run(cfg, group=_sweep_group(), write=is_rank_zero())
    log.info("instantiating datamodule <%s>", cfg.data._target_)
    datamodule = hydra.utils.instantiate(cfg.data)
    if getattr(datamodule, "synthetic_clip", None) is not None:
        datamodule.prepare_data()  # the generated data and its CLIP, before the model uses it
    log.info("instantiating model <%s>", cfg.model._target_)
    model = hydra.utils.instantiate(cfg.model)
    callbacks = instantiate_list(cfg.get("callbacks"))
    loggers = instantiate_list(cfg.get("logger"))
    if loggers:
        callbacks.append(RunConfigLogger(cfg))
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[AtomicCheckpointIO()],  # a killed save never leaves a half-written file
    )
    return datamodule, model, trainer


class RunConfigLogger(L.Callback):
    """At fit start (in the process that trains, also under spawn-based DDP), send the
    whole resolved run config (data, trainer, seed... not only the model's
    hyper-parameters, which Lightning logs itself) and the git state to every logger."""

    def __init__(self, cfg: DictConfig) -> None:
        run_cfg = OmegaConf.to_container(run_config(cfg), resolve=True)
        self.run_cfg = cast(dict[str, Any], run_cfg)
        self.run_cfg["git"] = git_state()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_hyperparams(self.run_cfg)


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    out = {}
    for k, v in trainer.callback_metrics.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            out[k] = float(v)
    return out


def chance_level(datamodule: L.LightningDataModule, split: str = "test") -> float | None:
    """Expected mAP (%) of random scores = mean positive rate of the classes with positives;
    for single-label data, the accuracy of always predicting the most frequent class."""
    ds = getattr(datamodule, "datasets", {}).get(split)
    records = getattr(ds, "records", None)
    if not records:
        return None
    k = int(cast(Any, datamodule).num_classes)  # every cocoer datamodule defines it
    counts = torch.zeros(k)
    for r in records:
        counts[list(r.labels)] += 1
    n = len(records)
    if getattr(datamodule, "multi_label", True):
        pos = counts[counts > 0]
        return float((pos / n).mean() * 100)
    return float(counts.max() / n * 100)


def close_wandb() -> None:
    """Finish the current W&B run (if any), so that the next job of a multirun starts its
    own and an offline run directory is complete (summary written)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit on train, select on val, test the best checkpoint once; returns the metrics."""
    try:
        return _train(cfg)
    finally:
        close_wandb()


def _train(cfg: DictConfig) -> dict[str, Any]:
    # a checkpoint to resume from is checked (safe load) before anything else is built
    ckpt_path = resolve_ckpt_path(cfg) if cfg.get("train", True) else None
    datamodule, model, trainer = prepare(cfg)
    out = output_dir(cfg)
    if ckpt_path is not None:  # a resume that cannot work fails before any record is written
        check_resume_fits(model, ckpt_path)
    if trainer.is_global_zero:
        write_provenance(cfg, out, _overrides())
    metrics: dict[str, Any] = {}
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics.update(_metrics(trainer))
    best: str | None = None
    if cfg.get("test", True):
        ckpt_cb = trainer.checkpoint_callback
        best = getattr(ckpt_cb, "best_model_path", "") or None
        last: str = getattr(ckpt_cb, "last_model_path", "")
        if best is None and ckpt_cb is not None and last:
            best = last
        if best is None:
            log.warning("no checkpoint was saved: testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        metrics.update(_metrics(trainer))
        chance = chance_level(datamodule, "test")
        if chance is not None:
            metrics["test/chance"] = chance
        metrics.update(vad_baseline(datamodule, "test"))  # VAD head: training-mean MAE
    metrics["best_ckpt"] = best
    metrics["output_dir"] = str(out)
    if trainer.is_global_zero:
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, default=str))
        rows = getattr(model, "prediction_rows", None)
        if rows:
            atomic_write_text(out / "predictions.json", json.dumps(rows, indent=2))
    return metrics


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.split`` with the model config the checkpoint holds."""
    from cocoer.checkpoint.model import load_model

    if not cfg.get("ckpt_path"):
        raise ConfigError("cocoer-eval needs ckpt_path=PATH")
    seed_everything(cfg.get("seed"))
    loaded = load_model(cfg.ckpt_path)  # a checkpoint, a safetensors export or a hub folder
    model = lit_module_of(loaded)
    _fit_data_to_checkpoint(cfg, loaded.net.num_classes, loaded.net_config["hfe"]["image_size"])
    datamodule = hydra.utils.instantiate(cfg.data)
    loggers = instantiate_list(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    split = cfg.get("split", "test")
    if split == "test":
        trainer.test(model, datamodule=datamodule)
    elif split == "val":
        trainer.validate(model, datamodule=datamodule)
    else:
        raise ConfigError(f"split must be test or val, got {split!r}")
    metrics: dict[str, Any] = _metrics(trainer)
    chance = chance_level(datamodule, split)
    if chance is not None:
        metrics[f"{split}/chance"] = chance
    out = output_dir(cfg)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def lit_module_of(loaded: LoadedModel) -> CocoERLitModule:
    """The LightningModule (for ``trainer.test``) holding a model from
    :func:`cocoer.checkpoint.model.load_model`: built from its hyper-parameters, its weights
    and thresholds loaded strictly.

    Raises:
        CheckpointError: training options of the file that the module refuses.
    """
    from cocoer.training.module import CocoERLitModule

    try:
        module = CocoERLitModule(**loaded.hparams)
        module.load_state_dict(loaded.state_dict(), strict=True)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        line = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise CheckpointError(loaded.path, f"does not fit a CocoER model ({line[:200]})") from None
    return module


def _fit_data_to_checkpoint(cfg: DictConfig, num_classes: int, image_size: int) -> None:
    """The windows must have the size the checkpoint was trained with (taken from it), and
    the classes must match (a clear error otherwise)."""
    if int(cfg.data.num_classes) != int(num_classes):
        raise ConfigError(
            f"checkpoint {cfg.ckpt_path} predicts {num_classes} classes but data "
            f"{cfg.data._target_} has {cfg.data.num_classes}: choose the matching data group"
        )
    if int(cfg.data.image_size) != int(image_size):
        log.info("data.image_size %s -> %s (the checkpoint's)", cfg.data.image_size, image_size)
        with open_dict(cfg):
            cfg.data.image_size = int(image_size)


def _sweep_group() -> str | None:
    """The multirun's directory name (a W&B group for its jobs); None outside a multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        return Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else None
    except Exception:  # not running under Hydra
        return None


def _overrides() -> list[str] | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:  # not running under @hydra.main (tests, notebooks)
        return None


def summarise(metrics: dict[str, Any], cfg: DictConfig) -> str:
    """A few lines for the terminal: the test metric against chance, and where things are."""
    multi = bool(OmegaConf.select(cfg, "data.multi_label", default=True))
    name = "mAP" if multi else "acc"
    lines = []
    for split in ("test", "val"):
        if f"{split}/{name}" in metrics:
            chance = metrics.get(f"{split}/chance")
            extra = f" (chance level {chance:.2f})" if chance is not None else ""
            lines.append(f"{split} {name}: {metrics[f'{split}/{name}']:.2f}{extra}")
            shares = [
                f"{lvl} {metrics[f'{split}/first_excluded/{lvl}']:.1f}%"
                for lvl in LEVELS
                if f"{split}/first_excluded/{lvl}" in metrics
            ]
            if shares:
                lines.append(f"{split} first-excluded level: " + ", ".join(shares))
            lines.extend(_mechanism_lines(metrics, split, name))
            lines.extend(vad_lines(metrics, split))
    if metrics.get("best_ckpt"):
        lines.append(f"best checkpoint: {metrics['best_ckpt']}")
    lines.append(f"run directory (logs, config, metrics.json): {metrics.get('output_dir')}")
    return "\n".join(lines)


def _mechanism_lines(metrics: dict[str, Any], split: str, name: str) -> list[str]:
    """V-I metric, and on generated data how often competition finds the planted level and
    the final metric on conflicting / clean persons with the workspace on and off."""
    get = metrics.get
    lines = []
    if get(f"{split}/{name}_t") is not None:
        lines.append(f"{split} {name}_t (V-I): {get(f'{split}/{name}_t'):.2f}")
    key = f"{split}/conflict_first_excluded"
    if get(key) is not None:
        per = ", ".join(f"{lvl} {get(f'{key}/{lvl}', float('nan')):.1f}%" for lvl in LEVELS)
        n = int(get(f"{split}/conflict_n", 0))
        lines.append(
            f"{split} conflict_first_excluded: {get(key):.1f}% of {n}"
            f" planted conflicts (chance {get(f'{key}/chance', float('nan')):.1f}%; {per})"
        )
    on, off = f"{split}/{name}", f"{split}/{name}_ws_off"
    if get(f"{off}/conflict_persons") is not None:
        lines.append(
            f"{split} {name} workspace on / off: conflicting persons "
            f"{get(f'{on}/conflict_persons'):.2f} / {get(f'{off}/conflict_persons'):.2f}, "
            f"clean persons {get(f'{on}/clean_persons'):.2f} / {get(f'{off}/clean_persons'):.2f}, "
            f"all {get(on):.2f} / {get(off):.2f}; "
            f"mean |delta|^2 {get(f'{split}/delta_sq', float('nan')):.3g}"
        )
    return lines

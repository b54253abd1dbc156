"""Options of the LightningModule (:class:`cocoer.training.module.CocoERLitModule`): the one
place where their defaults and checks are written.

The Hydra schema's ``model`` node (:class:`cocoer.configs.schema.ModelConfig`) is
:class:`TrainingOptions` plus the model's own ``net`` config; the LightningModule fills the
options it is not given from these dataclasses (:meth:`TrainingOptions.from_kwargs`); the
converter's hyper-parameters and the optimiser (:mod:`cocoer.training.optim`) read them too.
This module imports neither Lightning nor torchmetrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cocoer.constants import CALIBRATION_RULES, LEVELS
from cocoer.errors import ConfigError, check_choice

#: ``main``: the whole model with L_emo; ``prealign``: only W of the V-I module, with the
#: cosine loss to the mean text embedding of the ground-truth classes (section 3).
STAGES = ("main", "prealign")


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


@dataclass
class LossConfig(LossWeights):
    """The weights of L_emo (:class:`LossWeights`) and its switches: ``dynamic_weights`` (the
    EMOTIC sample weights) and ``detach_level_terms`` (the authors' detached terms, section 9)."""

    dynamic_weights: bool = True
    detach_level_terms: bool = False

    def weights(self) -> LossWeights:
        """The weights alone."""
        return LossWeights(**{f.name: getattr(self, f.name) for f in fields(LossWeights)})

    def check(self, where: str = "loss.") -> None:
        """Every weight >= 0 and at least one beta of the predictions > 0."""
        for f in fields(LossWeights):
            if getattr(self, f.name) < 0:
                raise ConfigError(f"{where}{f.name} = {getattr(self, f.name)} must be >= 0")
        if sum(getattr(self, k) for k in ("beta_c", "beta_b", "beta_h", "beta_t", "beta_G")) == 0:
            raise ConfigError(f"all beta weights ({where}beta_*) are 0: nothing would be trained")


@dataclass
class OptimizerConfig:
    """Adam: learning rate, weight decay, (beta1, beta2)."""

    lr: float = 6e-5
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])

    def check(self, where: str = "optimizer.") -> None:
        if self.lr <= 0:
            raise ConfigError(f"{where}lr = {self.lr} must be > 0")


@dataclass
class SchedulerConfig:
    """StepLR: the learning rate times ``gamma`` every ``step_size`` epochs."""

    step_size: int = 3
    gamma: float = 0.01

    def check(self, where: str = "scheduler.") -> None:
        if self.step_size < 1 or not 0 < self.gamma <= 1:
            raise ConfigError(f"{where[:-1]} needs step_size >= 1 and 0 < gamma <= 1")


#: the options held as nested dataclasses (given as mappings)
_NESTED: dict[str, type[Any]] = {
    "loss": LossConfig,
    "optimizer": OptimizerConfig,
    "scheduler": SchedulerConfig,
}


@dataclass
class TrainingOptions:
    """What the LightningModule does with the model (its arguments other than ``net``).

    loss / optimizer / scheduler: see :class:`LossConfig`, :class:`OptimizerConfig`,
    :class:`SchedulerConfig`. freeze_levels: levels whose backbone is not trained;
    freeze_backbones: all of them. threshold_rule: how the per-class thresholds are
    calibrated on the validation split (:data:`~cocoer.constants.CALIBRATION_RULES`).
    example_predictions: rows of the prediction table kept per test run. stage: one of
    :data:`STAGES`. init_from: a checkpoint whose weights initialise the model.
    """

    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    freeze_levels: list[str] = field(default_factory=list)
    freeze_backbones: bool = False
    threshold_rule: str = "f1"
    example_predictions: int = 16
    stage: str = "main"
    init_from: str | None = None

    @classmethod
    def from_kwargs(cls, **options: Any) -> TrainingOptions:
        """The options from keyword arguments (mappings for the nested ones); a missing or
        None argument takes its default. Checked (:meth:`check`).

        Raises:
            TypeError: an unknown option; ConfigError: a value out of range.
        """
        given: dict[str, Any] = {}
        for name, value in options.items():
            if value is None:
                continue
            if name in _NESTED:
                value = _NESTED[name](**dict(value))
            elif name == "freeze_levels":
                value = list(value)
            given[name] = value
        out = cls(**given)
        out.check()
        return out

    def check(self, where: str = "") -> None:
        """Raise :class:`~cocoer.errors.ConfigError` naming the option (``where`` + name)."""
        self.loss.check(f"{where}loss.")
        self.optimizer.check(f"{where}optimizer.")
        self.scheduler.check(f"{where}scheduler.")
        for lvl in self.freeze_levels:
            check_choice("level", lvl, LEVELS, where=f"{where}freeze_levels")
        check_choice(f"{where}threshold_rule", self.threshold_rule, CALIBRATION_RULES)
        check_choice(f"{where}stage", self.stage, STAGES)
        if self.example_predictions < 0:
            raise ConfigError(
                f"{where}example_predictions = {self.example_predictions} must be >= 0"
            )

    def as_hparams(self) -> dict[str, Any]:
        """Plain containers (what a checkpoint stores as hyper-parameters)."""
        return asdict(self)


def training_hparams(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of :class:`TrainingOptions` from a (partial) mapping, defaults filled in,
    as plain containers."""
    names = {f.name for f in fields(TrainingOptions)}
    return TrainingOptions.from_kwargs(
        **{k: v for k, v in options.items() if k in names}
    ).as_hparams()

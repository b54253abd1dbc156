"""Structured config schemas (dataclasses in Hydra's ConfigStore) and cross-field checks.

The YAML files in ``conf/`` extend these schemas (``defaults: [<schema>, _self_]``), so a
typo in a key or a value of the wrong type fails when the config is composed. Rules that
span fields or ranges (alpha >= 0, p >= 1, level names...) are checked by
:func:`validate_config` before any data is read or model built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cocoer.constants import LEVELS
from cocoer.errors import ConfigError, config_error_line
from cocoer.models.backbones import BACKBONES
from cocoer.models.cocoer import CocoERConfig
from cocoer.models.heads import FUSION_STYLES, INPUT_ACTIVATIONS, MAPPINGS
from cocoer.models.hfe import (
    ATTN_VALUES,
    BOX_QUANTIZATIONS,
    KV_SOURCES,
    LN_AFTER,
    MLP_ACTIVATIONS,
    POS_INJECTIONS,
    POS_SAMPLINGS,
)
from cocoer.models.norms import BACKBONE_NORMS
from cocoer.models.preprocess import BOX_ROUNDINGS, CHANNEL_ORDERS
from cocoer.models.vi import CLIP_INPUTS, CLIP_PRECISIONS, VI_FEATURES, VI_INPUT_ACTIVATIONS
from cocoer.training.losses import LossWeights
from cocoer.training.module import STAGES, THRESHOLD_RULES
from cocoer.workspace import INNER_PARAMS, QP_METHODS, SAMPLE_WEIGHTS, TIE_BREAKS, UPDATE_TYPES
from cocoer.workspace.level_losses import LOSS_KINDS

# The model's options live next to the modules they configure (one place per option);
# ``model.net`` of the schema is the model's own config dataclass.
NetConfig = CocoERConfig


@dataclass
class LossConfig(LossWeights):
    dynamic_weights: bool = True
    detach_level_terms: bool = False


@dataclass
class OptimizerConfig:
    lr: float = 6e-5
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class SchedulerConfig:
    step_size: int = 3
    gamma: float = 0.01


@dataclass
class ModelConfig:
    _target_: str = "cocoer.training.module.CocoERLitModule"
    _recursive_: bool = False
    net: CocoERConfig = field(default_factory=CocoERConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    freeze_levels: list[str] = field(default_factory=list)
    freeze_backbones: bool = False
    threshold_rule: str = "f1"
    example_predictions: int = 16
    stage: str = "main"
    init_from: str | None = None


def register_configs() -> None:
    """Register the schemas: ``model/schema`` is the base of every model YAML."""
    cs = ConfigStore.instance()
    cs.store(group="model", name="schema", node=ModelConfig)


def _fail(msg: str) -> NoReturn:
    raise ConfigError(f"invalid config: {msg}")


#: the options that reproduce the authors' released code: (path under model.net, choices)
AUTHORS_OPTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hfe.backbone_norm", BACKBONE_NORMS),
    ("hfe.pos_sampling", POS_SAMPLINGS),
    ("hfe.pos_injection", POS_INJECTIONS),
    ("hfe.attn_value", ATTN_VALUES),
    ("hfe.kv_source", KV_SOURCES),
    ("hfe.mlp_activation", MLP_ACTIVATIONS),
    ("hfe.ln_after", LN_AFTER),
    ("level_input_activation", INPUT_ACTIVATIONS),
    ("vi.clip_input", CLIP_INPUTS),
    ("vi.input_activation", VI_INPUT_ACTIVATIONS),
    ("vi.clip_precision", CLIP_PRECISIONS),
    ("fusion_style", FUSION_STYLES),
    ("workspace.inner_params", INNER_PARAMS),
    ("workspace.tie_break", TIE_BREAKS),
    ("box_quantization", BOX_QUANTIZATIONS),
    ("preprocess.channel_order", CHANNEL_ORDERS),
    ("preprocess.box_rounding", BOX_ROUNDINGS),
)


def _validate_authors_options(net: DictConfig) -> None:
    """Each of :data:`AUTHORS_OPTIONS` has one of its values (absent: the default)."""
    for path, choices in AUTHORS_OPTIONS:
        value = OmegaConf.select(net, path, default=None)
        if value is not None and value not in choices:
            _fail(f"model.net.{path} = {value!r}; choose one of {choices}")


def validate_config(cfg: DictConfig | dict[str, Any]) -> None:
    """Cross-field checks of a composed config; raises :class:`ConfigError` (a ValueError)
    with a clear message that names the key.

    Runs before anything heavy (no data read, no model built). A value that OmegaConf
    itself cannot read (an interpolation to a missing key, a wrong type in a typed node)
    is reported with its key.
    """
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    try:
        _validate(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid config: {config_error_line(exc)}") from None


#: integer options outside the model schema: (key, least value)
INTEGER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("seed", 0),
    ("data.batch_size", 1),
    ("data.eval_batch_size", 1),
    ("data.num_workers", 0),
    ("trainer.max_epochs", -1),  # -1: no limit (Lightning)
)


def _validate_integer_options(cfg: DictConfig) -> None:
    """Each of :data:`INTEGER_OPTIONS` that is set is an integer of at least its least value."""
    for key, least in INTEGER_OPTIONS:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            _fail(f"{key} = {value!r} must be an integer >= {least}")


def _validate(cfg: DictConfig) -> None:
    model = cfg.get("model")
    if model is None:
        _fail("no `model` group selected")
    net = model.net
    loss = model.loss
    for k in ("beta_c", "beta_b", "beta_h", "beta_t", "beta_G"):
        if loss[k] < 0:
            _fail(f"model.loss.{k} = {loss[k]} must be >= 0")
    if loss.alpha < 0:
        _fail(f"model.loss.alpha = {loss.alpha} must be >= 0")
    if loss.beta_vad < 0:
        _fail(f"model.loss.beta_vad = {loss.beta_vad} must be >= 0")
    if sum(loss[k] for k in ("beta_c", "beta_b", "beta_h", "beta_t", "beta_G")) == 0:
        _fail("all beta weights are 0: nothing would be trained")
    hfe = net.hfe
    if hfe.patch_size < 1:
        _fail(f"model.net.hfe.patch_size = {hfe.patch_size} must be >= 1")
    for k in ("d_h", "heads", "depth", "image_size"):
        if hfe[k] < 1:
            _fail(f"model.net.hfe.{k} = {hfe[k]} must be >= 1")
    if hfe.backbone not in BACKBONES:
        _fail(f"model.net.hfe.backbone = {hfe.backbone!r}; choose one of {BACKBONES}")
    if net.d < 1:
        _fail(f"model.net.d = {net.d} must be >= 1")
    if net.mapping not in MAPPINGS:
        _fail(f"model.net.mapping = {net.mapping!r}; choose one of {MAPPINGS}")
    if net.mapping != "fc" and OmegaConf.select(cfg, "trainer.inference_mode", default=True):
        _fail(
            f"model.net.mapping={net.mapping} computes its inner step with autograd at "
            "evaluation time: set trainer.inference_mode=false"
        )
    if not 0 < net.vi.tau < 1:
        _fail(f"model.net.vi.tau = {net.vi.tau} must be in (0, 1)")
    if net.vi.feature not in VI_FEATURES:
        _fail(f"model.net.vi.feature = {net.vi.feature!r}; choose one of {VI_FEATURES}")
    _validate_authors_options(net)
    ws = net.workspace
    if ws.qp_method not in QP_METHODS:
        _fail(f"model.net.workspace.qp_method = {ws.qp_method!r}; choose one of {QP_METHODS}")
    if ws["update"] not in UPDATE_TYPES:
        _fail(f"model.net.workspace.update = {ws['update']!r}; choose one of {UPDATE_TYPES}")
    if ws.sample_weights not in SAMPLE_WEIGHTS:
        _fail(
            f"model.net.workspace.sample_weights = {ws.sample_weights!r}; "
            f"choose one of {SAMPLE_WEIGHTS}"
        )
    if ws.inner_lr < 0 or ws.delta_scale < 0:
        _fail("model.net.workspace.inner_lr and delta_scale must be >= 0")
    if net.loss_kind is not None and net.loss_kind not in LOSS_KINDS:
        _fail(f"model.net.loss_kind = {net.loss_kind!r}; choose one of {LOSS_KINDS}")
    for lvl in model.freeze_levels:
        if lvl not in LEVELS:
            _fail(f"model.freeze_levels has unknown level {lvl!r}; levels are {LEVELS}")
    if model.threshold_rule not in THRESHOLD_RULES:
        _fail(f"model.threshold_rule = {model.threshold_rule!r}: {' | '.join(THRESHOLD_RULES)}")
    if model.stage not in STAGES:
        _fail(f"model.stage = {model.stage!r}: {' | '.join(STAGES)}")
    if model.optimizer.lr <= 0:
        _fail(f"model.optimizer.lr = {model.optimizer.lr} must be > 0")
    if model.scheduler.step_size < 1 or not 0 < model.scheduler.gamma <= 1:
        _fail("model.scheduler needs step_size >= 1 and 0 < gamma <= 1")
    data = cfg.get("data")
    if data is not None:
        multi = bool(data.get("multi_label", True))
        if net.loss_kind is not None and (net.loss_kind == "ce") == multi:
            _fail(f"loss_kind {net.loss_kind!r} does not fit data.multi_label={multi}")
        if OmegaConf.select(net, "vad.enabled", default=False) and not multi:
            _fail("model.net.vad.enabled needs continuous annotations: EMOTIC data only")
    _validate_integer_options(cfg)

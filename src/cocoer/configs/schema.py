"""Structured config schemas (dataclasses in Hydra's ConfigStore) and cross-field checks.

The YAML files in ``conf/`` extend these schemas (``defaults: [<schema>, _self_]``), so a
typo in a key or a value of the wrong type fails when the config is composed. Rules that
span fields or ranges (alpha >= 0, p >= 1, level names...) are checked by
:func:`validate_config` before any data is read or model built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from cocoer.constants import LEVELS
from cocoer.data.preprocess import BOX_ROUNDINGS, CHANNEL_ORDERS, PreprocessConfig
from cocoer.losses import LOSS_KINDS, LossWeights
from cocoer.models.backbones import BACKBONES
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
from cocoer.models.vi import CLIP_INPUTS, CLIP_PRECISIONS, VI_FEATURES, VI_INPUT_ACTIVATIONS
from cocoer.workspace import INNER_PARAMS, QP_METHODS, TIE_BREAKS, UPDATE_TYPES


@dataclass
class HFEConfig:
    backbone: str = "resnet50"
    pretrained: bool = False
    weights_path: str | None = None
    image_size: int = 224
    patch_size: int = 2
    d_h: int = 1024
    heads: int = 3
    head_dim: int | None = None
    mlp_ratio: float = 2.0
    depth: int = 1
    dropout: float = 0.0
    tiny_width: int = 16
    # the authors' released code (docs/method.md section 9); defaults: the paper's method
    backbone_norm: str = "running"  # running | per_sample (M2)
    pos_sampling: str = "cocoer"  # cocoer | authors (M5)
    pos_injection: str = "tokens"  # tokens | qk (M6)
    attn_value: str = "normed"  # normed | raw (M7)
    kv_source: str = "updated"  # updated | initial (M8)
    mlp_activation: str = "gelu"  # gelu | silu (M10)
    ln_after: str = "none"  # none | shared (M13)


@dataclass
class VIConfig:
    clip_name: str = "RN50"
    clip_pretrained: str | None = None
    clip_weights_path: str | None = None
    tau: float = 0.3
    feature: str = "product"
    hidden_ratio: float = 0.25
    clip_input: str = "renormalize"  # renormalize | passthrough (V2)
    input_activation: str = "none"  # none | gelu (V6)
    clip_precision: str = "fp32"  # fp32 | fp16 (V3; CUDA only, the CPU stays fp32)


@dataclass
class WorkspaceConfig:
    qp_method: str = "closed_form"
    update: str = "all"
    delta_scale: float = 1.0
    inner_lr: float = 1.0
    sample_weights: str = "pseudo"
    inner_params: str = "all"  # all | linear (W5)
    tie_break: str = "context_first"  # context_first | head_first (W2)


@dataclass
class NetConfig:
    _target_: str = "cocoer.models.cocoer.CocoER"
    num_classes: int = MISSING
    multi_label: bool = MISSING
    class_names: list[str] | None = None
    d: int = 256
    loss_kind: str | None = None
    mapping: str = "fc"
    hfe: HFEConfig = field(default_factory=HFEConfig)
    vi: VIConfig = field(default_factory=VIConfig)
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    level_input_activation: str = "none"  # none | gelu (M14)
    fusion_style: str = "cocoer"  # cocoer | authors (F2/F3)
    box_quantization: str = "none"  # none | int224 (P6)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)  # P1, P5


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
    _target_: str = "cocoer.lit_module.CocoERLitModule"
    _recursive_: bool = False
    net: NetConfig = field(default_factory=NetConfig)
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


def _fail(msg: str) -> None:
    raise ValueError(f"invalid config: {msg}")


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
    """Cross-field checks of a composed config; raises ValueError with a clear message.

    Runs before anything heavy (no data read, no model built).
    """
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
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
    if ws.sample_weights not in ("pseudo", "uniform"):
        _fail(f"model.net.workspace.sample_weights = {ws.sample_weights!r}: pseudo | uniform")
    if ws.inner_lr < 0 or ws.delta_scale < 0:
        _fail("model.net.workspace.inner_lr and delta_scale must be >= 0")
    if net.loss_kind is not None and net.loss_kind not in LOSS_KINDS:
        _fail(f"model.net.loss_kind = {net.loss_kind!r}; choose one of {LOSS_KINDS}")
    for lvl in model.freeze_levels:
        if lvl not in LEVELS:
            _fail(f"model.freeze_levels has unknown level {lvl!r}; levels are {LEVELS}")
    if model.threshold_rule not in ("f1", "pr_equal", "fixed"):
        _fail(f"model.threshold_rule = {model.threshold_rule!r}: f1 | pr_equal | fixed")
    if model.stage not in ("main", "prealign"):
        _fail(f"model.stage = {model.stage!r}: main | prealign")
    if model.optimizer.lr <= 0:
        _fail(f"model.optimizer.lr = {model.optimizer.lr} must be > 0")
    if model.scheduler.step_size < 1 or not 0 < model.scheduler.gamma <= 1:
        _fail("model.scheduler needs step_size >= 1 and 0 < gamma <= 1")
    data = cfg.get("data")
    if data is not None:
        multi = bool(data.get("multi_label", True))
        if net.loss_kind is not None and (net.loss_kind == "ce") == multi:
            _fail(f"loss_kind {net.loss_kind!r} does not fit data.multi_label={multi}")
    if cfg.get("seed") is not None and int(cfg.seed) < 0:
        _fail(f"seed = {cfg.seed} must be >= 0")

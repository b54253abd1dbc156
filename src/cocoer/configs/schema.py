"""Structured config schemas (dataclasses in Hydra's ConfigStore) and cross-field checks.

The YAML files in ``conf/`` extend these schemas (``defaults: [<schema>, _self_]``), so a
typo in a key or a value of the wrong type fails when the config is composed. Rules that
span fields or ranges are checked by each node's own ``check()`` (:class:`CocoERConfig` and
its parts, :class:`~cocoer.training.config.TrainingOptions`), called by
:func:`validate_config` before any data is read or model built, which adds the rules that span
groups (model and trainer, model and data) and the integer options outside the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cocoer.errors import ConfigError, config_error_line
from cocoer.models.config import CocoERConfig
from cocoer.training.config import TrainingOptions

# The options live next to the modules they configure (one place per option and per
# check): ``model.net`` is the model's config dataclass, the rest of ``model`` the
# LightningModule's options.
NetConfig = CocoERConfig


@dataclass
class ModelConfig(TrainingOptions):
    """The ``model`` node: the LightningModule (``_target_``) with its options and ``net``."""

    _target_: str = "cocoer.training.module.CocoERLitModule"
    _recursive_: bool = False
    net: CocoERConfig = field(default_factory=CocoERConfig)


def register_configs() -> None:
    """Register the schemas: ``model/schema`` is the base of every model YAML."""
    cs = ConfigStore.instance()
    cs.store(group="model", name="schema", node=ModelConfig)


def _fail(msg: str) -> NoReturn:
    raise ConfigError(f"invalid config: {msg}")


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


def _checked(schema: type[Any], node: Any, names: Any = None) -> Any:
    """``node`` (or its keys ``names``) as the dataclass ``schema``, checked by its own
    ``check`` (OmegaConf reports unknown keys and wrong types)."""
    plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    assert isinstance(plain, dict)
    if names is not None:
        plain = {k: plain[k] for k in names if k in plain}
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), plain))


def _validate(cfg: DictConfig) -> None:
    model = cfg.get("model")
    if model is None:
        _fail("no `model` group selected")
    try:  # every node checks its own fields; the rules below span groups
        net: CocoERConfig = _checked(CocoERConfig, model.net)
        net.check("model.net.")
        options = [f.name for f in fields(TrainingOptions)]
        _checked(TrainingOptions, model, options).check("model.")
    except ConfigError as exc:
        _fail(str(exc))
    if net.mapping != "fc" and OmegaConf.select(cfg, "trainer.inference_mode", default=True):
        _fail(
            f"model.net.mapping={net.mapping} computes its inner step with autograd at "
            "evaluation time: set trainer.inference_mode=false"
        )
    data = cfg.get("data")
    if data is not None:
        multi = bool(data.get("multi_label", True))
        if net.loss_kind is not None and (net.loss_kind == "ce") == multi:
            _fail(f"loss_kind {net.loss_kind!r} does not fit data.multi_label={multi}")
        if net.vad.enabled and not multi:
            _fail("model.net.vad.enabled needs continuous annotations: EMOTIC data only")
    _validate_integer_options(cfg)

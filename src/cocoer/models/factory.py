"""The one way to build a CocoER: :func:`create_model` (in the manner of open_clip's factory).

A model is described by a :class:`~cocoer.models.cocoer.CocoERConfig` (whose ``hfe``,
``vi`` and ``workspace`` nodes are the config dataclasses that live next to
:class:`HFE`, :class:`VIModule` and :class:`Workspace`). :func:`create_model` accepts

- a preset name: a model YAML of ``conf/model/`` (``cocoer_tiny``, ``cocoer_paper``, see
  :func:`list_presets`), whose ``${data.*}`` interpolations are taken from a data YAML of
  ``conf/data/`` (``data=``, EMOTIC by default);
- a :class:`CocoERConfig`;
- a mapping or ``DictConfig`` with the same keys, e.g. the ``net`` hyper-parameters that a
  checkpoint stores (a ``_target_`` naming :class:`CocoER` is accepted and ignored),

and keyword overrides merged on top (nested mappings merge: ``hfe={"image_size": 64}``).
Unknown keys and values of the wrong type fail with a one-line ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cocoer.errors import config_error_line
from cocoer.models.cocoer import CocoER, CocoERConfig

MODEL_TARGET = "cocoer.models.cocoer.CocoER"
#: what ``pretrained=False`` sets: no download (local ``*weights_path`` files still load)
NO_DOWNLOAD: dict[str, Any] = {"hfe": {"pretrained": False}, "vi": {"clip_pretrained": None}}


def _conf_dir() -> Path:
    from cocoer import config_dir

    return config_dir()


def list_presets() -> list[str]:
    """Names of the model presets (``conf/model/*.yaml`` other than the schema)."""
    return sorted(p.stem for p in (_conf_dir() / "model").glob("*.yaml"))


def _load_with_defaults(path: Path) -> DictConfig:
    """A YAML of a config group merged over the same-group YAMLs in its ``defaults``
    (entries without a file, such as the ConfigStore's ``schema``, are the schema's
    defaults, which :func:`model_config` applies itself)."""
    node = OmegaConf.load(path)
    assert isinstance(node, DictConfig)
    parents = [d for d in node.pop("defaults", []) if isinstance(d, str) and d != "_self_"]
    files = [path.with_name(f"{d}.yaml") for d in parents]
    bases = [_load_with_defaults(f) for f in files if f.is_file()]
    merged = OmegaConf.merge(*bases, node) if bases else node
    assert isinstance(merged, DictConfig)
    return merged


def _preset(name: str, data: str) -> dict[str, Any]:
    """The ``net`` node of ``conf/model/<name>.yaml`` resolved against ``conf/data/<data>``."""
    path = _conf_dir() / "model" / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown model preset {name!r}; presets: {list_presets()}")
    data_path = _conf_dir() / "data" / f"{data}.yaml"
    if not data_path.is_file():
        raise ValueError(f"unknown data config {data!r} (no {data_path.name} in conf/data/)")
    data_node = _load_with_defaults(data_path)
    keys = ("num_classes", "multi_label", "image_size")
    model_node = _load_with_defaults(path)
    root = OmegaConf.create(
        {
            "data": {k: data_node[k] for k in keys if k in data_node},
            "net": model_node.get("net", {}),
        }
    )
    net = OmegaConf.to_container(root.net, resolve=True)
    assert isinstance(net, dict)
    return {str(k): v for k, v in net.items()}


def _as_dict(cfg: CocoERConfig | Mapping[str, Any]) -> Any:
    if isinstance(cfg, CocoERConfig):
        return OmegaConf.structured(cfg)
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return {k: (_as_dict(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}


def model_config(
    name_or_cfg: str | CocoERConfig | Mapping[str, Any],
    *,
    data: str = "emotic",
    pretrained: bool = True,
    **overrides: Any,
) -> CocoERConfig:
    """The :class:`CocoERConfig` described by a preset name, a dataclass or a mapping.

    Args:
        name_or_cfg: preset name (see :func:`list_presets`), CocoERConfig or mapping.
        data: the data YAML whose num_classes / multi_label / image_size fill a preset.
        pretrained: False switches every download off (:data:`NO_DOWNLOAD`, applied last).
        **overrides: CocoERConfig fields; nested mappings are merged into the nodes.
    Raises:
        ValueError: unknown preset, unknown key, wrong type, or a missing required field.
    """
    if isinstance(name_or_cfg, str):
        base: Any = _preset(name_or_cfg, data)
    elif isinstance(name_or_cfg, (CocoERConfig, Mapping)):
        base = _as_dict(name_or_cfg)
    else:
        raise ValueError(f"cannot build a model from a {type(name_or_cfg).__name__}")
    if not isinstance(base, DictConfig):
        base = dict(base)
        target = base.pop("_target_", MODEL_TARGET)
        if target != MODEL_TARGET:
            raise ValueError(f"model config names _target_={target!r}, not {MODEL_TARGET}")
    try:
        layers = [base, _as_dict(overrides)] + ([] if pretrained else [NO_DOWNLOAD])
        merged = OmegaConf.merge(OmegaConf.structured(CocoERConfig), *layers)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ValueError(f"invalid model config: {config_error_line(exc)}") from None
    assert isinstance(cfg, CocoERConfig)
    return cfg


def create_model(name_or_cfg: str | CocoERConfig | Mapping[str, Any], **kwargs: Any) -> CocoER:
    """Build a :class:`CocoER` from :func:`model_config` (``data``, ``pretrained`` and the
    field overrides are its keyword arguments); random or configured weights.

    >>> m = create_model("cocoer_tiny", data="emotic_synthetic", num_classes=3)
    >>> m.num_classes, m.cfg.hfe.backbone
    (3, 'tiny_cnn')
    """
    return CocoER(model_config(name_or_cfg, **kwargs))

"""``config.json`` of a hub folder: written from a model's config, read as literal data.

Written by :func:`build_hub_config` (``cocoer-export --format hub``)::

    {"format": "cocoer-hub", "format_version": 1, "cocoer_version": "0.1.0",
     "net": {...},                      # the complete CocoERConfig, local weight files null
     "class_names": [...], "multi_label": true,
     "thresholds": {"values": [...], "rule": "f1"},
     "preprocessing": {"image_size": 224, "mean": [...], "std": [...],
                       "channel_order": "rgb", "box_rounding": "cocoer",
                       "crops": {...}, "detector": "auto"},
     "training": {"loss": ..., "optimizer": ..., ...},   # what trained it (for the card)
     "source": {"kind": "checkpoint", "file": "epoch_015.ckpt"}}

Read by :func:`parse_hub_config`, which treats the file as data: no OmegaConf
interpolation (a ``${...}`` anywhere is refused), no Hydra keys (``_target_``...), no key
outside the schema, no local weight path or download in ``net`` (the weights are in
``model.safetensors``), no file written by a newer cocoer; the mirrors of ``net``
(class names, task type, window size, channel order, box rounding) must agree with it.
Every refusal is one :class:`~cocoer.errors.InputError` line naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cocoer.constants import CALIBRATION_RULES, IMAGENET_MEAN, IMAGENET_STD
from cocoer.errors import InputError, check_choice

HUB_FORMAT = "cocoer-hub"
#: the layout version this cocoer writes and reads (a larger one is refused)
HUB_FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
#: a config.json larger than this is refused before it is parsed
MAX_CONFIG_BYTES = 1 << 20

#: ``net`` fields that name a local file or a download, and their value in a hub folder
#: (the state dict holds every weight, CLIP's included)
LOCAL_WEIGHT_FIELDS: dict[tuple[str, str], Any] = {
    ("hfe", "weights_path"): None,
    ("hfe", "pretrained"): False,
    ("vi", "clip_weights_path"): None,
    ("vi", "clip_pretrained"): None,
}
#: training hyper-parameters kept for the model card (CocoERLitModule's arguments other
#: than ``net``, ``threshold_rule`` and ``init_from``, a local path)
TRAINING_KEYS = (
    "loss",
    "optimizer",
    "scheduler",
    "freeze_levels",
    "freeze_backbones",
    "example_predictions",
    "stage",
)
#: calibration rules of the lit module, plus the authors' fixed demo value (converted models)
THRESHOLD_RULES = (*CALIBRATION_RULES, "authors_demo")
SOURCE_KINDS = ("checkpoint", "converted", "safetensors")
#: how cocoer-infer makes the three windows of a person (cocoer.data.windows.make_windows)
CROP_RULES = {
    "context": "the whole image resized to S x S (aspect ratio not kept)",
    "body": "the body box cropped and resized to S x S",
    "head": "the face box (else a box from the body, head_source 'heuristic') cropped and "
    "resized to S x S",
    "boxes": "body and head boxes as (x1/W, y1/H, x2/W, y2/H), clipped to [0, 1]",
}
_SECTIONS: dict[str, tuple[str, ...]] = {
    "thresholds": ("values", "rule"),
    "preprocessing": (
        "image_size",
        "mean",
        "std",
        "channel_order",
        "box_rounding",
        "crops",
        "detector",
    ),
    "training": TRAINING_KEYS,
    "source": ("kind", "file"),
}
_REQUIRED = ("format", "format_version", "cocoer_version", "net", "class_names", "multi_label")
_TOP = (*_REQUIRED, *_SECTIONS)
#: Hydra keys that would make a config call something the file names
_HYDRA_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")


@dataclass(frozen=True)
class HubConfig:
    """A checked ``config.json`` (see the module docstring for the fields)."""

    net: dict[str, Any]
    class_names: list[str]
    multi_label: bool
    thresholds: list[float]
    threshold_rule: str
    image_size: int
    detector: str
    cocoer_version: str
    training: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def lit_hparams(self) -> dict[str, Any]:
        """The ``hyper_parameters`` of a :class:`~cocoer.training.module.CocoERLitModule` holding
        this model (``cocoer-eval``, ``cocoer-infer --ckpt`` on a hub folder)."""
        rule = self.threshold_rule if self.threshold_rule != "authors_demo" else "fixed"
        return {"net": self.net, **self.training, "threshold_rule": rule, "init_from": None}


# ------------------------------------------------------------------------------ writing
def portable_net(net: Mapping[str, Any]) -> dict[str, Any]:
    """The complete net config (every field, defaults filled in, class names resolved) with
    no local weight file and no download (:data:`LOCAL_WEIGHT_FIELDS`).

    Raises:
        ValueError: ``net`` is not a valid model config.
    """
    from omegaconf import OmegaConf

    from cocoer.models.cocoer import class_names_of
    from cocoer.models.factory import model_config

    cfg = model_config(net, pretrained=False)
    cfg.class_names = list(class_names_of(cfg))
    plain = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    assert isinstance(plain, dict)
    for (node, key), value in LOCAL_WEIGHT_FIELDS.items():
        plain[node][key] = value
    return {str(k): v for k, v in plain.items()}


def build_hub_config(
    hparams: Mapping[str, Any],
    thresholds: list[float],
    *,
    rule: str,
    source: Mapping[str, str],
    detector: str = "auto",
) -> dict[str, Any]:
    """The ``config.json`` of a model: its ``hyper_parameters`` (a checkpoint's or an
    export's), its calibrated thresholds [k] and how they were set (``rule``)."""
    from cocoer import __version__

    net = portable_net(hparams["net"])
    k = int(net["num_classes"])
    if len(thresholds) != k:
        raise ValueError(f"{len(thresholds)} thresholds for {k} classes")
    check_choice("threshold rule", rule, THRESHOLD_RULES)
    return {
        "format": HUB_FORMAT,
        "format_version": HUB_FORMAT_VERSION,
        "cocoer_version": __version__,
        "net": net,
        "class_names": list(net["class_names"]),
        "multi_label": bool(net["multi_label"]),
        "thresholds": {"values": [float(t) for t in thresholds], "rule": rule},
        "preprocessing": {
            "image_size": int(net["hfe"]["image_size"]),
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "channel_order": net["preprocess"]["channel_order"],
            "box_rounding": net["preprocess"]["box_rounding"],
            "crops": dict(CROP_RULES),
            "detector": detector,
        },
        "training": {k: hparams[k] for k in TRAINING_KEYS if k in hparams},
        "source": dict(source),
    }


# ------------------------------------------------------------------------------ reading
def read_json_file(path: str | os.PathLike[str], limit: int = MAX_CONFIG_BYTES) -> Any:
    """A JSON file of at most ``limit`` bytes, without NaN / Infinity (one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file" if not path.exists() else "not a file")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(path, f"larger than {limit} bytes: not a cocoer config")
    return parse_json(data, path)


def parse_json(data: bytes, where: str | os.PathLike[str]) -> Any:
    """``json.loads`` with every failure as one :class:`InputError` line."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(data.decode("utf-8"), parse_constant=no_constant)
    except RecursionError:
        raise InputError(where, "JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(where, f"not valid JSON ({str(exc).splitlines()[0][:120]})") from None


def refuse_executable(node: Any, where: str | os.PathLike[str], at: str = "") -> None:
    """Refuse Hydra keys (``_target_``...) and OmegaConf interpolations (``${...}``)
    anywhere in ``node`` (the file is data: nothing in it is resolved or called)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HYDRA_KEYS:
                raise InputError(
                    where, f"refused key {at}{key} (nothing in a model file is called)"
                )
            refuse_executable(value, where, f"{at}{key}.")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            refuse_executable(value, where, f"{at[:-1]}[{i}].")
    elif isinstance(node, str) and "${" in node:
        raise InputError(where, f"refused interpolation in {at[:-1] or 'a value'} (read as data)")


def _check_keys(obj: dict[str, Any], where: Path) -> None:
    unknown = sorted(set(obj) - set(_TOP))
    if unknown:
        raise InputError(where, f"unknown key(s) {', '.join(unknown)}")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise InputError(where, f"missing key(s) {', '.join(missing)}")
    for section, keys in _SECTIONS.items():
        value = obj.get(section, {})
        if not isinstance(value, dict):
            raise InputError(where, f"{section} must be an object")
        extra = sorted(set(value) - set(keys))
        if extra:
            raise InputError(where, f"unknown key(s) {', '.join(f'{section}.{k}' for k in extra)}")


def _check_version(obj: dict[str, Any], where: Path) -> None:
    from packaging.version import InvalidVersion, Version

    from cocoer import __version__

    version = obj["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(where, f"format_version {version!r} is not a positive integer")
    writer = obj["cocoer_version"]
    try:
        newer = Version(str(writer)) > Version(__version__)
    except InvalidVersion:
        raise InputError(where, f"cocoer_version {writer!r} is not a version") from None
    if newer or version > HUB_FORMAT_VERSION:
        raise InputError(
            where,
            f"written by cocoer {writer} (format {version}), newer than this cocoer "
            f"{__version__} (format {HUB_FORMAT_VERSION}): upgrade cocoer to read it",
        )


def _check_net(net: Any, where: Path) -> dict[str, Any]:
    """The net config, checked as a CocoERConfig without building anything."""
    from cocoer.models.factory import model_config

    if not isinstance(net, dict):
        raise InputError(where, "net must be an object")
    for (node, key), value in LOCAL_WEIGHT_FIELDS.items():
        part = net.get(node, {})
        got = part.get(key, value) if isinstance(part, dict) else value
        if got != value:
            raise InputError(
                where,
                f"net.{node}.{key} must be {json.dumps(value)} (weights come from {WEIGHTS_NAME})",
            )
    try:
        model_config(net, pretrained=False)
    except ValueError as exc:
        raise InputError(where, f"net: {exc}") from None
    return net


def _mirror(where: Path, name: str, got: Any, expected: Any) -> None:
    if got != expected:
        raise InputError(where, f"{name} {got!r} disagrees with the net config ({expected!r})")


def _checked(obj: dict[str, Any], where: Path) -> HubConfig:
    from cocoer.detect import BACKENDS
    from cocoer.models.cocoer import class_names_of
    from cocoer.models.factory import model_config

    net = _check_net(obj["net"], where)
    cfg = model_config(net, pretrained=False)
    names, multi_label = obj["class_names"], obj["multi_label"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise InputError(where, "class_names must be a non-empty list of strings")
    _mirror(where, "class_names", names, list(class_names_of(cfg)))
    _mirror(where, "multi_label", multi_label, cfg.multi_label)
    thr = obj.get("thresholds", {})
    values = thr.get("values", [0.5] * len(names))
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not isinstance(values, list) or len(values) != len(names) or not numbers:
        raise InputError(where, f"thresholds.values must be {len(names)} numbers")
    rule = thr.get("rule", "fixed")
    check_choice("thresholds.rule", rule, THRESHOLD_RULES, file=where)
    pre = obj.get("preprocessing", {})
    _mirror(
        where,
        "preprocessing.image_size",
        pre.get("image_size", cfg.hfe.image_size),
        cfg.hfe.image_size,
    )
    for key in ("channel_order", "box_rounding"):
        own = getattr(cfg.preprocess, key)
        _mirror(where, f"preprocessing.{key}", pre.get(key, own), own)
    for key, own in (("mean", list(IMAGENET_MEAN)), ("std", list(IMAGENET_STD))):
        if pre.get(key, own) != own:
            raise InputError(
                where, f"preprocessing.{key} {pre[key]!r}: cocoer normalises with {own}"
            )
    detector = pre.get("detector", "auto")
    check_choice("preprocessing.detector", detector, BACKENDS, file=where)
    source = obj.get("source", {})
    if source:
        check_choice("source.kind", source.get("kind"), SOURCE_KINDS, file=where)
    return HubConfig(
        net=net,
        class_names=list(names),
        multi_label=bool(multi_label),
        thresholds=[float(v) for v in values],
        threshold_rule=rule,
        image_size=int(cfg.hfe.image_size),
        detector=detector,
        cocoer_version=str(obj["cocoer_version"]),
        training=dict(obj.get("training", {})),
        source=dict(source),
    )


def parse_hub_config(path: str | os.PathLike[str]) -> HubConfig:
    """Read and check the ``config.json`` at ``path`` (see the module docstring).

    Raises:
        InputError: one line naming ``path`` and the first problem found.
    """
    path = Path(path)
    obj = read_json_file(path)
    if not isinstance(obj, dict):
        raise InputError(path, "not a cocoer config (not a JSON object)")
    refuse_executable(obj, path)
    if obj.get("format") != HUB_FORMAT:
        raise InputError(path, f"format {obj.get('format')!r} is not {HUB_FORMAT!r}")
    _check_keys(obj, path)
    _check_version(obj, path)
    return _checked(obj, path)

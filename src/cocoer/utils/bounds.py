"""Limits on a model config read from a file, checked before anything is allocated.

A checkpoint, a safetensors export or an ONNX export is untrusted: its stored ``net``
config decides how much memory building the model takes (``num_classes`` with 4000 digits,
``image_size=60000``). :func:`check_net_bounds` refuses, in one line naming the key, any
size outside :data:`LIMITS` and class names that are not short printable text (the CLIP
name is checked against open_clip's list by
:func:`cocoer.checkpoint.safe_load.check_hparams`). :func:`check_literal` refuses strings
that OmegaConf would interpolate or resolve (``${oc.env:SECRET}``): configs from files are
literal data.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any

from cocoer.errors import CheckpointError

#: (lowest, highest) accepted for the numeric fields of a stored net config (dotted keys)
LIMITS: dict[str, tuple[float, float]] = {
    "num_classes": (1, 1000),
    "d": (1, 8192),
    "hfe.image_size": (16, 2048),
    "hfe.patch_size": (1, 64),
    "hfe.d_h": (1, 8192),
    "hfe.heads": (1, 64),
    "hfe.head_dim": (1, 4096),
    "hfe.depth": (1, 48),
    "hfe.mlp_ratio": (0.0, 16.0),
    "hfe.tiny_width": (1, 1024),
    "vi.hidden_ratio": (0.0, 4.0),
    "vi.tau": (0.0, 1.0),
}
#: the longest class name accepted (characters)
MAX_CLASS_NAME = 100


def _get(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def check_literal(where: str | os.PathLike[str], node: Any, key: str = "") -> None:
    """Refuse any string in ``node`` that OmegaConf would interpolate (``${...}``)."""
    if isinstance(node, dict):
        for k, v in node.items():
            check_literal(where, k, key)
            check_literal(where, v, f"{key}{k}.")
    elif isinstance(node, list):
        for v in node:
            check_literal(where, v, key)
    elif isinstance(node, str) and "${" in node:
        raise CheckpointError(
            where,
            f"refused interpolation in {key.rstrip('.') or 'a key'} (file configs are literal)",
        )


def check_text(where: str | os.PathLike[str], what: str, text: Any) -> str:
    """``text`` if it is a short string without control characters, else CheckpointError."""
    if not isinstance(text, str):
        raise CheckpointError(where, f"{what} is a {type(text).__name__}, not text")
    if len(text) > MAX_CLASS_NAME:
        raise CheckpointError(
            where, f"{what} is {len(text)} characters long (limit {MAX_CLASS_NAME})"
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in text):
        raise CheckpointError(
            where,
            f"{what} {text.encode('unicode_escape').decode()[:60]!r} holds control characters",
        )
    return text


def check_class_names(where: str | os.PathLike[str], names: Any, k: int | None = None) -> list[str]:
    """The class names as a list of printable strings (at most the class-count limit)."""
    if not isinstance(names, list):
        raise CheckpointError(where, f"class names are a {type(names).__name__}, not a list")
    high = int(LIMITS["num_classes"][1])
    if not 1 <= len(names) <= high:
        raise CheckpointError(where, f"{len(names)} class names (1 to {high} accepted)")
    if k is not None and len(names) != k:
        raise CheckpointError(where, f"{len(names)} class names for {k} classes")
    return [check_text(where, f"class name {i}", n) for i, n in enumerate(names)]


def check_number(where: str | os.PathLike[str], key: str, value: Any) -> None:
    """``value`` of ``key`` within :data:`LIMITS` (None passes: the default applies)."""
    if value is None or key not in LIMITS:
        return
    low, high = LIMITS[key]
    integer = isinstance(low, int)
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise CheckpointError(where, f"{key} is {str(value)[:40]!r}, not a number")
    if isinstance(value, int) and value.bit_length() > 64:
        raise CheckpointError(where, f"{key} has {len(str(abs(value)))} digits (limit {high})")
    if not low <= value <= high:
        raise CheckpointError(where, f"{key}={value} is outside [{low}, {high}]")


def check_net_bounds(where: str | os.PathLike[str], net: Any) -> None:
    """Refuse a stored ``net`` config whose sizes would allocate beyond :data:`LIMITS`.

    Raises:
        CheckpointError: one line naming the file and the key.
    """
    if not isinstance(net, dict):
        raise CheckpointError(where, "no net config")
    check_literal(where, net, "net.")
    for key in LIMITS:
        check_number(where, key, _get(net, key))
    k = net.get("num_classes")
    if net.get("class_names") is not None:
        check_class_names(where, net["class_names"], k if isinstance(k, int) else None)

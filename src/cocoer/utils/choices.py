"""The one check of "a value is one of the allowed choices" (config options, CLI arguments)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from cocoer.errors import ConfigError


def check_choice(name: str, value: Any, allowed: Collection[Any], where: str = "") -> None:
    """Raise :class:`~cocoer.errors.ConfigError` (a ValueError) naming the option, the value
    and the choices when ``value`` is not one of ``allowed``.

    >>> check_choice("update", "all", ("all", "eliminated"))
    >>> check_choice("update", "some", ("all", "eliminated"))
    Traceback (most recent call last):
    ...
    cocoer.errors.ConfigError: unknown update 'some'; choose one of ('all', 'eliminated')
    >>> check_choice("level", "neck", ("context",), where="model.freeze_levels")
    Traceback (most recent call last):
    ...
    cocoer.errors.ConfigError: model.freeze_levels: unknown level 'neck'; choose one of ('context',)
    """
    if value not in allowed:
        prefix = f"{where}: " if where else ""
        shown = tuple(allowed) if not isinstance(allowed, tuple) else allowed
        raise ConfigError(f"{prefix}unknown {name} {value!r}; choose one of {shown}")

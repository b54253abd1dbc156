"""What a "clear error" is: the one exception family for bad input a user passed in.

Every reader of user files (checkpoints, images, annotations, caches, configs) reports an
input it cannot use either as a counted skip (:class:`cocoer.data.records.SkipReport`) or
by raising :class:`InputError` (or a subclass), whose message names the file and the
reason on one line. The command-line tools print that line and exit with status 2 instead
of a traceback (:func:`clear_error_in`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from typing import Any


class CocoerError(Exception):
    """Base of the errors that the command-line tools report on one line (no traceback)."""


class InputError(CocoerError, ValueError):
    """A file or value given by the user cannot be used.

    ``InputError(where, reason)``, or ``InputError(message)``: one full message that names
    the file or value itself (also how an exception is rebuilt when it crosses a process
    boundary: pickling calls ``type(exc)(*exc.args)`` in DataLoader workers, DDP ranks).

    Attributes:
        where: the file (or value) that was refused (the whole message in the one-argument
            form).
        reason: why, in a few words ("" in the one-argument form).
    """

    def __init__(self, where: str | os.PathLike[str], reason: str | None = None) -> None:
        self.where = str(where)
        self.reason = "" if reason is None else " ".join(str(reason).split())  # one line
        super().__init__(self.where if reason is None else f"{self.where}: {self.reason}")


class MissingFileError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist (also a :class:`FileNotFoundError`)."""


class CheckpointError(InputError):
    """A checkpoint (or exported model) that cannot be loaded safely."""

    def __str__(self) -> str:
        if not self.reason:  # rebuilt from its message
            return self.where
        return f"cannot load checkpoint {self.where}: {self.reason}"


class WeightFileError(CocoerError, ValueError):
    """A weight file that cannot be read (the message names the file and the reason)."""


class ConfigError(CocoerError, ValueError):
    """A composed config that cannot run (a value out of range, of the wrong type, an
    interpolation to a missing key); the message names the key."""


class NonFiniteLossError(CocoerError, RuntimeError):
    """A loss term became NaN or infinite during training (the run stops)."""


class NonFiniteGradientError(CocoerError, RuntimeError):
    """A gradient became NaN or infinite during training (the run stops before the step)."""


def config_error_line(exc: BaseException) -> str:
    """One line for an OmegaConf error: ``key: first line of the message`` (the key when
    the error names one, as ``full_key``)."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    key = getattr(exc, "full_key", None)
    return f"{key}: {first}" if key else first


#: the last line of a child process's traceback when it stopped with a clear error
_CHILD_ERROR = re.compile(r"^cocoer\.errors\.(\w+): (.+)$", re.MULTILINE)


def _from_child(exc: BaseException) -> CocoerError | None:
    """The clear error a spawned process stopped with (``torch.multiprocessing``'s
    ``ProcessRaisedException`` carries only the child's traceback as text: a DDP rank of
    ``trainer=ddp_sim`` that raised :class:`NonFiniteLossError`), else None."""
    if type(exc).__name__ != "ProcessRaisedException":
        return None
    found = _CHILD_ERROR.findall(str(exc))
    if not found:
        return None
    name, message = found[-1]
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, CocoerError):
        return CocoerError(message)
    return None


def clear_error_in(exc: BaseException) -> CocoerError | None:
    """The :class:`CocoerError` ``exc`` is or was caused by (e.g. wrapped by Hydra's
    ``InstantiationException``, or raised in a spawned DDP process), else None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, CocoerError):
            return cur
        child = _from_child(cur)
        if child is not None:
            return child
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def check_choice(
    name: str,
    value: Any,
    allowed: Collection[Any],
    where: str = "",
    file: str | os.PathLike[str] | None = None,
) -> None:
    """Raise :class:`ConfigError` (a ValueError) naming the option, the value and the choices
    when ``value`` is not one of ``allowed``; with ``file`` (a value read from that file), an
    :class:`InputError` naming the file instead.

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
        message = f"{prefix}unknown {name} {value!r}; choose one of {shown}"
        if file is not None:
            raise InputError(file, message)
        raise ConfigError(message)

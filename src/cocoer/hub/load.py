"""A model by name: a hub folder, or a Hugging Face Hub repo id resolved through
``huggingface_hub`` (its cache, revision pinning, ``HF_HUB_OFFLINE``).

    folder = resolve_model("ORG/NAME@v1.0")       # or a local folder
    cfg, state = read_hub_folder(folder)          # checked config, checked weights

The model itself is rebuilt by :func:`cocoer.checkpoint.model.load_model` (a hub folder is
one of the files it reads).

``NAME`` is a folder when one exists at that path, else a repo id ``ORG/NAME`` with an
optional ``@REVISION`` (a branch, tag or commit; or the ``revision`` argument). Every
failure is one :class:`~cocoer.errors.InputError` line: offline and not cached, no such
repository, revision or file, a refused ``config.json`` (:mod:`cocoer.hub.config`), weights
that do not match it (:mod:`cocoer.hub.weights`; refused before any model is built).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import torch

from cocoer.errors import InputError
from cocoer.hub.config import (
    CARD_NAME,
    CONFIG_NAME,
    HUB_FORMAT,
    WEIGHTS_NAME,
    HubConfig,
    parse_hub_config,
)
from cocoer.hub.weights import load_checked_weights

#: ``ORG/NAME`` with an optional ``@REVISION`` (the Hub's rules for names, simplified)
REPO_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95})(@(?P<rev>[\w./-]{1,200}))?$"
)


def is_hub_folder(path: str | os.PathLike[str]) -> bool:
    """A folder whose ``config.json`` says ``cocoer-hub`` (a safetensors export's says
    ``cocoer-safetensors``; the same file names otherwise)."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return False
    with config.open("rb") as f:
        return f'"{HUB_FORMAT}"'.encode() in f.read(1 << 20)


def _hub_error(name: str, revision: str | None, exc: Exception) -> InputError:
    """One line for a ``huggingface_hub`` failure."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    rev = revision or "main"
    if isinstance(exc, LocalEntryNotFoundError):
        cached = (Path(constants.HF_HUB_CACHE) / f"models--{name.replace('/', '--')}").is_dir()
        what = f"revision {rev!r} is" if cached else "it is"
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached"
        return InputError(
            name,
            f"no such folder, and {what} not in the Hugging Face cache ({why}); "
            "download it where the Hub is reachable, or pass a folder",
        )
    if isinstance(exc, RevisionNotFoundError):
        return InputError(name, f"no revision {rev!r} in this repository")
    if isinstance(exc, RepositoryNotFoundError):
        return InputError(
            name, "no such Hub repository (or it is private: log in with `hf auth login`)"
        )
    if isinstance(exc, EntryNotFoundError):
        return InputError(
            name, f"the repository has no {exc.args[0] if exc.args else 'such file'}"[:200]
        )
    first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return InputError(name, f"cannot fetch from the Hub ({first[:160]})")


def resolve_model(name: str | os.PathLike[str], revision: str | None = None) -> Path:
    """The local folder holding ``config.json`` and ``model.safetensors`` for ``name``.

    Raises:
        InputError: see the module docstring.
    """
    path = Path(name)
    if path.exists():
        if not path.is_dir():
            raise InputError(path, "not a folder (a hub model is a folder or ORG/NAME)")
        return path
    m = REPO_ID.match(str(name))
    if m is None:
        raise InputError(name, "no such folder, and not a Hub repo id (ORG/NAME[@REVISION])")
    repo, revision = m["repo"], revision or m["rev"]
    from huggingface_hub import hf_hub_download

    try:
        files = [hf_hub_download(repo, f, revision=revision) for f in (CONFIG_NAME, WEIGHTS_NAME)]
    except (OSError, ValueError) as exc:  # the Hub's errors are OSErrors; bad names ValueErrors
        raise _hub_error(repo, revision, exc) from None
    with contextlib.suppress(OSError, ValueError):  # the card is for people, not needed
        hf_hub_download(repo, CARD_NAME, revision=revision)  # cached beside the model
    return Path(files[0]).parent


def read_hub_folder(folder: str | os.PathLike[str]) -> tuple[HubConfig, dict[str, torch.Tensor]]:
    """(checked config, net state dict) of a hub folder; nothing is built from a file
    that is refused."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise InputError(folder, f"no {CONFIG_NAME}: not a hub model folder")
    cfg = parse_hub_config(folder / CONFIG_NAME)
    state = load_checked_weights(folder / WEIGHTS_NAME, cfg.net)
    return cfg, state

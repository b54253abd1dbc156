"""Read a ``.env`` file (KEY=VALUE lines) into the environment without overriding it.

The configs read machine-specific values with ``${oc.env:VAR,default}`` (dataset roots,
``WANDB_API_KEY``, ``COCOER_ROOT``); ``.env`` is git-ignored, ``.env.example`` documents it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cocoer.errors import InputError


def load_dotenv(path: str | Path = ".env") -> dict[str, str]:
    """Set the variables of ``path`` that are not already set; returns those it set.

    Blank lines and ``#`` comments are ignored; values may be quoted; a line without
    ``=`` raises ValueError naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    added: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        if "=" not in line:
            raise InputError(f"{path}:{n}: expected KEY=VALUE, got {raw!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key and value and key not in os.environ:
            os.environ[key] = value
            added[key] = value
    return added

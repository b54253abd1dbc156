"""Hostile checkpoint files for the safety tests: a ``__reduce__`` payload that creates a
marker file when unpickled, random bytes, a truncated and an empty file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class Payload:
    """Unpickling this object runs ``open(marker, 'w')`` (what a malicious file does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def write_payload_checkpoint(path: Path, marker: Path, base: dict[str, Any] | None = None) -> Path:
    """A checkpoint-looking dict (``base`` or a minimal one) with the payload inside."""
    ckpt: dict[str, Any] = dict(base or {"state_dict": {"w": torch.zeros(2)}})
    ckpt["hyper_parameters"] = {**ckpt.get("hyper_parameters", {}), "evil": Payload(marker)}
    torch.save(ckpt, path)
    return path


def write_bad_files(folder: Path, good: Path | None = None) -> dict[str, Path]:
    """``random``, ``empty`` (and ``truncated``, half of ``good``) files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"random": folder / "random.ckpt", "empty": folder / "empty.ckpt"}
    files["random"].write_bytes(os.urandom(4096))
    files["empty"].write_bytes(b"")
    if good is not None:
        data = good.read_bytes()
        files["truncated"] = folder / "truncated.ckpt"
        files["truncated"].write_bytes(data[: len(data) // 2])
    return files

"""The one reader of torch files: :func:`load_weights_only`, the package's only
``torch.load`` call, with the checks that go with it.

Every torch file a user passes in is untrusted. Before torch opens one, a legacy (non-zip)
archive or a zip bomb is refused (:func:`zip_problem`); torch's weights-only unpickler runs
with the allow-list :data:`ALLOWED_GLOBALS`, which is EMPTY (the globals other libraries
register with ``torch.serialization.add_safe_globals`` are switched off during the load);
after, a tensor view that would expand on copy (stride 0, overlapping, past its storage) is
refused (:func:`check_views`), so no file makes the loader allocate more than it holds.

It lives in :mod:`cocoer.utils` so that the model code (a backbone's local weights,
:mod:`cocoer.models.backbones`) and the model-file readers (:mod:`cocoer.checkpoint`) share it.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cocoer.errors import WeightFileError

#: Globals (classes / functions) a torch file may reference beyond torch's own tensor and
#: container rebuilders. Kept empty on purpose: cocoer checkpoints hold only plain
#: containers, strings, numbers and tensors.
ALLOWED_GLOBALS: tuple[Any, ...] = ()


@contextmanager
def only_allowed_globals() -> Iterator[None]:
    """Within the block, torch's weights-only unpickler accepts only ALLOWED_GLOBALS."""
    registered = list(torch.serialization.get_safe_globals())
    torch.serialization.clear_safe_globals()
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(registered)


def load_weights_only(path: str | os.PathLike[str]) -> Any:
    """The object stored in torch file ``path``, on the CPU, read by torch's weights-only
    unpickler with :data:`ALLOWED_GLOBALS` (the caller checks :func:`zip_problem` first and
    the tensors with :func:`check_views` after).

    Raises:
        whatever ``torch.load`` raises for a file it refuses or cannot read
        (``pickle.UnpicklingError`` for a refused global): callers turn it into their
        one-line error.
    """
    with only_allowed_globals():
        return torch.load(path, map_location="cpu", weights_only=True)


def _brief(exc: BaseException) -> str:
    """The first line of an exception's message (torch's are often paragraphs)."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


#: bytes a zip archive may expand to beyond its own size (torch stores entries uncompressed)
ZIP_SLACK = 1 << 20


def zip_problem(path: Path) -> str | None:
    """Why the torch archive ``path`` must not be opened (a legacy non-zip file, whose
    storages are allocated at their declared size before being read, or entries that
    expand beyond the file's size: a zip bomb), or None."""
    if not zipfile.is_zipfile(path):
        return "not a zip-format torch file (legacy files are not read; re-save with torch >= 1.6)"
    try:
        with zipfile.ZipFile(path) as zf:
            declared = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"damaged zip archive ({_brief(exc)})"
    size = path.stat().st_size
    if declared > 2 * size + ZIP_SLACK:
        return f"its entries expand to {declared} bytes from a {size}-byte file (zip bomb?)"
    return None


def view_problem(t: Tensor) -> str | None:
    """Why tensor ``t`` must not be materialised (a view reaching past its storage, a
    stride-0 or overlapping view that would expand on copy), or None."""
    dims = [(int(n), int(s)) for n, s in zip(t.shape, t.stride(), strict=True) if n > 1]
    if not dims:
        return None
    if any(s <= 0 for _, s in dims):
        return "a stride-0 (broadcast) view"
    extent = t.storage_offset() + sum((n - 1) * s for n, s in dims) + 1
    if extent * t.element_size() > t.untyped_storage().nbytes():
        return "a view reaching past its storage"
    span = 1
    for n, s in sorted(dims, key=lambda d: d[1]):
        if s < span:
            return "an overlapping view"
        span = n * s
    return None


def check_views(tensors: Mapping[str, Tensor], where: str | os.PathLike[str]) -> None:
    """Refuse tensors whose materialised size would exceed the bytes the file holds.

    Raises:
        WeightFileError: a stride-0 / overlapping / out-of-storage view, or views adding up
            to more than twice the distinct storages' bytes.
    """
    storages: dict[int, int] = {}
    total = 0
    for key, t in tensors.items():
        problem = view_problem(t)
        if problem:
            raise WeightFileError(f"{where}: tensor {str(key)[:80]!r} is {problem}; refusing it")
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        total += t.numel() * t.element_size()
    if total > 2 * sum(storages.values()) + ZIP_SLACK:
        raise WeightFileError(
            f"{where}: tensors share storages to expand to {total} bytes; refusing them"
        )

"""Data layer: dataset readers, box cache, windows/transforms, datamodules, generated data.

Heavy submodules (datamodules, which import Lightning) are loaded lazily on first attribute
access, so ``import cocoer.data.records`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from cocoer.data.records import BadSampleError, BBox, PersonRecord, SkipReport

_LAZY: dict[str, str] = {
    "load_box_cache": "cocoer.data.box_cache",
    "BoxCacheWriter": "cocoer.data.box_cache",
    "read_emotic_mat": "cocoer.data.emotic",
    "read_emotic_csv": "cocoer.data.emotic",
    "list_caer_s": "cocoer.data.caer_s",
    "make_windows": "cocoer.data.windows",
    "load_image": "cocoer.data.windows",
    "head_from_body": "cocoer.data.heuristics",
    "body_from_face": "cocoer.data.heuristics",
    "EmoticDataModule": "cocoer.data.emotic_datamodule",
    "CaerSDataModule": "cocoer.data.caer_s_datamodule",
    "PersonWindowsDataset": "cocoer.data.dataset",
    "generate_emotic": "cocoer.data.synthetic",
    "generate_caer_s": "cocoer.data.synthetic",
}

__all__ = ["BBox", "BadSampleError", "PersonRecord", "SkipReport", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cocoer.data' has no attribute {name!r}")

"""Workspace: batched competition and coordination (docs/method.md section 4).

The names below are imported on first attribute access, so that the torch-free options
(:mod:`cocoer.workspace.config`, read by the Hydra schema) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cocoer.workspace.config import (
        INNER_PARAMS,
        QP_METHODS,
        SAMPLE_WEIGHTS,
        TIE_BREAKS,
        UPDATE_TYPES,
        WorkspaceConfig,
    )
    from cocoer.workspace.core import (
        LevelMappingsLike,
        Workspace,
        WorkspaceOutput,
        competition,
        exclusion_order,
        gram_matrix,
    )
    from cocoer.workspace.qp import project_simplex, qp_objective, simplex_qp

_CONFIG = ("INNER_PARAMS", "QP_METHODS", "SAMPLE_WEIGHTS", "TIE_BREAKS", "UPDATE_TYPES")
_CORE = ("LevelMappingsLike", "Workspace", "WorkspaceOutput", "competition", "exclusion_order")
_LAZY: dict[str, str] = {
    **{name: "cocoer.workspace.config" for name in (*_CONFIG, "WorkspaceConfig")},
    **{name: "cocoer.workspace.core" for name in (*_CORE, "gram_matrix")},
    **{name: "cocoer.workspace.qp" for name in ("project_simplex", "qp_objective", "simplex_qp")},
}

__all__ = [
    "INNER_PARAMS",
    "QP_METHODS",
    "SAMPLE_WEIGHTS",
    "TIE_BREAKS",
    "UPDATE_TYPES",
    "LevelMappingsLike",
    "Workspace",
    "WorkspaceConfig",
    "WorkspaceOutput",
    "competition",
    "exclusion_order",
    "gram_matrix",
    "project_simplex",
    "qp_objective",
    "simplex_qp",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cocoer.workspace' has no attribute {name!r}")

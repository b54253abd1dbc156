"""Workspace: batched competition and coordination (METHOD.md section 4)."""

from cocoer.workspace.core import (
    SAMPLE_WEIGHTS,
    UPDATE_TYPES,
    LevelMappingsLike,
    Workspace,
    WorkspaceConfig,
    WorkspaceOutput,
    competition,
    exclusion_order,
    gram_matrix,
)
from cocoer.workspace.qp import QP_METHODS, project_simplex, qp_objective, simplex_qp

__all__ = [
    "QP_METHODS",
    "SAMPLE_WEIGHTS",
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

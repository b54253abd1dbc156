"""Workspace: batched competition and coordination (docs/method.md section 4)."""

from cocoer.workspace.core import (
    INNER_PARAMS,
    SAMPLE_WEIGHTS,
    TIE_BREAKS,
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

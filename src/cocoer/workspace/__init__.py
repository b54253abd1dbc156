"""Workspace: batched competition and coordination (METHOD.md section 4)."""

from cocoer.workspace.core import (
    INNER_PARAMS,
    TIE_BREAKS,
    UPDATE_TYPES,
    Workspace,
    WorkspaceOutput,
    competition,
    exclusion_order,
    gram_matrix,
)
from cocoer.workspace.qp import QP_METHODS, project_simplex, qp_objective, simplex_qp

__all__ = [
    "INNER_PARAMS",
    "QP_METHODS",
    "TIE_BREAKS",
    "UPDATE_TYPES",
    "Workspace",
    "WorkspaceOutput",
    "competition",
    "exclusion_order",
    "gram_matrix",
    "project_simplex",
    "qp_objective",
    "simplex_qp",
]

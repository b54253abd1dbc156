"""The workspace: competition and coordination of the levels (docs/method.md section 4, Alg. 1).

Batched over samples and levels. Notation (per sample, levels m in Z = {c, b, h}):

- z_m [d] level representation, l_m = W_m z_m + b_m [k] level logits, y_t pseudo label;
- f_m = L_hier(l_m, y_t) and g_m = d f_m / d l_m [k];
- G has rows grad_theta f_m = (g_m z_m^T, g_m), so K = G G^T with
  K_ij = (g_i . g_j)(z_i . z_j + 1)  — no d*k vector is ever formed;
- each round solves lambda = argmin_simplex 1/2 lambda^T K_Z lambda - f_Z^T lambda and
  sets delta <- delta - G_Z^T lambda, then eliminates argmax_Z f. Since f and G do not
  change between rounds, the exclusion order is the descending order of f, and
  delta = -G^T mu with mu the multipliers accumulated over the rounds. delta is kept in
  this low-rank form: delta_W = -sum_i mu_i g_i z_i^T, delta_b = -sum_i mu_i g_i;
- |delta|^2 = mu^T K mu;
- coordination: theta~_m = theta_m + s delta for every m, then one closed-form inner step
  of FFN0_m on f_m through theta~_m gives the refined z^_m.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import torch
from torch import Tensor

from cocoer.workspace.config import (
    WorkspaceConfig,
)
from cocoer.workspace.level_losses import LevelLoss, emotic_sample_weights
from cocoer.workspace.qp import simplex_qp

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


C = TypeVar("C", bound="DataclassInstance")
C_contra = TypeVar("C_contra", contravariant=True)


class LevelMappingsLike(Protocol[C_contra]):
    """What the workspace uses of the level mappings g_m (``cocoer.models.heads``).

    ``theta_weight`` [q, k, d]: the stacked prediction layers W_m; ``inner_step(cache,
    dz, eta, params)``: the refined z^_m [B, q, d] after one step of FFN0_m along dz [B, q, d]
    (``params``: ``all`` or ``linear``, the parameters stepped),
    from the intermediates ``cache`` (a dataclass of tensors) of the forward pass.
    """

    @property
    def theta_weight(self) -> Tensor: ...

    def inner_step(
        self, cache: C_contra, dz: Tensor, eta: float, params: str = "all"
    ) -> Tensor: ...


@dataclass
class WorkspaceOutput:
    """Everything the workspace computes, per sample.

    f: [B, q] level losses against y_t; g: [B, q, k] their logit gradients;
    K: [B, q, q] gradient Gram matrix; order: [B, q] exclusion sequence (order[:, 0] is
    the first excluded level, order[:, -1] the survivor); lam: [B, q-1, q] multipliers of
    each round (zero for levels already eliminated); mu: [B, q] accumulated multipliers
    (delta = -G^T mu); delta_sq: [B] |delta|^2; z_hat: [B, q, d] refined representations.
    """

    f: Tensor
    g: Tensor
    K: Tensor
    order: Tensor
    lam: Tensor
    mu: Tensor
    delta_sq: Tensor
    z_hat: Tensor


def gram_matrix(g: Tensor, z: Tensor) -> Tensor:
    """K_ij = (g_i . g_j)(z_i . z_j + 1).  g [B, q, k], z [B, q, d] -> [B, q, q]."""
    return (g @ g.transpose(1, 2)) * (z @ z.transpose(1, 2) + 1.0)


def _descending_order(f: Tensor) -> Tensor:
    """Stable descending sort indices of f [B, q] (ties: lower index first), written as
    ranks (level i goes after every j with f_j > f_i and after an equal f_j with j < i) so
    that it exports to ONNX, which has no stable sort."""
    q = f.shape[-1]
    idx = torch.arange(q, device=f.device)
    f_i, f_j = f.unsqueeze(-1), f.unsqueeze(-2)  # [B, q(i), 1], [B, 1, q(j)]
    before = (f_j > f_i) | ((f_j == f_i) & (idx.view(1, q) < idx.view(q, 1)))  # j before i
    rank = before.sum(-1)  # [B, q]: position of level i in the sequence
    return (rank.unsqueeze(-1) == idx).to(torch.int32).argmax(1)  # [B, q]: level at r


def exclusion_order(f: Tensor, tie_break: str = "context_first") -> Tensor:
    """Levels by decreasing loss f [B, q] -> [B, q].

    Exact ties: ``context_first`` excludes the first level in (c, b, h) order first;
    ``head_first`` the first in (h, b, c) order, as the authors' ``list.index(max(...))``
    over [head, body, context] does.
    """
    if tie_break == "head_first":
        q = f.shape[-1]
        return q - 1 - _descending_order(f.flip(-1))
    return _descending_order(f)


def competition(
    K: Tensor, f: Tensor, method: str = "closed_form", tie_break: str = "context_first"
) -> tuple[Tensor, Tensor, Tensor]:
    """Competition rounds while q > 1.

    Args:
        K: [B, q, q]; f: [B, q]; tie_break: see :func:`exclusion_order`.
    Returns:
        order [B, q], lam [B, q-1, q] (per round, embedded at the level indices) and
        mu [B, q] = sum of the rounds' multipliers.
    """
    B, q = f.shape
    order = exclusion_order(f, tie_break)
    lams = []
    for r in range(q - 1):  # rounds: Z = order[:, r:], |Z| = q - r
        idx = order[:, r:]  # [B, q-r]
        K_Z = K.gather(1, idx.unsqueeze(-1).expand(-1, -1, q)).gather(
            2, idx.unsqueeze(1).expand(-1, q - r, -1)
        )
        lam_Z = simplex_qp(K_Z, f.gather(1, idx), method)
        lams.append(f.new_zeros(B, q).scatter(1, idx, lam_Z))
    lam = torch.stack(lams, 1) if lams else f.new_zeros(B, 0, q)
    return order, lam, lam.sum(1)


def _up(t: Any) -> Any:
    """Half-precision tensors to float32; anything else (float64 included) unchanged."""
    return t.float() if isinstance(t, Tensor) and t.dtype in (torch.float16, torch.bfloat16) else t


def _to_float32(z: Tensor, l: Tensor, cache: C, y_t: Tensor) -> tuple[Tensor, Tensor, C, Tensor]:
    """Upcast half-precision inputs (float64 stays float64 for the reference tests)."""
    cache = replace(cache, **{f.name: _up(getattr(cache, f.name)) for f in fields(cache)})
    return _up(z), _up(l), cache, _up(y_t)


class Workspace(torch.nn.Module):
    """Competition and coordination over the level mappings (no parameters of its own).

    Args:
        loss: the level loss family L_hier (same as training).
        cfg: the options (:class:`WorkspaceConfig`; defaults when None).
        **overrides: fields of :class:`WorkspaceConfig` replacing those of ``cfg``.
    """

    def __init__(
        self, loss: LevelLoss, cfg: WorkspaceConfig | None = None, **overrides: Any
    ) -> None:
        super().__init__()
        cfg = replace(cfg or WorkspaceConfig(), **overrides)
        cfg.check()
        self.cfg, self.loss = cfg, loss
        self.qp_method, self.update, self.sample_weights = (
            cfg.qp_method,
            cfg.update,
            cfg.sample_weights,
        )
        self.delta_scale, self.inner_lr = cfg.delta_scale, cfg.inner_lr
        self.inner_params, self.tie_break = cfg.inner_params, cfg.tie_break

    def level_weights(self, y_t: Tensor) -> Tensor | None:
        """Class weights of f_m: [B, 1, k] or None (uniform / single-label)."""
        if not self.loss.multi_label or self.sample_weights == "uniform":
            return None
        return emotic_sample_weights(y_t).unsqueeze(1)

    def forward(
        self, mappings: LevelMappingsLike[C], z: Tensor, l: Tensor, cache: C, y_t: Tensor
    ) -> WorkspaceOutput:
        """Run Algorithm 1 for a batch.

        Args:
            mappings: the level mappings g_m (FFN0_m, theta_m).
            z: [B, q, d] level representations; l: [B, q, k] level logits.
            cache: FFN0 intermediates (for the inner step).
            y_t: [B, k] pseudo label (no gradient).
        """
        # The QP's face tests and the inner step need full precision: under bf16/fp16
        # autocast the workspace runs in float32 (and returns float32).
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self._forward(mappings, *_to_float32(z, l, cache, y_t))

    def _forward(
        self, mappings: LevelMappingsLike[C], z: Tensor, l: Tensor, cache: C, y_t: Tensor
    ) -> WorkspaceOutput:
        y_t = y_t.detach().unsqueeze(1)  # [B, 1, k]
        w = self.level_weights(y_t.squeeze(1))
        f = self.loss.per_sample(l, y_t, w)  # [B, q]
        g = self.loss.grad(l, y_t, w)  # [B, q, k]
        K = gram_matrix(g, z)
        order, lam, mu = competition(K, f, self.qp_method, self.tie_break)
        delta_sq = torch.einsum("bi,bij,bj->b", mu, K, mu)

        # Coordination: theta~_m = theta_m + s delta, delta = -sum_i mu_i (g_i z_i^T, g_i).
        s = self.delta_scale
        zz = z @ z.transpose(1, 2) + 1.0  # [B, q(m), q(i)] : z_m . z_i + 1
        l_tilde = l - s * torch.einsum("bi,bmi,bik->bmk", mu, zz, g)  # [B, q, k]
        g_tilde = self.loss.grad(l_tilde, y_t, w)  # d f_m / d l~_m
        gg = torch.einsum("bmk,bik->bmi", g_tilde, g)  # g~_m . g_i
        dz = torch.einsum("bmk,mkd->bmd", g_tilde, mappings.theta_weight) - s * torch.einsum(
            "bi,bmi,bid->bmd", mu, gg, z
        )  # theta~_m^T g~_m  [B, q, d]
        z_hat = mappings.inner_step(cache, dz, self.inner_lr, self.inner_params)
        if self.update == "eliminated":
            survivor = torch.nn.functional.one_hot(order[:, -1], z.shape[1]).unsqueeze(-1)
            z_hat = torch.where(survivor.bool(), z, z_hat)
        return WorkspaceOutput(
            f=f, g=g, K=K, order=order, lam=lam, mu=mu, delta_sq=delta_sq, z_hat=z_hat
        )

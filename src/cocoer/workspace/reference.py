"""A slow per-sample reference of the workspace (the test oracle, not the product path).

Used by the tests and by ``benchmarks/workspace_speed.py``; it needs the optional
dependency cvxpy (``pip install cocoer[dev]``), imported when a QP is solved.

Everything is done the direct way, one sample at a time: explicit nn.Module copies of
each level mapping, autograd for every gradient, flattened d*k parameter vectors, an
off-the-shelf QP solver (cvxpy) for eq. 9, Algorithm 1 as written (argmax, eliminate,
repeat), then theta~ = theta + s delta and one SGD step of a copied FFN0.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from cocoer.workspace.level_losses import LevelLoss, emotic_sample_weights


class StackedMappings(Protocol):
    """What the reference reads of ``cocoer.models.heads.LevelMappings`` (stacked over q)."""

    @property
    def d(self) -> int: ...
    @property
    def in_dim(self) -> int: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def ffn0_weight(self) -> Tensor: ...
    @property
    def ffn0_bias(self) -> Tensor: ...
    @property
    def ln_weight(self) -> Tensor: ...
    @property
    def ln_bias(self) -> Tensor: ...
    @property
    def theta_weight(self) -> Tensor: ...
    @property
    def theta_bias(self) -> Tensor: ...


@dataclass
class ReferenceResult:
    order: list[list[int]]
    lam: np.ndarray  # [B, q-1, q]
    f: np.ndarray  # [B, q]
    delta_norm_sq: np.ndarray  # [B]
    z_hat: np.ndarray  # [B, q, d]


def solve_simplex_qp_cvxpy(K: np.ndarray, f: np.ndarray) -> np.ndarray:
    """min 1/2 l^T K l - f^T l on the simplex, with cvxpy (Clarabel/OSQP/ECOS)."""
    import cvxpy as cp

    q = len(f)
    lam = cp.Variable(q)
    Ks = 0.5 * (K + K.T) + 1e-12 * np.eye(q)
    prob = cp.Problem(
        cp.Minimize(0.5 * cp.quad_form(lam, cp.psd_wrap(Ks)) - f @ lam),
        [lam >= 0, cp.sum(lam) == 1],
    )
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return np.clip(np.asarray(lam.value), 0, None)


def level_modules(mappings: StackedMappings, m: int) -> tuple[nn.Sequential, nn.Linear]:
    """Explicit copies of level m's FFN0 (Linear, GELU, LayerNorm) and prediction layer."""
    d, din, k = mappings.d, mappings.in_dim, mappings.num_classes
    dtype = mappings.ffn0_weight.dtype
    ffn0 = nn.Sequential(nn.Linear(din, d), nn.GELU(), nn.LayerNorm(d, eps=1e-5)).to(dtype)
    theta = nn.Linear(d, k).to(dtype)
    linear, norm = ffn0[0], ffn0[2]
    assert isinstance(linear, nn.Linear) and isinstance(norm, nn.LayerNorm)
    with torch.no_grad():
        linear.weight.copy_(mappings.ffn0_weight[m])
        linear.bias.copy_(mappings.ffn0_bias[m])
        norm.weight.copy_(mappings.ln_weight[m])
        norm.bias.copy_(mappings.ln_bias[m])
        theta.weight.copy_(mappings.theta_weight[m])
        theta.bias.copy_(mappings.theta_bias[m])
    return ffn0, theta


def _coordinate(
    mods: list[tuple[nn.Sequential, nn.Linear]],
    f_of: Callable[[int, Tensor, Tensor, nn.Module], Tensor],
    x_b: Tensor,
    dW: Tensor,
    db: Tensor,
    survivor: int | None,
    delta_scale: float,
    inner_lr: float,
) -> Tensor:
    """theta~ = theta + s delta, then one SGD step of a copy of each FFN0: z^ [q, d].

    x_b [1, q, D_in]: the sample; ``survivor``: the level that keeps z_m (type two) or None.
    """
    z_hat = []
    for m, (ffn0, theta) in enumerate(mods):
        if m == survivor:
            with torch.no_grad():
                z_hat.append(ffn0(x_b[:, m])[0])
            continue
        tw = (theta.weight + delta_scale * dW).detach()
        tb = (theta.bias + delta_scale * db).detach()
        ffn_copy = copy.deepcopy(ffn0)
        opt = torch.optim.SGD(ffn_copy.parameters(), lr=inner_lr)
        opt.zero_grad()
        f_of(m, tw, tb, ffn_copy).backward()
        opt.step()
        with torch.no_grad():
            z_hat.append(ffn_copy(x_b[:, m])[0])
    return torch.stack(z_hat)


def reference_workspace(
    mappings: StackedMappings,
    x: torch.Tensor,
    y_t: torch.Tensor,
    loss: LevelLoss,
    delta_scale: float = 1.0,
    inner_lr: float = 1.0,
    update: str = "all",
    sample_weights: str = "pseudo",
    qp_method: str | None = None,
) -> ReferenceResult:
    """x [B, q, D_in], y_t [B, k] -> reference results, one sample at a time.

    ``qp_method`` is accepted and ignored: the reference always uses cvxpy.
    """
    B, q, _ = x.shape
    orders, lams, fs, dsq, zhats = [], [], [], [], []
    for b in range(B):
        mods = [level_modules(mappings, m) for m in range(q)]
        yb = y_t[b : b + 1]
        w = emotic_sample_weights(yb) if loss.multi_label and sample_weights == "pseudo" else None

        def f_of(
            m: int,
            theta_w: torch.Tensor,
            theta_b: torch.Tensor,
            ffn0: nn.Module,
            b: int = b,
            yb: torch.Tensor = yb,
            w: torch.Tensor | None = w,
        ) -> torch.Tensor:
            z = ffn0(x[b : b + 1, m])
            logits = z @ theta_w.T + theta_b
            return loss.per_sample(logits, yb, w)[0]

        # Step 1: f and G (flattened gradients w.r.t. each level's own theta)
        f = torch.zeros(q, dtype=x.dtype)
        rows = []
        for m, (ffn0, theta) in enumerate(mods):
            tw = theta.weight.detach().clone().requires_grad_(True)
            tb = theta.bias.detach().clone().requires_grad_(True)
            val = f_of(m, tw, tb, ffn0)
            gw, gb = torch.autograd.grad(val, [tw, tb])
            f[m] = val.detach()
            rows.append(torch.cat([gw.flatten(), gb.flatten()]))
        G = torch.stack(rows)  # [q, d*k + k]
        Z = list(range(q))
        delta = torch.zeros(G.shape[1], dtype=x.dtype)
        order, lam_rounds = [], []
        while len(Z) > 1:
            fZ = f[Z]
            n = Z[int(torch.argmax(fZ))]  # first maximal value on ties
            GZ = G[Z]
            K = (GZ @ GZ.T).numpy()
            lam = solve_simplex_qp_cvxpy(K, fZ.numpy())
            full = np.zeros(q)
            full[Z] = lam
            lam_rounds.append(full)
            delta = delta - GZ.T @ torch.from_numpy(lam).to(x.dtype)
            order.append(n)
            Z.remove(n)
        order.append(Z[0])
        # Coordination: theta~ = theta + s delta, one SGD step of a copy of FFN0.
        d, k = mappings.d, mappings.num_classes
        dW, db = delta[: d * k].view(k, d), delta[d * k :]
        survivor = order[-1] if update == "eliminated" else None
        z_hat = _coordinate(mods, f_of, x[b : b + 1], dW, db, survivor, delta_scale, inner_lr)
        orders.append(order)
        lams.append(np.stack(lam_rounds))
        fs.append(f.numpy())
        dsq.append(float(delta @ delta))
        zhats.append(z_hat.numpy())
    return ReferenceResult(orders, np.stack(lams), np.stack(fs), np.array(dsq), np.stack(zhats))

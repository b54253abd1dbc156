"""Batched QP over the probability simplex (docs/method.md section 4, step 3; supplement eq. 9).

    lambda* = argmin_{lambda >= 0, 1^T lambda = 1}  1/2 lambda^T K lambda - f^T lambda

for K [B, q, q] (symmetric positive semi-definite: a Gram matrix G G^T) and f [B, q].

Three interchangeable solvers, all differentiable with respect to K and f:

- ``closed_form``: exact for q <= 3. Every face of the simplex is a candidate: the
  stationary point of the objective restricted to the affine hull of the face (a
  reduced problem of size |face| - 1 <= 2, solved by an explicit 2x2 inverse) is kept if
  it lies inside the face; vertices are always feasible. The feasible candidate with the
  smallest objective is the minimiser (for a convex objective over a polytope the minimum
  is attained at the relative-interior stationary point of some face). Batched; no loops
  over samples, only over the <= 7 faces.
- ``qpth``: the batched primal-dual interior point QP layer of Amos & Kolter (qpth);
  runs on the GPU; K is regularised by ``qpth_ridge * I`` since qpth needs it definite.
- ``pgd``: accelerated projected gradient (FISTA) with a sort-based simplex projection,
  for any q; unrolled, so differentiable.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import Tensor

QPMethod = Literal["closed_form", "qpth", "pgd"]
QP_METHODS: tuple[str, ...] = ("closed_form", "qpth", "pgd")


def qp_objective(K: Tensor, f: Tensor, lam: Tensor) -> Tensor:
    """1/2 lam^T K lam - f^T lam.  K [B,q,q], f [B,q], lam [B,q] -> [B]."""
    return 0.5 * torch.einsum("bi,bij,bj->b", lam, K, lam) - (f * lam).sum(-1)


def _face_candidate(K: Tensor, f: Tensor, face: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Stationary point of the objective on the affine hull of one simplex face.

    Parametrise lam_face = v + P t with v = e_last and P = [I; -1^T] (so the entries sum
    to one), t in R^{s-1}; the reduced problem is min 1/2 t^T H t + r^T t with
    H = P^T K_FF P and r = P^T (K_FF v - f_F).

    Returns lam [B, q] (zeros off the face) and a mask [B] of the samples for which the
    point exists (reduced Hessian invertible) and lies in the face (all entries >= 0).
    """
    B, q = f.shape
    s = len(face)
    idx = torch.tensor(face, device=f.device)
    lam = f.new_zeros(B, q)
    if s == 1:
        lam[:, face[0]] = 1.0
        return lam, torch.ones(B, dtype=torch.bool, device=f.device)
    K_F = K.index_select(1, idx).index_select(2, idx)  # [B, s, s]
    f_F = f.index_select(1, idx)  # [B, s]
    P = torch.cat([torch.eye(s - 1, dtype=f.dtype, device=f.device), -f.new_ones(1, s - 1)], 0)
    H = P.T @ K_F @ P  # [B, s-1, s-1]
    r = torch.einsum("ij,bj->bi", P.T, K_F[:, :, -1] - f_F)  # [B, s-1]
    scale = H.diagonal(dim1=-2, dim2=-1).abs().sum(-1)  # [B] trace, for a relative test
    if s == 2:
        a = H[:, 0, 0]
        ok = a > 1e-12 * scale.clamp_min(1e-300) + 1e-300
        t = -r[:, 0] / torch.where(ok, a, torch.ones_like(a))
        t = t.unsqueeze(-1)  # [B, 1]
    else:  # s == 3: explicit inverse of the 2x2 reduced Hessian
        h00, h01, h11 = H[:, 0, 0], H[:, 0, 1], H[:, 1, 1]
        det = h00 * h11 - h01 * h01
        ok = det > 1e-12 * scale.square().clamp_min(1e-300) + 1e-300
        det_safe = torch.where(ok, det, torch.ones_like(det))
        t0 = -(h11 * r[:, 0] - h01 * r[:, 1]) / det_safe
        t1 = -(-h01 * r[:, 0] + h00 * r[:, 1]) / det_safe
        t = torch.stack([t0, t1], -1)  # [B, 2]
    v = f.new_zeros(s)
    v[-1] = 1.0  # the face's last vertex e_last
    lam_F = t @ P.T + v  # [B, s]
    ok = ok & (lam_F >= 0).all(-1) & torch.isfinite(lam_F).all(-1)
    lam = lam.index_copy(1, idx, lam_F)
    return lam, ok


def simplex_qp_closed_form(K: Tensor, f: Tensor) -> Tensor:
    """Exact batched solver for q <= 3 (enumerates the faces of the simplex)."""
    q = f.shape[-1]
    if q > 3:
        raise ValueError(f"closed_form supports q <= 3, got q = {q}; use method='pgd' or 'qpth'")
    cands, values = [], []
    inf = torch.full_like(f[:, 0], float("inf"))
    for s in range(q, 0, -1):  # larger faces first: they win ties (smoother gradients)
        for face in itertools.combinations(range(q), s):
            lam, ok = _face_candidate(K, f, face)
            cands.append(lam)
            values.append(torch.where(ok, qp_objective(K, f, lam), inf))
    V = torch.stack(values, -1)  # [B, n_faces]
    # Prefer the first face within a tiny tolerance of the best value (ties -> larger face).
    best = V.min(-1, keepdim=True).values
    tol = 1e-12 * (best.abs() + 1.0)
    first = (best + tol >= V).to(torch.int8).argmax(-1)  # [B]
    C = torch.stack(cands, 1)  # [B, n_faces, q]
    return C.gather(1, first.view(-1, 1, 1).expand(-1, 1, q)).squeeze(1)


def project_simplex(v: Tensor) -> Tensor:
    """Euclidean projection of each row of v [B, q] onto the probability simplex."""
    q = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = u.cumsum(-1) - 1.0
    k = torch.arange(1, q + 1, device=v.device, dtype=v.dtype)
    cond = u - css / k > 0
    rho = (cond.to(v.dtype) * k).argmax(-1, keepdim=True)  # last index where cond holds
    tau = css.gather(-1, rho) / (rho + 1).to(v.dtype)
    return (v - tau).clamp_min(0.0)


def simplex_qp_pgd(K: Tensor, f: Tensor, iters: int = 500) -> Tensor:
    """Accelerated projected gradient (FISTA) for any q, step 1/L with L = lambda_max(K).

    The step size is a constant of the iteration (detached); the iterates are unrolled so
    the result is differentiable w.r.t. K and f.
    """
    B, q = f.shape
    L = torch.linalg.eigvalsh(K.detach())[:, -1].clamp_min(1e-12).view(B, 1)
    lam = torch.full_like(f, 1.0 / q)
    y, t = lam, 1.0
    for _ in range(iters):
        grad = torch.einsum("bij,bj->bi", K, y) - f
        lam_next = project_simplex(y - grad / L)
        t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
        y = lam_next + ((t - 1.0) / t_next) * (lam_next - lam)
        lam, t = lam_next, t_next
    return lam


def simplex_qp_qpth(K: Tensor, f: Tensor, ridge: float = 1e-8) -> Tensor:
    """qpth's batched differentiable interior-point QP layer (the GPU backend)."""
    from qpth.qp import QPFunction

    B, q = f.shape
    eye = torch.eye(q, dtype=f.dtype, device=f.device)
    scale = K.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-6).view(B, 1, 1)
    Q = K + ridge * scale * eye  # qpth factorises Q: it must be definite
    G = -eye.expand(B, q, q)
    h = f.new_zeros(B, q)
    A = f.new_ones(B, 1, q)
    b = f.new_ones(B, 1)
    lam = QPFunction(verbose=-1, eps=1e-12, maxIter=50)(Q, -f, G, h, A, b)
    return lam.clamp_min(0.0) / lam.clamp_min(0.0).sum(-1, keepdim=True)


def simplex_qp(K: Tensor, f: Tensor, method: QPMethod | str = "closed_form") -> Tensor:
    """Solve the simplex-constrained dual QP (eq. 9) for a batch.

    Args:
        K: [B, q, q] Gram matrix G G^T of the level gradients.
        f: [B, q] level losses.
        method: ``closed_form`` (exact, q <= 3), ``qpth`` or ``pgd``.

    Returns:
        lambda [B, q], on the simplex, differentiable w.r.t. K and f.
    """
    if K.dim() != 3 or f.dim() != 2 or K.shape[:2] != f.shape or K.shape[1] != K.shape[2]:
        raise ValueError(f"expected K [B,q,q] and f [B,q], got {tuple(K.shape)}, {tuple(f.shape)}")
    if f.shape[1] == 1:
        return torch.ones_like(f)
    K = 0.5 * (K + K.transpose(1, 2))
    if method == "closed_form":
        return simplex_qp_closed_form(K, f)
    if method == "qpth":
        return simplex_qp_qpth(K, f)
    if method == "pgd":
        return simplex_qp_pgd(K, f)
    raise ValueError(f"unknown QP method {method!r}; choose one of {QP_METHODS}")

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

from cocoer.errors import check_choice
from cocoer.workspace.config import QP_METHODS

QPMethod = Literal["closed_form", "qpth", "pgd"]


def qp_objective(K: Tensor, f: Tensor, lam: Tensor) -> Tensor:
    """1/2 lam^T K lam - f^T lam.  K [B,q,q], f [B,q], lam [B,q] -> [B]."""
    return 0.5 * torch.einsum("bi,bij,bj->b", lam, K, lam) - (f * lam).sum(-1)


#: Tolerances of the closed form, in units of the dtype's machine epsilon (section 4.4):
#: a face's reduced Hessian counts as singular below ``SINGULAR_EPS * eps`` of the scale of
#: its K entries (a few times the rounding noise of the reduced Hessian), and feasible
#: candidates within ``TIE_EPS * eps`` of the best (normalised) value tie.
SINGULAR_EPS = 64.0
TIE_EPS = 4.0


def normalise_problem(K: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
    """(K / m, f / m) with m = max(max |K|, max |f|) per sample (1 where both are zero).

    lambda* is invariant to scaling K and f together, so the closed form solves the
    normalised problem, whose entries are at most 1 (docs/method.md section 4.4). m is a
    constant of the solve (detached): by that invariance d lambda / d m is zero, and
    d lambda / dK = (1/m) d lambda / dK' exactly.  K [B,q,q], f [B,q] -> same shapes.
    """
    m = torch.maximum(K.detach().abs().amax((-2, -1)), f.detach().abs().amax(-1))  # [B]
    m = torch.where(m > 0, m, torch.ones_like(m)).unsqueeze(-1)  # [B, 1]
    return K / m.unsqueeze(-1), f / m


def _reduced(K: Tensor, f: Tensor, face: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Reduced Hessian H [B, s-1, s-1] and linear term r [B, s-1] of a face (last vertex e_j):
    H_ab = K_ab - K_aj - K_jb + K_jj, r_a = K_aj - K_jj - (f_a - f_j), written entry by entry
    so that equal rows of K give bitwise equal entries (exact zeros for duplicated levels)."""
    *head, j = face
    Kj = K[:, :, j]  # [B, q]
    H = torch.stack(
        [
            torch.stack([(K[:, a, b] - Kj[:, a]) - (Kj[:, b] - Kj[:, j]) for b in head], -1)
            for a in head
        ],
        -2,
    )
    r = torch.stack([(Kj[:, a] - Kj[:, j]) - (f[:, a] - f[:, j]) for a in head], -1)
    return H, r


def _face_candidate(
    K: Tensor, f: Tensor, face: tuple[int, ...], tol: Tensor
) -> tuple[Tensor, Tensor]:
    """Stationary point of the objective on the affine hull of one simplex face.

    Parametrise lam_face = e_last + P t with P = [I; -1^T] (entries sum to one), t in
    R^{s-1}; the reduced problem is min 1/2 t^T H t + r^T t, stationary at
    t = -adj(H) r / det(H). The feasibility test needs no division: with det(H) > 0 the
    point lies in the face when n = -adj(H) r >= 0 and sum(n) <= det(H). Only feasible faces
    divide, by ``torch.where(ok, det, 1)``: a rejected face puts nothing infinite or NaN into
    the forward or the backward pass.

    Args:
        K: [B, q, q], f: [B, q] (normalised); face: sorted level indices;
        tol: [B] singularity threshold (``SINGULAR_EPS * eps * max |K|``).
    Returns:
        lam [B, q] (zeros off the face; e_last where rejected) and ok [B] (the stationary
        point exists, is isolated and lies in the face).
    """
    B, q = f.shape
    onehot = (torch.arange(q, device=f.device) == face[-1]).to(f.dtype)  # e_last [q]
    lam = onehot.expand(B, q)
    if len(face) == 1:
        return lam, torch.ones(B, dtype=torch.bool, device=f.device)
    H, r = _reduced(K, f, face)
    if len(face) == 2:
        det, n = H[:, 0, 0], -r  # [B], [B, 1]
        ok = det > tol
    else:  # 2 x 2: adj(H) = [[h11, -h01], [-h01, h00]]
        h00, h01, h11 = H[:, 0, 0], H[:, 0, 1], H[:, 1, 1]
        det = h00 * h11 - h01 * h01
        n = -torch.stack([h11 * r[:, 0] - h01 * r[:, 1], h00 * r[:, 1] - h01 * r[:, 0]], -1)
        ok = (h00 > 0) & (det > tol * (h00 + h11))  # relative to the noise of det
    ok = ok & (n >= 0).all(-1) & (n.sum(-1) <= det)
    t = torch.where(ok.unsqueeze(-1), n, torch.zeros_like(n)) / torch.where(
        ok, det, torch.ones_like(det)
    ).unsqueeze(-1)  # [B, s-1], in the face where ok, 0 elsewhere
    head = torch.tensor(face[:-1], device=f.device)
    lam_F = torch.zeros_like(lam).index_copy(1, head, t)  # the t part on the first s-1 levels
    lam = lam_F + onehot * (1.0 - t.sum(-1, keepdim=True))
    return lam, ok


def simplex_qp_closed_form(K: Tensor, f: Tensor) -> Tensor:
    """Exact batched solver for q <= 3 (enumerates the faces of the simplex, section 4.4).

    Scale-invariant: it solves the problem normalised by :func:`normalise_problem`, and its
    singularity and tie tests are relative to the dtype's epsilon and the problem's scale.
    Every candidate kept is a feasible point whose objective is evaluated, so the answer's
    objective is within a few eps (relative to the problem's scale) of the minimum.
    """
    q = f.shape[-1]
    if q > 3:
        raise ValueError(f"closed_form supports q <= 3, got q = {q}; use method='pgd' or 'qpth'")
    K, f = normalise_problem(K, f)
    eps = torch.finfo(f.dtype).eps
    tol = SINGULAR_EPS * eps * K.detach().abs().amax((-2, -1))  # [B]
    cands, values = [], []
    inf = torch.full_like(f[:, 0], float("inf"))
    for s in range(q, 0, -1):  # larger faces first: they win ties (smoother gradients)
        for face in itertools.combinations(range(q), s):
            lam, ok = _face_candidate(K, f, face, tol)
            cands.append(lam)
            values.append(torch.where(ok, qp_objective(K, f, lam).detach(), inf))
    V = torch.stack(values, -1)  # [B, n_faces], normalised objective (|V| <= 1.5)
    # The first face (larger faces first) within TIE_EPS eps of the best value.
    best = V.min(-1, keepdim=True).values
    first = (best + TIE_EPS * eps >= V).to(torch.int8).argmax(-1)  # [B]
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
    L = torch.linalg.eigvalsh(K.detach())[:, -1]
    L = L.clamp_min(torch.finfo(f.dtype).eps * K.detach().abs().amax((-2, -1))).view(B, 1)
    L = torch.where(L > 0, L, torch.ones_like(L))  # K = 0: any step
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
    scale = K.diagonal(dim1=-2, dim2=-1).mean(-1).view(B, 1, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # relative ridge
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
    check_choice("QP method", method, QP_METHODS)
    if f.shape[1] == 1:
        return torch.ones_like(f)
    K, f = normalise_problem(0.5 * (K + K.transpose(1, 2)), f)  # scale-free for every solver
    if method == "closed_form":
        return simplex_qp_closed_form(K, f)
    if method == "qpth":
        return simplex_qp_qpth(K, f)
    return simplex_qp_pgd(K, f)

"""The batched workspace against the per-sample reference, and the QP solvers against cvxpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cocoer.models.heads import LevelMappings
from cocoer.workspace import QP_METHODS, Workspace, qp_objective, simplex_qp
from cocoer.workspace.level_losses import LOSS_KINDS, LevelLoss
from cocoer.workspace.reference import reference_workspace, solve_simplex_qp_cvxpy
from tests.support.level_mappings import as_generic

#: the reference comparisons run in float64 (the fixture restores the default afterwards)
pytestmark = pytest.mark.usefixtures("float64")


def random_psd(B: int, q: int, rank: int, gen: torch.Generator) -> torch.Tensor:
    A = torch.randn(B, q, rank, generator=gen)
    return A @ A.transpose(1, 2)


@pytest.mark.parametrize("q", [2, 3])
@pytest.mark.parametrize("method", QP_METHODS)
def test_simplex_qp_matches_cvxpy(q: int, method: str) -> None:
    gen = torch.Generator().manual_seed(q)
    B = 40
    K = random_psd(B, q, rank=q + 2, gen=gen)
    f = torch.randn(B, q, generator=gen) * 2
    lam = simplex_qp(K, f, method)
    assert torch.allclose(lam.sum(-1), torch.ones(B), atol=1e-8)
    assert (lam >= -1e-10).all()
    ref = np.stack([solve_simplex_qp_cvxpy(K[b].numpy(), f[b].numpy()) for b in range(B)])
    tol = {"closed_form": 1e-6, "qpth": 1e-5, "pgd": 1e-4}[method]
    np.testing.assert_allclose(lam.numpy(), ref, atol=tol)


def test_closed_form_degenerate_cases_reach_the_optimal_value() -> None:
    """K = 0, rank-1 K, ties in f: the minimiser may not be unique; its value is."""
    gen = torch.Generator().manual_seed(0)
    Ks = [torch.zeros(3, 3), random_psd(1, 3, 1, gen)[0], torch.ones(3, 3)]
    fs = [
        torch.tensor([1.0, 1.0, 0.0]),
        torch.tensor([0.5, 0.5, 0.5]),
        torch.randn(3, generator=gen),
    ]
    for K in Ks:
        for f in fs:
            lam = simplex_qp(K[None], f[None], "closed_form")
            ref = solve_simplex_qp_cvxpy(K.numpy(), f.numpy())
            ours = float(qp_objective(K[None], f[None], lam))
            best = float(0.5 * ref @ K.numpy() @ ref - f.numpy() @ ref)
            assert ours <= best + 1e-7, (K, f, lam, ref)
            assert abs(float(lam.sum()) - 1) < 1e-12 and (lam >= 0).all()


def test_closed_form_is_differentiable() -> None:
    gen = torch.Generator().manual_seed(3)
    K = random_psd(4, 3, 5, gen).requires_grad_(True)
    f = torch.randn(4, 3, generator=gen).requires_grad_(True)
    # interior and edge solutions both occur in this batch; gradients by finite differences
    assert torch.autograd.gradcheck(lambda K, f: simplex_qp(K, f, "closed_form"), (K, f))


def test_simplex_qp_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="expected K"):
        simplex_qp(torch.zeros(2, 3, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="unknown QP method"):
        simplex_qp(torch.eye(3)[None], torch.zeros(1, 3), "simplex")
    with pytest.raises(ValueError, match="q <= 3"):
        simplex_qp(torch.eye(4)[None], torch.zeros(1, 4), "closed_form")


def make_case(seed: int, kind: str, B: int = 6, din: int = 12, d: int = 5, k: int = 4):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    maps = LevelMappings(3, din, d, k)
    with torch.no_grad():
        maps.ln_weight.copy_(1 + 0.3 * torch.randn(3, d, generator=gen))
        maps.ln_bias.copy_(0.3 * torch.randn(3, d, generator=gen))
    x = torch.randn(B, 3, din, generator=gen)
    if kind == "ce":
        y_t = torch.nn.functional.one_hot(torch.randint(0, k, (B,), generator=gen), k).double()
    else:
        y_t = (torch.rand(B, k, generator=gen) > 0.5).double()
    return maps, x, y_t


def compare(maps, x, y_t, loss: LevelLoss, check_lambda: bool = True, **ws_kwargs) -> None:
    ws = Workspace(loss, **ws_kwargs)
    z, logits, cache = maps(x)
    out = ws(maps, z, logits, cache, y_t)
    ref = reference_workspace(maps, x, y_t, loss, **ws_kwargs)
    np.testing.assert_allclose(out.f.detach().numpy(), ref.f, atol=1e-10)
    assert out.order.tolist() == ref.order
    np.testing.assert_allclose(
        out.delta_sq.detach().numpy(), ref.delta_norm_sq, rtol=1e-5, atol=1e-8
    )
    np.testing.assert_allclose(out.z_hat.detach().numpy(), ref.z_hat, atol=1e-5)
    if check_lambda:
        np.testing.assert_allclose(out.lam.detach().numpy(), ref.lam, atol=1e-5)


@pytest.mark.parametrize("kind", LOSS_KINDS)
@pytest.mark.parametrize("method", QP_METHODS)
def test_workspace_matches_reference(kind: str, method: str) -> None:
    maps, x, y_t = make_case(seed=11, kind=kind)
    compare(maps, x, y_t, LevelLoss(kind), qp_method=method, delta_scale=0.7, inner_lr=0.5)


@pytest.mark.parametrize("update", ["all", "eliminated"])
@pytest.mark.parametrize("weights", ["pseudo", "uniform"])
def test_workspace_variants_match_reference(update: str, weights: str) -> None:
    maps, x, y_t = make_case(seed=5, kind="bce")
    compare(maps, x, y_t, LevelLoss("bce"), update=update, sample_weights=weights)


def test_workspace_ties_between_levels() -> None:
    """Context and body identical: equal losses; the tie goes to the first level (c)."""
    maps, x, y_t = make_case(seed=2, kind="bce")
    with torch.no_grad():
        for p in maps.parameters():
            p[1].copy_(p[0])
    x = x.clone()
    x[:, 1] = x[:, 0]
    z, logits, cache = maps(x)
    f = Workspace(LevelLoss("bce"))(maps, z, logits, cache, y_t).f
    assert torch.equal(f[:, 0], f[:, 1])
    compare(maps, x, y_t, LevelLoss("bce"), check_lambda=False)


def test_workspace_zero_gradients_and_equal_losses() -> None:
    """Saturated logits with y_t = 1: g = -sigma(-60) / ln 2.2 (EMOTIC weight; kept, not
    rounded to 0), f equal for all levels, delta = 0 to float32's range, z^ = z."""
    maps, x, _ = make_case(seed=4, kind="bce")
    with torch.no_grad():
        maps.theta_weight.zero_()
        maps.theta_bias.fill_(60.0)
    y_t = torch.ones(x.shape[0], maps.num_classes)
    z, logits, cache = maps(x)
    out = Workspace(LevelLoss("bce"))(maps, z, logits, cache, y_t)
    g_exact = torch.full_like(out.g, -math.exp(-60.0) / math.log(2.2))
    torch.testing.assert_close(out.g, g_exact, rtol=1e-5, atol=0)
    assert out.delta_sq.abs().max() < 1e-40
    assert out.order.tolist() == [[0, 1, 2]] * x.shape[0]
    torch.testing.assert_close(out.z_hat, z)
    compare(maps, x, y_t, LevelLoss("bce"), check_lambda=False)


def test_workspace_is_differentiable_end_to_end() -> None:
    maps, x, y_t = make_case(seed=8, kind="bce", B=2, din=6, d=3, k=3)
    x = x.requires_grad_(True)

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, logits, cache = maps(x)
        out = Workspace(LevelLoss("bce"))(maps, z, logits, cache, y_t)
        return out.z_hat, out.delta_sq

    assert torch.autograd.gradcheck(run, (x,), atol=1e-6)


def test_generic_mapping_matches_the_closed_form_inner_step() -> None:
    """The torch.func per-sample inner step of an `fc` FFN0 equals the closed form."""
    maps, x, y_t = make_case(seed=9, kind="bce")
    generic = as_generic(maps)
    ws = Workspace(LevelLoss("bce"), inner_lr=0.3)
    a = ws(maps, *maps(x), y_t)
    b = ws(generic, *generic(x), y_t)
    torch.testing.assert_close(b.z_hat, a.z_hat, atol=1e-9, rtol=1e-7)
    # and it stays differentiable (training through the refined features)
    x = x.clone().requires_grad_(True)
    ws(generic, *generic(x), y_t).z_hat.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_mlp_mapping_runs_in_the_workspace() -> None:
    from cocoer.models.heads import GenericLevelMappings

    _, x, y_t = make_case(seed=10, kind="bce")
    mlp = GenericLevelMappings(3, x.shape[-1], 5, 4, "mlp")
    out = Workspace(LevelLoss("bce"))(mlp, *mlp(x), y_t)
    z, _, _ = mlp(x)
    assert out.z_hat.shape == z.shape and torch.isfinite(out.z_hat).all()
    assert not torch.allclose(out.z_hat, z)  # the inner step moved the features


def test_workspace_runs_in_float32_under_bf16_autocast() -> None:
    """GPU runs use bf16-mixed; the workspace upcasts, so its result matches float32."""
    maps, x, y_t = make_case(seed=12, kind="bce")
    maps, x, y_t = maps.float(), x.float(), y_t.float()
    ws = Workspace(LevelLoss("bce"))
    z, logits, cache = maps(x)
    ref = ws(maps, z, logits, cache, y_t)
    from cocoer.models.heads import FFN0Cache

    bf = torch.bfloat16  # what autocast hands the workspace on a GPU
    c16 = FFN0Cache(
        x=cache.x.to(bf), pre=cache.pre.to(bf), h_hat=cache.h_hat.to(bf), sigma=cache.sigma.to(bf)
    )
    with torch.autocast("cpu", dtype=bf):
        out = ws(maps, z.to(bf), logits.to(bf), c16, y_t.to(bf))
    assert out.z_hat.dtype == torch.float32 and out.mu.dtype == torch.float32
    assert torch.allclose(out.mu.sum(-1), torch.full_like(out.mu[:, 0], 2.0), atol=1e-5)
    # bf16 inputs carry ~3 significant digits; the solution follows them closely
    torch.testing.assert_close(out.mu, ref.mu, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("method", ["qpth", "pgd"])
def test_every_qp_method_is_differentiable_like_the_closed_form(method: str) -> None:
    """d(lambda . c)/d(K, f) of qpth (implicit differentiation) and of the unrolled PGD agree
    with the closed form's on well-conditioned problems (interior and edge solutions)."""
    gen = torch.Generator().manual_seed(21)
    K0 = random_psd(6, 3, 5, gen) + 0.5 * torch.eye(3)
    f0 = torch.randn(6, 3, generator=gen)
    c = torch.randn(6, 3, generator=gen)

    def grads(m: str) -> tuple[torch.Tensor, torch.Tensor]:
        K, f = K0.clone().requires_grad_(True), f0.clone().requires_grad_(True)
        (simplex_qp(K, f, m) * c).sum().backward()
        return K.grad, f.grad

    gK, gf = grads("closed_form")
    hK, hf = grads(method)
    assert gf.abs().sum() > 0
    torch.testing.assert_close(hf, gf, atol=2e-3, rtol=1e-2)
    torch.testing.assert_close(hK, gK, atol=2e-3, rtol=1e-2)

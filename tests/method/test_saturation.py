"""The workspace stays finite when levels saturate (docs/method.md section 4.4).

Confident, correct levels are what long runs produce: logit margins from 0 to 200 on one,
two or three levels, for every loss kind, in float32, float64 and under CPU bf16 autocast,
forward and backward through the whole :class:`~cocoer.workspace.Workspace`. The counts of
non-finite values are printed (run with ``-s``) and must be zero; the forward values are
also checked against the unsaturated float64 answer's structure where it is known (the
multipliers lie on the simplex in every round).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from cocoer.models.heads import LevelMappings
from cocoer.workspace import Workspace
from cocoer.workspace.level_losses import LOSS_KINDS, LevelLoss

MARGINS = (0, 5, 20, 40, 45, 50, 60, 90, 120, 200)
LEVEL_SETS = ((0,), (0, 1), (0, 1, 2))
B, D_IN, D, K = 4, 12, 5, 4


def _case(kind: str, dtype: torch.dtype) -> tuple[LevelMappings, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    maps = LevelMappings(3, D_IN, D, K).to(dtype)
    x = torch.randn(B, 3, D_IN, generator=gen, dtype=dtype)
    if kind == "ce":
        y_t = torch.nn.functional.one_hot(torch.arange(B) % K, K).to(dtype)
    else:
        y_t = (torch.rand(B, K, generator=gen) > 0.5).to(dtype)
    return maps, x, y_t


def _saturated_step(
    kind: str, dtype: torch.dtype, margin: float, levels: tuple[int, ...], autocast: bool = False
) -> tuple[int, int, torch.Tensor]:
    """One forward and backward with ``levels`` confident and correct by ``margin``: the
    logits of those levels are margin * (2 y_t - 1) (plus the mapping's own logits).
    Returns (non-finite values in the outputs, non-finite gradient entries, mu)."""
    maps, x, y_t = _case(kind, dtype)
    x.requires_grad_(True)
    mask = torch.zeros(1, 3, 1, dtype=dtype)
    mask[0, list(levels)] = 1.0
    margin_t = torch.tensor(float(margin), dtype=dtype, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        z, logits, cache = maps(x)
        logits = logits + margin_t * mask * (2.0 * y_t.unsqueeze(1) - 1.0)
        out = Workspace(LevelLoss(kind), delta_scale=0.7, inner_lr=0.5)(maps, z, logits, cache, y_t)
        loss = out.z_hat.square().sum() + out.delta_sq.sum() + (out.mu * out.f).sum()
    loss.backward()
    tensors = [out.f, out.g, out.K, out.mu, out.delta_sq, out.z_hat]
    bad_out = sum(int((~torch.isfinite(t.detach())).sum()) for t in tensors)
    grads = [x.grad, margin_t.grad, *(p.grad for p in maps.parameters())]
    bad_grad = sum(int((~torch.isfinite(g)).sum()) for g in grads if g is not None)
    return bad_out, bad_grad, out.mu.detach()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_saturated_levels_stay_finite(dtype: torch.dtype) -> None:
    runs = bad_out = bad_grad = 0
    for kind, levels, margin in itertools.product(LOSS_KINDS, LEVEL_SETS, MARGINS):
        o, g, mu = _saturated_step(kind, dtype, margin, levels)
        runs, bad_out, bad_grad = runs + 1, bad_out + o, bad_grad + g
        # two rounds of multipliers on the simplex: mu >= 0 sums to q - 1 = 2
        assert (mu >= 0).all() and torch.allclose(mu.sum(-1), torch.full_like(mu[:, 0], 2.0))
    print(
        f"\nsaturation grid {dtype}: {runs} runs (margins {MARGINS[0]}..{MARGINS[-1]}, "
        f"1-3 levels, {'/'.join(LOSS_KINDS)}): {bad_out} non-finite outputs, "
        f"{bad_grad} non-finite gradients"
    )
    assert bad_out == 0 and bad_grad == 0


def test_saturated_levels_stay_finite_under_bf16_autocast() -> None:
    runs = bad_out = bad_grad = 0
    for kind, levels, margin in itertools.product(LOSS_KINDS, LEVEL_SETS, MARGINS):
        o, g, _ = _saturated_step(kind, torch.float32, margin, levels, autocast=True)
        runs, bad_out, bad_grad = runs + 1, bad_out + o, bad_grad + g
    print(
        f"\nsaturation grid bf16 autocast: {runs} runs: {bad_out} non-finite outputs, "
        f"{bad_grad} non-finite gradients"
    )
    assert bad_out == 0 and bad_grad == 0

"""Gradients through the workspace with the ``fc`` / ``mlp`` level mappings
(:class:`~cocoer.models.heads.GenericLevelMappings`, a per-sample ``torch.func`` inner step),
with the inner step on every parameter (``inner_params=all``) and on the Linear layers only.

Oracles (float64): the closed-form path (:class:`~cocoer.models.heads.LevelMappings`, whose
FFN0 is the ``fc`` mapping) for dL/dx and dL/dtheta of every parameter, and central finite
differences of the whole loss along random directions in x and in the parameters.
"""

from __future__ import annotations

import pytest
import torch

from cocoer.models.heads import GenericLevelMappings, LevelMappings
from cocoer.workspace import Workspace
from cocoer.workspace.level_losses import LevelLoss
from tests.support.level_mappings import as_generic

B, D_IN, D, K = 4, 8, 5, 4


pytestmark = pytest.mark.usefixtures("float64")


def _case(seed: int) -> tuple[LevelMappings, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    maps = LevelMappings(3, D_IN, D, K)
    with torch.no_grad():  # non-trivial LayerNorm parameters, so their step matters
        maps.ln_weight.copy_(1 + 0.3 * torch.randn(3, D, generator=gen))
        maps.ln_bias.copy_(0.3 * torch.randn(3, D, generator=gen))
    x = torch.randn(B, 3, D_IN, generator=gen)
    y_t = (torch.rand(B, K, generator=gen) > 0.5).double()
    return maps, x, y_t


def _loss(
    mappings: torch.nn.Module, x: torch.Tensor, y_t: torch.Tensor, params: str
) -> torch.Tensor:
    """A scalar of everything the workspace returns that carries gradient."""
    ws = Workspace(LevelLoss("bce"), inner_lr=0.3, delta_scale=0.7, inner_params=params)
    out = ws(mappings, *mappings(x), y_t)
    w = torch.linspace(-1.0, 1.0, out.z_hat.numel()).view_as(out.z_hat)
    return (out.z_hat * w).sum() + out.delta_sq.sum()


def _grads(mappings: torch.nn.Module, x: torch.Tensor, y_t: torch.Tensor, params: str):
    x = x.clone().requires_grad_(True)
    mappings.zero_grad()
    _loss(mappings, x, y_t, params).backward()
    return x.grad, {n: p.grad.clone() for n, p in mappings.named_parameters()}


def _closed_form_names(
    maps: LevelMappings, generic: GenericLevelMappings
) -> dict[str, tuple[str, int]]:
    """generic parameter name -> (closed-form parameter name, level index or -1 for all)."""
    names = {"theta_weight": ("theta_weight", -1), "theta_bias": ("theta_bias", -1)}
    for m in range(3):
        names.update(
            {
                f"ffn0.{m}.0.weight": ("ffn0_weight", m),
                f"ffn0.{m}.0.bias": ("ffn0_bias", m),
                f"ffn0.{m}.2.weight": ("ln_weight", m),
                f"ffn0.{m}.2.bias": ("ln_bias", m),
            }
        )
    return names


@pytest.mark.parametrize("params", ["all", "linear"])
def test_fc_mapping_gradients_equal_the_closed_form(params: str) -> None:
    maps, x, y_t = _case(seed=9)
    generic = as_generic(maps)
    gx, gp = _grads(maps, x, y_t, params)
    hx, hp = _grads(generic, x, y_t, params)
    assert gx.abs().max() > 1e-3
    torch.testing.assert_close(hx, gx, atol=1e-6, rtol=0)
    for name, (ref, m) in _closed_form_names(maps, generic).items():
        want = gp[ref] if m < 0 else gp[ref][m]
        torch.testing.assert_close(hp[name], want, atol=1e-6, rtol=0, msg=name)


def _directional_fd(fn, h: float = 1e-6) -> float:
    """Central difference of fn(t) at t = 0."""
    return float((fn(h) - fn(-h)) / (2 * h))


def _moved(mappings: torch.nn.Module, p: torch.Tensor, v: torch.Tensor, x, y_t, params: str):
    """t -> the loss with parameter p moved to p + t v (p restored afterwards)."""
    base = p.detach().clone()

    def fn(t: float) -> torch.Tensor:
        with torch.no_grad():
            p.copy_(base + t * v)
        value = _loss(mappings, x, y_t, params).detach()
        with torch.no_grad():
            p.copy_(base)
        return value

    return fn


@pytest.mark.parametrize("kind", ["fc", "mlp"])
@pytest.mark.parametrize("params", ["all", "linear"])
def test_mapping_gradients_equal_central_differences(kind: str, params: str) -> None:
    """Directional derivatives along a random direction in x and in each parameter tensor,
    against central differences, to 1e-6 (relative where larger than 1)."""
    _, x, y_t = _case(seed=4)
    torch.manual_seed(4)
    mappings = GenericLevelMappings(3, D_IN, D, K, kind)
    with torch.no_grad():
        for module in mappings.ffn0:
            module[-1].weight.add_(0.3 * torch.randn(D))
            module[-1].bias.add_(0.3 * torch.randn(D))
    gx, gp = _grads(mappings, x, y_t, params)
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(x.shape, generator=gen)
    checked = {
        "x": (
            float((gx * v).sum()),
            _directional_fd(lambda t: _loss(mappings, x + t * v, y_t, params).detach()),
        )
    }
    for name, p in mappings.named_parameters():
        v = torch.randn(p.shape, generator=gen)
        checked[name] = (
            float((gp[name] * v).sum()),
            _directional_fd(_moved(mappings, p, v, x, y_t, params)),
        )
    for name, (analytic, fd) in checked.items():
        assert abs(analytic - fd) <= 1e-6 * max(1.0, abs(fd)), (name, analytic, fd)

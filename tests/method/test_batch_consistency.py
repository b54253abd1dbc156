"""A sample's outputs do not depend on its batch or on the runtime (issue 21).

The workspace's coordination step multiplies the level-loss gradients g~_m = dL/dl~_m by
(|x|^2 + 1) |z|^2-sized factors; written as ``sigmoid(l) - y`` a confident logit's g~ kept
two significant digits in float32, so 1e-7 rounding differences between kernels (batch
size, PyTorch against ONNX Runtime) became 1e-3 in ``logits_G`` (docs/method.md section 4,
"Rounding"). Oracles: float64 for the gradients and the workspace; the sample alone for
the batch.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from cocoer.export.onnx import OUTPUTS, export_net
from cocoer.models.heads import LevelMappings
from cocoer.workspace import Workspace
from cocoer.workspace.level_losses import LOSS_KINDS, LevelLoss
from tests.support.onnx_parity import run_ort
from tests.support.tiny_models import TINY_HFE, random_batch, tiny_net


@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_level_loss_gradient_keeps_relative_precision(kind: str) -> None:
    """float32 g against float64 g, elementwise relative 1e-5, for logits up to +-30
    (the naive sigmoid(l) - 1 at l = 12 is off by about 1e-2 relative)."""
    gen = torch.Generator().manual_seed(0)
    l64 = 30.0 * (2.0 * torch.rand(64, 7, generator=gen, dtype=torch.float64) - 1.0)
    if kind == "ce":
        y64 = torch.nn.functional.one_hot(l64.argmax(-1), 7).double()  # confident and right
    else:
        y64 = (l64 > 0).double()
    loss = LevelLoss(kind)
    g64 = loss.grad(l64, y64)
    g32 = loss.grad(l64.float(), y64.float()).double()
    rel = ((g32 - g64).abs() / g64.abs().clamp_min(1e-300)).max().item()
    print(f"{kind}: largest relative error of the float32 gradient {rel:.1e}")
    assert rel < 1e-5
    l_ad = l64[:4].clone().requires_grad_(True)  # the closed form is the autograd gradient
    (grad,) = torch.autograd.grad(loss.per_sample(l_ad, y64[:4]).sum(), l_ad)
    torch.testing.assert_close(loss.grad(l64[:4], y64[:4]), grad, rtol=1e-10, atol=1e-12)


def test_workspace_float32_matches_float64_at_paper_widths() -> None:
    """The refined z^ of the paper's widths (D_in = 4096, |x|^2 ~ 1.5e5, d = 256, k = 26)
    in float32 within 1e-5 of float64 (before the fix: 7e-3)."""
    torch.manual_seed(0)
    maps = LevelMappings(3, 4096, 256, 26)
    x = 6.0 * torch.randn(16, 3, 4096)
    y = (torch.rand(16, 26) < 0.3).float()
    ws = Workspace(LevelLoss("bce"))

    def z_hat(m: LevelMappings, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z, l, cache = m(x)
        return ws(m, z, l, cache, y).z_hat

    with torch.no_grad():
        got = z_hat(maps, x, y).double()
        want = z_hat(copy.deepcopy(maps).double(), x.double(), y.double())
    err = (got - want).abs().max().item()
    print(f"|z^ float32 - float64| = {err:.1e} (scale {want.abs().max().item():.1f})")
    assert err < 1e-5


def reduced_net() -> torch.nn.Module:
    """Tiny backbones with the paper's d = 256 and EMOTIC's k = 26."""
    torch.manual_seed(0)
    hfe = dict(TINY_HFE, d_h=64)
    return tiny_net(num_classes=26, d=256, hfe=hfe).eval()


@pytest.mark.slow
def test_sample_alone_equals_sample_in_batch_torch_and_ort(tmp_path: Path) -> None:
    """Each of 16 samples alone, in batches of 4 and of 16, in PyTorch and ONNX Runtime:
    every float output within 1e-5 (|delta|^2: relative 1e-6), the exclusion order equal."""
    ort = pytest.importorskip("onnxruntime")
    net = reduced_net()
    path = tmp_path / "m.onnx"
    export_net(net, torch.full((26,), 0.5), 32, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = random_batch(16, 32, seed=3)
    runs: dict[str, dict[str, np.ndarray]] = {}
    for n in (1, 4, 16):
        parts = [{k: v[i : i + n] for k, v in batch.items()} for i in range(0, 16, n)]
        with torch.no_grad():
            outs = [{k: net(p)[k].numpy() for k in OUTPUTS} for p in parts]
        runs[f"torch_B{n}"] = {k: np.concatenate([o[k] for o in outs]) for k in OUTPUTS}
        outs = [run_ort(sess, p) for p in parts]
        runs[f"ort_B{n}"] = {k: np.concatenate([o[k] for o in outs]) for k in OUTPUTS}
    ref = runs["torch_B1"]
    for name, got in runs.items():
        worst = float(np.abs(got["logits_G"] - ref["logits_G"]).max())
        print(f"{name} against torch_B1: largest |logits_G| difference {worst:.1e}")
        np.testing.assert_array_equal(got["order"], ref["order"], err_msg=name)
        for k in OUTPUTS:  # |delta|^2 ~ 4e3: relative (float32's ulp there is 2.4e-4)
            rtol, atol = (1e-6, 0.0) if k == "delta_sq" else (0.0, 1e-5)
            np.testing.assert_allclose(got[k], ref[k], rtol=rtol, atol=atol, err_msg=f"{name} {k}")


@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_exported_level_loss_gradient_keeps_relative_precision(kind: str, tmp_path: Path) -> None:
    """The same gradient through ONNX Runtime (whose fused Sigmoid is exact only in
    absolute terms) against float64, elementwise relative 1e-5, logits up to +-30."""
    ort = pytest.importorskip("onnxruntime")

    class Grad(torch.nn.Module):
        def forward(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return LevelLoss(kind).grad(l, y)

    gen = torch.Generator().manual_seed(1)
    l64 = 30.0 * (2.0 * torch.rand(64, 7, generator=gen, dtype=torch.float64) - 1.0)
    y64 = (
        torch.nn.functional.one_hot(l64.argmax(-1), 7).double()
        if kind == "ce"
        else (l64 > 0).double()
    )
    path = tmp_path / "g.onnx"
    with torch.no_grad():
        torch.onnx.export(Grad(), (l64.float(), y64.float()), str(path), dynamo=True).save(
            str(path)
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(
        None,
        {i.name: t.float().numpy() for i, t in zip(sess.get_inputs(), (l64, y64), strict=True)},
    )
    want = LevelLoss(kind).grad(l64, y64).numpy()
    rel = float((np.abs(got - want) / np.maximum(np.abs(want), 1e-300)).max())
    print(f"{kind}: ONNX Runtime gradient, largest relative error {rel:.1e}")
    assert rel < 1e-5

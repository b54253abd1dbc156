"""GPU paths (CUDA, bf16, qpth on the GPU). Deselected by `make test` (marker `gpu`) and
skipped without a CUDA device; run with `pytest -m gpu` on a GPU machine."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cocoer.models.heads import LevelMappings
from cocoer.workspace import QP_METHODS, Workspace, simplex_qp
from cocoer.workspace.level_losses import LevelLoss
from tests.support.helpers import TINY_OVERRIDES, compose_config, requires_cuda

pytestmark = [pytest.mark.gpu, requires_cuda]


@pytest.mark.parametrize("method", QP_METHODS)
def test_qp_on_cuda_matches_cpu(method: str) -> None:
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(256, 3, 5, generator=gen, dtype=torch.float64)
    K, f = A @ A.transpose(1, 2), torch.randn(256, 3, generator=gen, dtype=torch.float64)
    cpu = simplex_qp(K, f, "closed_form")
    gpu = simplex_qp(K.cuda(), f.cuda(), method).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4 if method == "pgd" else 1e-6, rtol=0)


def test_workspace_on_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    maps = LevelMappings(3, 64, 16, 26)
    x, y_t = torch.randn(32, 3, 64), (torch.rand(32, 26) > 0.7).float()
    ws = Workspace(LevelLoss("bce"))
    ref = ws(maps, *maps(x), y_t)
    maps_c = maps.cuda()
    out = ws(maps_c, *maps_c(x.cuda()), y_t.cuda())
    torch.testing.assert_close(out.z_hat.cpu(), ref.z_hat, atol=1e-4, rtol=1e-4)
    assert out.order.cpu().tolist() == ref.order.tolist()


def test_bf16_training_on_gpu(tmp_path: Path, tiny_emotic_root: Path) -> None:
    from cocoer.train import train

    over = [*TINY_OVERRIDES, "trainer=gpu", "trainer.precision=bf16-mixed"]
    metrics = train(compose_config("train", tmp_path, tiny_emotic_root, over))
    assert 0.0 <= metrics["test/mAP"] <= 100.0

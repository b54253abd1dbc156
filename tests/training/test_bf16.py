"""bf16 mixed precision: the tiny model's training step under bf16 autocast (what
``trainer.precision=bf16-mixed`` runs) against the same step in float32, on the CPU in
``make test`` and on CUDA in the ``gpu`` twin.

Tolerance: bf16 keeps 8 significant bits (relative rounding 2^-8 = 0.4%) in the matmuls of the
backbones and heads; the workspace runs in float32 (float64 for its QP). Loss and gradient
norm agree within 2% relative; the printed figures show the actual gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import DictConfig

from tests.support.helpers import TINY_OVERRIDES, compose_config, requires_cuda

TOLERANCE = 0.02


def _step(model: torch.nn.Module, batch: dict, device: str, bf16: bool) -> tuple[float, float]:
    """(loss, global gradient norm) of one training step, float32 or under bf16 autocast."""
    model.zero_grad()
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        loss = model.training_step(batch, 0)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    return float(loss), float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))


def _compare(tmp_path: Path, root: Path, device: str) -> None:
    cfg = compose_config("train", tmp_path, root, TINY_OVERRIDES)
    torch.manual_seed(0)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    model = hydra.utils.instantiate(cfg.model).to(device).train()
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    loss32, norm32 = _step(model, batch, device, bf16=False)
    loss16, norm16 = _step(model, batch, device, bf16=True)
    gap_loss, gap_norm = abs(loss16 / loss32 - 1), abs(norm16 / norm32 - 1)
    print(
        f"\nbf16 vs float32 ({device}): loss {loss16:.5f} vs {loss32:.5f} (rel {gap_loss:.2e}), "
        f"grad norm {norm16:.5f} vs {norm32:.5f} (rel {gap_norm:.2e})"
    )
    assert gap_loss <= TOLERANCE and gap_norm <= TOLERANCE


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_bf16_training_step_matches_float32_on_cpu(tmp_path: Path, tiny_emotic_root: Path) -> None:
    _compare(tmp_path, tiny_emotic_root, "cpu")


def test_bf16_mixed_training_run_on_cpu(fast_dev_run_cfg: Callable[..., DictConfig]) -> None:
    """``trainer.precision=bf16-mixed`` through Lightning: a fast dev run ends finite."""
    from cocoer.train import train

    metrics = train(fast_dev_run_cfg("trainer.precision=bf16-mixed"))
    assert torch.isfinite(torch.tensor(metrics["train/loss"])), metrics


@pytest.mark.gpu
@requires_cuda
@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_bf16_training_step_matches_float32_on_cuda(tmp_path: Path, tiny_emotic_root: Path) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    _compare(tmp_path, tiny_emotic_root, "cuda")

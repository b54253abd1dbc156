"""The one optimiser builder: Adam and its StepLR schedule from the options of
:class:`cocoer.training.config.TrainingOptions` (used by the LightningModule's
``configure_optimizers`` and the throughput benchmark)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from cocoer.training.config import OptimizerConfig, SchedulerConfig


def build_optimizer(
    params: Iterable[nn.Parameter], optimizer: OptimizerConfig, scheduler: SchedulerConfig
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.StepLR]:
    """Adam over ``params`` and a StepLR stepped once per epoch."""
    adam = torch.optim.Adam(
        list(params),
        lr=optimizer.lr,
        weight_decay=optimizer.weight_decay,
        betas=(float(optimizer.betas[0]), float(optimizer.betas[1])),
    )
    step = torch.optim.lr_scheduler.StepLR(
        adam, step_size=scheduler.step_size, gamma=scheduler.gamma
    )
    return adam, step

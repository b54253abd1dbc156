"""Non-finite gradients are handled like a non-finite loss: the run stops at that step,
before the optimiser step (so the weights and the last saved checkpoint stay the last good
state), with one line naming the step and the parameter groups whose gradients are NaN or
infinite. With ``action=skip`` the step is skipped instead (its gradients are dropped, so
the optimiser leaves the weights and its moments alone), counted and logged
(``train/skipped_steps``); at most ``max_skips_in_row`` steps in a row are skipped, the run
stops at the next one.

Under DDP the gradients are already all-reduced when the check runs; the ranks still agree
through :func:`cocoer.utils.distributed.ranks_where`, as they do for the loss, so that no
rank steps while another stops. With ``16-mixed`` precision the GradScaler owns infinite
gradients (it skips the step and lowers its scale), so the callback leaves those steps to it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor

from cocoer.errors import ConfigError, NonFiniteGradientError, check_choice
from cocoer.utils.distributed import dist_rank, dist_world_size, ranks_where

log = logging.getLogger(__name__)

GRADIENT_ACTIONS = ("stop", "skip")


def group_of(name: str, depth: int = 2) -> str:
    """The parameter group of a parameter name: its first ``depth`` components
    (``net.fusion.net.1.weight`` -> ``net.fusion``)."""
    return ".".join(name.split(".")[:depth])


def non_finite_groups(named_grads: Iterable[tuple[str, Tensor | None]]) -> dict[str, int]:
    """{group: number of its gradient tensors with a NaN or infinite entry}, in parameter
    order; one device-to-host copy for all tensors."""
    named = [(n, g) for n, g in named_grads if g is not None]
    if not named:
        return {}
    finite = torch.stack([torch.isfinite(g.detach()).all() for _, g in named]).tolist()
    bad: dict[str, int] = {}
    for (name, _), ok in zip(named, finite, strict=True):
        if not ok:
            bad[group_of(name)] = bad.get(group_of(name), 0) + 1
    return bad


class FiniteGradients(L.Callback):
    """Check every gradient before the optimiser step (``on_before_optimizer_step``).

    Args:
        action: ``stop`` (default: raise :class:`NonFiniteGradientError`, one line) or
            ``skip`` (drop the step's gradients, count and log it).
        max_skips_in_row: with ``skip``, the most steps skipped in a row; the run stops at
            the next non-finite step.
    """

    def __init__(self, action: str = "stop", max_skips_in_row: int = 10) -> None:
        check_choice(
            "callbacks.finite_gradients.action", action, GRADIENT_ACTIONS, where="invalid config"
        )
        if max_skips_in_row < 1:
            raise ConfigError(
                "invalid config: callbacks.finite_gradients.max_skips_in_row must be >= 1"
            )
        self.action, self.max_skips_in_row = action, max_skips_in_row
        self.skipped = 0  # skipped steps in this run (kept in checkpoints)
        self.in_row = 0

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped = int(state_dict.get("skipped", 0))

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            return  # 16-mixed: the GradScaler skips steps with infinite gradients itself
        self.check(pl_module, optimizer, trainer.global_step, trainer.current_epoch)

    def check(
        self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, epoch: int
    ) -> bool:
        """Raise, skip (return True) or let the step go on (return False)."""
        bad = non_finite_groups((n, p.grad) for n, p in module.named_parameters())
        device = next(module.parameters()).device
        bad_ranks = ranks_where(bool(bad), device)  # a collective under DDP
        if not bad_ranks:
            self.in_row = 0
            return False
        at = f"non-finite gradients at step {step} (epoch {epoch})"
        if bad:
            on = f" on rank {dist_rank()}" if dist_world_size() > 1 else ""
            named = ", ".join(f"{g} ({n} tensor{'s' if n > 1 else ''})" for g, n in bad.items())
            where = f"{on} in {named}"
        else:
            where = f" on rank(s) {', '.join(map(str, bad_ranks))}"
        if self.action == "skip" and self.in_row < self.max_skips_in_row:
            self.skipped, self.in_row = self.skipped + 1, self.in_row + 1
            optimizer.zero_grad(set_to_none=True)  # the optimiser skips parameters without grad
            log.warning("%s%s; step skipped (%d skipped so far)", at, where, self.skipped)
            if isinstance(module, L.LightningModule) and module._trainer is not None:
                module.log("train/skipped_steps", float(self.skipped), on_step=True)
            return True
        why = f" after {self.in_row} skipped steps in a row" if self.action == "skip" else ""
        raise NonFiniteGradientError(
            f"{at}{where}{why}; training stopped before the optimiser step, "
            "the last saved checkpoint is kept"
        )

"""The finiteness guard of training: stop at the first NaN / infinite loss term, before the
optimiser step (nothing is saved: the last checkpoint stays the last good state)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from cocoer.errors import NonFiniteLossError
from cocoer.utils.distributed import dist_rank, dist_world_size, ranks_where

#: Symbols of the loss terms in messages (docs/method.md section 5).
TERM_NAMES = {
    "loss": "L_emo",
    "loss_c": "L_c",
    "loss_b": "L_b",
    "loss_h": "L_h",
    "loss_t": "L_t",
    "loss_G": "L_G",
    "delta_sq": "delta_sq",
}


def check_finite_loss(
    terms: Mapping[str, Tensor], device: torch.device, step: int, epoch: int
) -> None:
    """Raise :class:`~cocoer.errors.NonFiniteLossError` naming the bad terms when a loss
    term (0-dim tensors, ``loss`` and its parts) is not finite on any rank.

    Under DDP every rank stops at that step, also those whose own loss is finite (the ranks
    agree through :func:`~cocoer.utils.distributed.ranks_where`, a collective): a rank that
    stopped alone would leave the others waiting in ``backward``'s gradient all-reduce.
    """
    # one device-to-host copy per step (not one per term); the values only of bad terms
    finite = torch.stack([torch.isfinite(v.detach()).all() for v in terms.values()]).tolist()
    pairs = zip(terms.items(), finite, strict=True)
    bad = {k: float(v.detach()) for (k, v), ok in pairs if not ok}
    bad_ranks = ranks_where(bool(bad), device)  # a collective under DDP
    if not bad_ranks:
        return
    at = f"non-finite loss at step {step} (epoch {epoch})"
    if bad:
        named = ", ".join(f"{TERM_NAMES.get(k, k)}={v}" for k, v in bad.items())
        on = f" on rank {dist_rank()}" if dist_world_size() > 1 else ""
        why = f"{on}: {named}; training stopped"
    else:  # another rank's loss: stop here too
        why = f" on rank(s) {', '.join(map(str, bad_ranks))}; training stopped on every rank"
    raise NonFiniteLossError(f"{at}{why}, the last saved checkpoint is kept")

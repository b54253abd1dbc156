"""Agreement across the processes of a distributed run.

A decision that stops a rank (a non-finite loss) must be taken by every rank at the same
step: under DDP a rank that raises alone leaves the others waiting in the gradient
all-reduce of ``backward`` until the process group times out (30 minutes by default).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def dist_world_size() -> int:
    """Processes in the initialised process group (1 without one)."""
    return dist.get_world_size() if _initialized() else 1


def dist_rank() -> int:
    """This process's rank in the initialised process group (0 without one)."""
    return dist.get_rank() if _initialized() else 0


def ranks_where(flag: bool, device: torch.device | str = "cpu") -> list[int]:
    """The ranks on which ``flag`` is true, the same list on every rank.

    A collective under a process group of more than one process: every rank must call it
    at the same point (``device``: where the backend exchanges tensors, the rank's CUDA
    device for NCCL). Without one it is ``[0]`` or ``[]`` (this process alone).
    """
    world = dist_world_size()
    if world == 1:
        return [0] if flag else []
    mine = torch.tensor([float(flag)], device=device)  # (1,)
    gathered = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    return [rank for rank, v in enumerate(torch.cat(gathered).tolist()) if v]

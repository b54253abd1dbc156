"""Two DDP ranks on CPU (gloo, spawned processes) running one test function each, their
answers written to JSON and read back by the test."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp

#: what a rank runs: ``body(rank)`` -> a JSON-able dict of its answers
RankBody = Callable[[int], dict[str, Any]]


def _rank_main(rank: int, body: RankBody, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
    try:
        out = body(rank)
        dist.barrier()  # every rank is still in step: no collective was left unmatched
    finally:
        dist.destroy_process_group()
    Path(folder, f"rank{rank}.json").write_text(json.dumps(out))


def run_two_ranks(body: RankBody, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``body`` on ranks 0 and 1 of one process group; their dicts, rank 0's first.
    ``body`` must be a module-level function (the ranks are spawned processes)."""
    mp.start_processes(_rank_main, args=(body, str(folder)), nprocs=2, start_method="spawn")
    r0, r1 = (json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1))
    return r0, r1

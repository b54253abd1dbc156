"""`cocoer-train` with faults injected, run as a subprocess by the safety tests.

Environment:
    COCOER_TEST_NAN_FROM_EPOCH=E: the loss term L_G is NaN in every training step from
        epoch E on (applied on import, so also in the processes that ``trainer=ddp_sim``
        spawns, which import this file as ``__mp_main__``).
    COCOER_TEST_NAN_RANK=R: ... only on DDP rank R.
    COCOER_TEST_SLOW_SAVE=MARKER: checkpoints of epoch >= 1 are written slowly, in 16
        chunks 0.5 s apart, and MARKER is created once half of the file is written (the
        test then SIGKILLs the process in the middle of the save).
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import IO, Any


def inject_nan(from_epoch: int, rank: int | None = None) -> None:
    from cocoer.training import module as lit_module

    step = lit_module.CocoERLitModule._step

    def _step(self: Any, batch: Any, stage: str) -> Any:
        out, terms = step(self, batch, stage)
        on_rank = rank is None or self.global_rank == rank
        if stage == "train" and self.current_epoch >= from_epoch and on_rank:
            terms = {**terms, "loss_G": terms["loss_G"] * float("nan")}
            terms["loss"] = terms["loss"] + terms["loss_G"]
        return out, terms

    lit_module.CocoERLitModule._step = _step  # type: ignore[method-assign]


def slow_saves(marker: str) -> None:
    import torch

    from cocoer.training import checkpoint_io

    def write(checkpoint: dict[str, Any], f: IO[bytes]) -> None:
        if checkpoint.get("epoch", 0) < 1:
            torch.save(checkpoint, f)
            return
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        data, n = buf.getvalue(), 16
        for i in range(n):
            f.write(data[i * len(data) // n : (i + 1) * len(data) // n])
            f.flush()
            if i == n // 2:
                open(marker, "w").close()
            time.sleep(0.5)

    checkpoint_io.write_checkpoint = write


if "COCOER_TEST_NAN_FROM_EPOCH" in os.environ:
    nan_rank = os.environ.get("COCOER_TEST_NAN_RANK")
    inject_nan(
        int(os.environ["COCOER_TEST_NAN_FROM_EPOCH"]), None if nan_rank is None else int(nan_rank)
    )

if __name__ == "__main__":
    if "COCOER_TEST_SLOW_SAVE" in os.environ:
        slow_saves(os.environ["COCOER_TEST_SLOW_SAVE"])
    from cocoer.cli.train import main

    sys.argv = ["cocoer-train", *sys.argv[1:]]
    main()

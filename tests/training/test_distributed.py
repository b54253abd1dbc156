"""Ranks agree on stopping: a NaN loss on one DDP rank stops every rank at that step
(two CPU processes, gloo), so none is left waiting in backward's gradient all-reduce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from cocoer.errors import CocoerError, NonFiniteLossError, clear_error_in
from cocoer.training.finite_loss import check_finite_loss
from cocoer.utils.distributed import ranks_where
from tests.support.two_ranks import run_two_ranks

NAN = float("nan")


def _check(terms: dict[str, torch.Tensor]) -> str | None:
    """The finiteness guard at step 7 of epoch 1; the error message, or None when the step
    may go on."""
    try:
        check_finite_loss(terms, torch.device("cpu"), step=7, epoch=1)
    except NonFiniteLossError as exc:
        return str(exc)
    return None


def _terms(loss_G: float) -> dict[str, torch.Tensor]:
    return {"loss_G": torch.tensor(loss_G), "loss": torch.tensor(1.0 + loss_G)}


def _rank(rank: int) -> dict[str, Any]:
    return {
        "where_rank0": ranks_where(rank == 0),
        "none_bad": _check(_terms(0.5)),
        "rank1_bad": _check(_terms(NAN if rank == 1 else 0.5)),
        "both_bad": _check(_terms(NAN)),
    }


def test_a_nan_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    r0, r1 = run_two_ranks(_rank, tmp_path)
    assert r0["where_rank0"] == r1["where_rank0"] == [0]
    assert r0["none_bad"] is None and r1["none_bad"] is None
    at = "non-finite loss at step 7 (epoch 1)"
    assert r1["rank1_bad"] == (
        f"{at} on rank 1: L_G=nan, L_emo=nan; training stopped, the last saved checkpoint is kept"
    )
    assert r0["rank1_bad"] == (
        f"{at} on rank(s) 1; training stopped on every rank, the last saved checkpoint is kept"
    )
    for rank, r in enumerate((r0, r1)):
        assert r["both_bad"].startswith(f"{at} on rank {rank}: L_G=nan")


def test_without_a_process_group_only_this_process_counts() -> None:
    assert ranks_where(True) == [0] and ranks_where(False) == []
    assert _check(_terms(0.5)) is None
    message = _check(_terms(NAN))
    assert message is not None and message.startswith(
        "non-finite loss at step 7 (epoch 1): L_G=nan"
    )


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_infinite_terms_count_as_non_finite(value: float) -> None:
    message = _check(_terms(value))
    assert message is not None and f"L_G={value}" in message


def _child_failure(last_line: str) -> BaseException:
    """What ``torch.multiprocessing`` raises in the parent when a spawned rank failed."""
    from torch.multiprocessing.spawn import ProcessRaisedException

    text = f"\n\n-- Process 1 terminated with the following error:\nTraceback ...\n{last_line}\n"
    return ProcessRaisedException(text, 1, 4242)


def test_a_clear_error_in_a_spawned_rank_is_reported_as_one_line() -> None:
    message = "non-finite loss at step 2 (epoch 1) on rank 1: L_G=nan"
    found = clear_error_in(_child_failure(f"cocoer.errors.NonFiniteLossError: {message}"))
    assert isinstance(found, CocoerError) and str(found) == message
    wrapped = RuntimeError("hydra")
    wrapped.__cause__ = _child_failure(f"cocoer.errors.InputError: {message}")
    assert str(clear_error_in(wrapped)) == message
    # anything else stays a traceback: other exceptions, names outside cocoer.errors' family
    assert clear_error_in(_child_failure("ValueError: boom")) is None
    assert clear_error_in(_child_failure("cocoer.errors.re: boom")) is None
    assert clear_error_in(_child_failure("cocoer.errors.Unknown: boom")) is None

"""Non-finite gradients stop the run before the optimiser step (or, with ``skip``, the step
is skipped and counted), on one process and on two DDP ranks (gloo, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from cocoer.callbacks import FiniteGradients
from cocoer.errors import ConfigError, NonFiniteGradientError
from tests.support.two_ranks import run_two_ranks

NAN = float("nan")


class Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.ModuleDict(
            {"body": torch.nn.Linear(3, 3), "fusion": torch.nn.Linear(3, 1)}
        )


def _toy_with_grads(bad: float | None) -> tuple[Toy, torch.optim.Optimizer]:
    model = Toy()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    if bad is not None:
        model.net["fusion"].weight.grad[0, 1] = bad
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def _check(cb: FiniteGradients, bad: float | None) -> tuple[str | None, Toy, bool]:
    """The callback's check on a toy model; (error message or None, the model after the
    optimiser step that follows a check that did not raise, whether it skipped)."""
    model, opt = _toy_with_grads(bad)
    try:
        skipped = cb.check(model, opt, step=7, epoch=1)
    except NonFiniteGradientError as exc:
        return str(exc), model, False
    opt.step()
    return None, model, skipped


def test_a_nan_gradient_stops_with_one_line() -> None:
    message, _, _ = _check(FiniteGradients(), NAN)
    assert message == (
        "non-finite gradients at step 7 (epoch 1) in net.fusion (1 tensor); training stopped "
        "before the optimiser step, the last saved checkpoint is kept"
    )
    assert "\n" not in message
    assert _check(FiniteGradients(), float("inf"))[0] is not None


def test_finite_gradients_step_normally() -> None:
    message, model, skipped = _check(FiniteGradients(), None)
    assert message is None and not skipped
    assert not torch.equal(model.net["fusion"].weight, Toy().net["fusion"].weight)


def test_skip_leaves_the_weights_counts_and_stops_after_too_many_in_a_row() -> None:
    cb = FiniteGradients(action="skip", max_skips_in_row=2)
    before = {k: v.clone() for k, v in Toy().state_dict().items()}
    for n in (1, 2):
        message, model, skipped = _check(cb, NAN)
        assert message is None and skipped and cb.skipped == n
        after = model.state_dict()
        assert all(torch.equal(after[k], before[k]) for k in before)  # the step did nothing
    assert _check(cb, None)[0] is None and cb.in_row == 0  # a good step resets the run
    assert _check(cb, NAN)[2] and _check(cb, NAN)[2] and cb.skipped == 4
    message = _check(cb, NAN)[0]
    assert message is not None and "after 2 skipped steps in a row" in message


def test_bad_options_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown callbacks\.finite_gradients\.action 'ignore'"):
        FiniteGradients(action="ignore")
    with pytest.raises(ConfigError, match="max_skips_in_row must be >= 1"):
        FiniteGradients(max_skips_in_row=0)


class NaNAtStep(L.LightningModule):
    """A tiny regression whose body weight gets a NaN gradient at training step ``bad_step``."""

    def __init__(self, bad_step: int) -> None:
        super().__init__()
        self.bad_step = bad_step
        self.net = Toy().net
        self.net["body"].weight.register_hook(
            lambda g: g * NAN if self.global_step == self.bad_step else g
        )

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        (x,) = batch
        return self.net["fusion"](torch.relu(self.net["body"](x))).square().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=0.1)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        data = torch.utils.data.TensorDataset(torch.randn(32, 3))
        return torch.utils.data.DataLoader(data, batch_size=4)


def _fit(tmp_path: Path, cb: FiniteGradients, bad_step: int) -> NaNAtStep:
    model = NaNAtStep(bad_step)
    last = ModelCheckpoint(dirpath=tmp_path, filename="last", every_n_train_steps=1)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        callbacks=[cb, last],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model)
    return model


def test_a_training_run_stops_before_the_step_and_keeps_the_last_checkpoint(
    tmp_path: Path,
) -> None:
    with pytest.raises(NonFiniteGradientError, match=r"at step 3 \(epoch 0\) in net.body") as e:
        _fit(tmp_path, FiniteGradients(), bad_step=3)
    assert "\n" not in str(e.value)
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 3  # written after step 3 ran; step 4 never happened
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_a_training_run_skips_the_bad_step(tmp_path: Path) -> None:
    cb = FiniteGradients(action="skip")
    model = _fit(tmp_path, cb, bad_step=3)
    assert cb.skipped == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _rank(rank: int) -> dict[str, Any]:
    out = {
        "none_bad": _check(FiniteGradients(), None)[0],
        "rank1_bad": _check(FiniteGradients(), NAN if rank == 1 else None)[0],
    }
    skip = FiniteGradients(action="skip", max_skips_in_row=1)
    out["skip"] = _check(skip, NAN if rank == 0 else None)[2]
    out["skip_stop"] = _check(skip, NAN if rank == 0 else None)[0]
    return out


def test_a_nan_gradient_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    r0, r1 = run_two_ranks(_rank, tmp_path)
    assert r0["none_bad"] is None and r1["none_bad"] is None
    at = "non-finite gradients at step 7 (epoch 1)"
    tail = "; training stopped before the optimiser step, the last saved checkpoint is kept"
    assert r1["rank1_bad"] == f"{at} on rank 1 in net.fusion (1 tensor){tail}"
    assert r0["rank1_bad"] == f"{at} on rank(s) 1{tail}"
    assert r0["skip"] is True and r1["skip"] is True  # both ranks skip together
    assert r0["skip_stop"].endswith(f"after 1 skipped steps in a row{tail}")
    assert r1["skip_stop"] == f"{at} on rank(s) 0 after 1 skipped steps in a row{tail}"

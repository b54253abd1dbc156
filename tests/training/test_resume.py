"""Resume: an interrupted run continued with ckpt_path=auto in the same run directory ends
with the same weights and optimiser state as an uninterrupted one (CPU, deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict

from cocoer.callbacks import TrainingInterrupted
from cocoer.checkpoint.safe_load import load_cocoer_checkpoint
from cocoer.runs.jobs import FAILED, is_done, run_job
from cocoer.train import resolve_ckpt_path, train
from tests.support.helpers import TINY_OVERRIDES, compose_config, resumable

EPOCHS = 2
#: the tiny data gives 4 steps per epoch at batch 8: stop in the middle of epoch 2
STOP_AFTER = 5
STEPS_PER_EPOCH = 4


def _cfg(out: Path, data_root: Path, extra: list[str] | None = None) -> DictConfig:
    over = [*TINY_OVERRIDES, *resumable(EPOCHS), *(extra or [])]
    return compose_config("train", out, data_root, over)


def _interrupting(cfg: DictConfig) -> DictConfig:
    with open_dict(cfg):
        cfg.callbacks.interrupt = {
            "_target_": "cocoer.callbacks.InterruptAfterSteps",
            "steps": STOP_AFTER,
        }
    return cfg


def _state(run: Path) -> dict:
    return load_cocoer_checkpoint(run / "checkpoints" / "last.ckpt")


def test_interrupted_then_resumed_run_matches_an_uninterrupted_one(
    tmp_path: Path, tiny_emotic_root: Path
) -> None:
    ref = train(_cfg(tmp_path / "ref", tiny_emotic_root))
    ref_run = Path(ref["output_dir"])

    cfg = _interrupting(_cfg(tmp_path / "cut", tiny_emotic_root))
    with pytest.raises(TrainingInterrupted):
        run_job(cfg, train)  # a single run: the failure is recorded, then raised
    run = Path(cfg.paths.output_dir)
    assert (run / FAILED).is_file() and not is_done(run)
    assert _state(run)["epoch"] == 0  # what survives: the end of the first epoch

    again = _cfg(tmp_path / "cut", tiny_emotic_root, ["ckpt_path=auto"])
    assert resolve_ckpt_path(again) == str(run / "checkpoints" / "last.ckpt")
    run_job(again, train)
    assert is_done(run) and not (run / FAILED).exists()

    a, b = _state(ref_run), _state(run)
    assert a["global_step"] == b["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    opt_a, opt_b = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    for i, s in opt_a.items():
        torch.testing.assert_close(opt_b[i]["exp_avg"], s["exp_avg"], rtol=1e-5, atol=1e-7)
    assert a["lr_schedulers"] == b["lr_schedulers"]


def test_resume_flag_skips_a_finished_run(tmp_path: Path) -> None:
    cfg = compose_config("train", tmp_path, overrides=["resume=true"])
    run = Path(cfg.paths.output_dir)
    run.mkdir(parents=True)
    (run / "done").write_text("{}")
    (run / "metrics.json").write_text('{"test/mAP": 12.5}')

    def must_not_run(_: DictConfig) -> dict:
        raise AssertionError("a finished job was run again")

    out = run_job(cfg, must_not_run)
    assert out["skipped"] and out["test/mAP"] == 12.5


def test_resume_flag_sets_ckpt_path_auto_and_failures_can_be_caught(tmp_path: Path) -> None:
    cfg = compose_config("train", tmp_path, overrides=["resume=true"])
    seen = {}

    def boom(c: DictConfig) -> dict:
        seen["ckpt_path"] = c.ckpt_path
        raise RuntimeError("out of memory")

    out = run_job(cfg, boom, catch=True)
    assert seen["ckpt_path"] == "auto"
    assert out["failed"] and "out of memory" in out["error"]
    assert "RuntimeError" in (Path(cfg.paths.output_dir) / FAILED).read_text()

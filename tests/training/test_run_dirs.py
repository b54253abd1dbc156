"""Run directories with one owner: a lock, refused relaunches that leave every record
intact, resumes checked before records are written, checkpoint paths that follow a copied
or moved directory, atomic records, and an aggregate that reports damaged jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cocoer.errors import CheckpointError
from cocoer.runs.jobs import DONE, FAILED, run_job
from cocoer.runs.run_dir import (
    RunDirError,
    check_relaunch,
    relocate_checkpoint_paths,
    run_dir_lock,
)


def _cfg(run: Path, **extra: object) -> object:
    return OmegaConf.create({"paths": {"output_dir": str(run)}, **extra})


def _finished(run: Path) -> dict[str, str]:
    (run / "checkpoints").mkdir(parents=True)
    files = {
        DONE: '{"finished": "then"}',
        "metrics.json": '{"test/mAP": 40.0}',
        "config.yaml": "seed: 1\n",
        "checkpoints/last.ckpt": "seed-1 weights",
    }
    for name, text in files.items():
        (run / name).write_text(text)
    return files


def test_second_process_in_the_same_directory_fails_in_one_line(tmp_path: Path) -> None:
    busy = pytest.raises(RunDirError, match="another process")
    with run_dir_lock(tmp_path), busy as err, run_dir_lock(tmp_path):
        pass
    assert "\n" not in str(err.value)
    with run_dir_lock(tmp_path):  # released
        pass


def test_job_in_a_locked_directory_is_refused_without_records(tmp_path: Path) -> None:
    calls: list[int] = []
    with run_dir_lock(tmp_path), pytest.raises(RunDirError):
        run_job(_cfg(tmp_path), lambda c: calls.append(1) or {})
    assert not calls and not (tmp_path / FAILED).exists()


@pytest.mark.parametrize("extra", [{}, {"ckpt_path": "auto"}])
def test_relaunch_into_a_finished_directory_refuses_and_keeps_records(
    tmp_path: Path, extra: dict
) -> None:
    files = _finished(tmp_path)
    calls: list[int] = []
    with pytest.raises(RunDirError, match="finished run") as err:
        run_job(_cfg(tmp_path, **extra), lambda c: calls.append(1) or {})
    assert "\n" not in str(err.value) and not calls
    for name, text in files.items():
        assert (tmp_path / name).read_text() == text
    assert not (tmp_path / FAILED).exists()
    skipped = run_job(_cfg(tmp_path, resume=True), lambda c: calls.append(1) or {})
    assert skipped["skipped"] and not calls


def test_unfinished_directory_needs_resume(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_text("x")
    with pytest.raises(RunDirError, match="unfinished"):
        check_relaunch(tmp_path, resuming=False, done=DONE)
    check_relaunch(tmp_path, resuming=True, done=DONE)


def test_checkpoint_paths_follow_a_copied_or_moved_directory(tmp_path: Path) -> None:
    old = "/machine/a/run/checkpoints"
    new_ckpt = tmp_path / "copy" / "checkpoints" / "last.ckpt"
    ckpt = {
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/mAP'}": {
                "dirpath": old,
                "best_model_path": f"{old}/epoch=3.ckpt",
                "last_model_path": f"{old}/last.ckpt",
                "kth_best_model_path": f"{old}/epoch=3.ckpt",
                "best_k_models": {f"{old}/epoch=3.ckpt": 0.5},
            },
            "Other": {"dirpath": old},
        }
    }
    relocate_checkpoint_paths(ckpt, new_ckpt)
    state = ckpt["callbacks"]["ModelCheckpoint{'monitor': 'val/mAP'}"]
    new = str(new_ckpt.parent.resolve())
    assert state["dirpath"] == new
    assert state["best_model_path"] == f"{new}/epoch=3.ckpt"
    assert state["last_model_path"] == f"{new}/last.ckpt"
    assert list(state["best_k_models"]) == [f"{new}/epoch=3.ckpt"]
    assert ckpt["callbacks"]["Other"] == {"dirpath": old}


def test_resume_from_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    import torch

    from cocoer.models.factory import _preset
    from cocoer.runs.run_dir import check_resume_fits
    from cocoer.training.checkpoint_io import atomic_save
    from cocoer.training.module import CocoERLitModule, to_plain

    net = _preset("cocoer_tiny", "emotic_synthetic")
    net["hfe"].update(image_size=32, tiny_width=8, d_h=16)
    small = CocoERLitModule(net={**net, "d": 16})
    other = CocoERLitModule(net={**net, "d": 24})
    path = tmp_path / "last.ckpt"
    atomic_save(
        {"state_dict": other.state_dict(), "hyper_parameters": to_plain(other.hparams)}, path
    )
    with pytest.raises(CheckpointError, match="does not fit this run's model"):
        check_resume_fits(small, path)
    check_resume_fits(other, path)
    assert isinstance(torch.load(path, weights_only=True), dict)


def test_aggregate_reports_damaged_jobs_and_aggregates_the_rest(tmp_path: Path) -> None:
    from cocoer.runs.aggregate import collect

    def job(name: str, **files: str) -> None:
        d = tmp_path / name
        d.mkdir()
        (d / "config.yaml").write_text("seed: 0\nablation: {name: alpha, row: '0.1'}\n")
        for fname, text in files.items():
            (d / fname.replace("_", ".", 1) if fname != "done" else d / DONE).write_text(text)

    job("ok", metrics_json=json.dumps({"test/mAP": 30.0}), done="{}")
    job("truncated", metrics_json='{"test/mAP": 3', done="{}")
    job("deep", metrics_json="[" * 100_000, done="{}")
    job("emptyfail", failed_json="")
    (tmp_path / "badyaml").mkdir()
    (tmp_path / "badyaml" / "config.yaml").write_text("seed: [unclosed\n")
    rows = collect(tmp_path).set_index("job")
    assert rows.loc["ok", "status"] == "done" and rows.loc["ok", "test/mAP"] == 30.0
    for name in ("truncated", "deep", "emptyfail", "badyaml"):
        assert rows.loc[name, "status"] == "damaged", name
        assert isinstance(rows.loc[name, "error"], str) and rows.loc[name, "error"], name

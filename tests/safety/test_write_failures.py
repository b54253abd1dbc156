"""A disk that fills up (ENOSPC in the middle of writing a file, simulated by a writer that
writes half its bytes and fails) ends `cocoer-infer` and `cocoer-train` in one line naming
the file and the reason, exit status 2; `cocoer-infer` leaves a run report of what was
written, or says why it could not write one. No temporary file is left behind."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
import pytest
from PIL import Image

import cocoer.utils.files as files
from tests.support.helpers import TINY_OVERRIDES, compose_config

ENOSPC = "No space left on device"


def fill_disk_at(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Every atomic write of a file named in ``names`` fails half-way with ENOSPC (an
    OSError naming no file, as ``write`` raises it)."""
    real = files.atomic_write

    def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
        if Path(path).name not in names:
            return real(path, write)

        def half_then_full(f: IO[bytes]) -> None:
            f.write(b"{ half a file")
            raise OSError(errno.ENOSPC, ENOSPC)

        return real(path, half_then_full)

    monkeypatch.setattr(files, "atomic_write", atomic_write)


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for i, name in enumerate(("a", "b", "c")):
        path = folder / f"{name}.jpg"
        Image.new("RGB", (64, 48), (40 * i, 90, 60)).save(path)
        paths.append(path)
    return paths


def infer(ckpt: Path, out: Path, *inputs: Path) -> list[str]:
    args = [*map(str, inputs), "--ckpt", str(ckpt), "--out", str(out)]
    return [*args, "--detector", "opencv", "--no-progress", "--quiet"]


def one_error_line(capsys: pytest.CaptureFixture, prog: str) -> str:
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    return err[0]


def test_infer_disk_full_mid_run_reports_what_was_written(
    tiny_checkpoint: Path,
    photos: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from cocoer.cli.infer import main

    out = tmp_path / "out"
    fill_disk_at(monkeypatch, "b_annotated.jpg")
    assert main(infer(tiny_checkpoint, out, photos[0].parent)) == 2
    line = one_error_line(capsys, "cocoer-infer")
    assert f"{out / 'b_annotated.jpg'}: {ENOSPC}" in line
    assert "stopped after 1 input(s)" in line and "run_report.json lists" in line
    report = json.loads((out / "run_report.json").read_text())
    assert [Path(p["source"]).name for p in report["processed"]] == ["a.jpg"]
    assert all(Path(f).is_file() for f in report["processed"][0]["files"])
    assert report["stopped"].endswith(ENOSPC)
    (failure,) = report["failures"]
    assert Path(failure["path"]).name == "b.jpg" and "b_annotated.jpg" in failure["reason"]
    assert not (out / "b_annotated.jpg").exists() and not (out / "c.json").exists()
    assert no_temporary_files(out)


def test_infer_says_why_the_report_could_not_be_written(
    tiny_checkpoint: Path,
    photos: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from cocoer.cli.infer import main

    fill_disk_at(monkeypatch, "run_report.json")
    out = tmp_path / "all_written"
    assert main(infer(tiny_checkpoint, out, photos[0])) == 2
    line = one_error_line(capsys, "cocoer-infer")
    assert f"{out / 'run_report.json'}: {ENOSPC}" in line and "stopped after 1 input(s)" in line
    assert "the run report could not be written" in line
    assert (out / "a.json").is_file() and not (out / "run_report.json").exists()

    fill_disk_at(monkeypatch, "a.json", "run_report.json")
    out = tmp_path / "nothing_written"
    assert main(infer(tiny_checkpoint, out, photos[0])) == 2
    line = one_error_line(capsys, "cocoer-infer")
    assert f"{out / 'a.json'}: {ENOSPC}; stopped after 0 input(s)" in line
    assert f"could not be written: {out / 'run_report.json'}: {ENOSPC}" in line
    assert no_temporary_files(tmp_path)


def test_infer_video_disk_full_stops_in_one_line(
    tiny_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    import cocoer.infer.video as video
    from cocoer.cli.infer import main

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (64, 48))
    for k in range(4):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    written: list[str] = []

    def append(fh: IO[str], line: str) -> None:
        if len(written) == 2:
            raise OSError(errno.ENOSPC, ENOSPC)
        written.append(line)
        fh.write(line)
        fh.flush()

    monkeypatch.setattr(video, "_append", append)
    out = tmp_path / "out"
    assert main(infer(tiny_checkpoint, out, clip)) == 2
    line = one_error_line(capsys, "cocoer-infer")
    assert f"{out / 'clip.jsonl'}: {ENOSPC}; stopped after 0 input(s)" in line
    report = json.loads((out / "run_report.json").read_text())
    assert report["videos"] == [] and "outputs incomplete" in report["failures"][0]["reason"]
    assert len((out / "clip.jsonl").read_text().splitlines()) == 2  # the frames before


def _fake_train(cfg: Any) -> dict[str, Any]:
    """What :func:`cocoer.train.train` does last: write metrics.json atomically."""
    files.atomic_write_text(Path(cfg.paths.output_dir) / "metrics.json", "{}")
    return {}


@pytest.mark.parametrize("full", [("metrics.json",), ("metrics.json", "failed.json")])
def test_job_whose_metrics_cannot_be_written_ends_in_one_line(
    tmp_path: Path,
    full: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from omegaconf import OmegaConf

    from cocoer.cli import exit_on_clear_error
    from cocoer.runs.jobs import run_job

    fill_disk_at(monkeypatch, *full)
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    with pytest.raises(SystemExit) as code, exit_on_clear_error("cocoer-train"):
        run_job(cfg, _fake_train)
    assert code.value.code == 2
    assert one_error_line(capsys, "cocoer-train").endswith(f"{tmp_path / 'metrics.json'}: {ENOSPC}")
    assert not (tmp_path / "done").exists() and not (tmp_path / "metrics.json").exists()
    assert (tmp_path / "failed.json").is_file() == ("failed.json" not in full)
    assert no_temporary_files(tmp_path)


@pytest.mark.slow
def test_tiny_training_whose_metrics_cannot_be_written_ends_in_one_line(
    tmp_path: Path,
    tiny_emotic_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from cocoer.cli import exit_on_clear_error
    from cocoer.runs.jobs import run_job
    from cocoer.train import train

    cfg = compose_config("train", tmp_path, tiny_emotic_root, [*TINY_OVERRIDES, "logger=csv"])
    fill_disk_at(monkeypatch, "metrics.json")
    with pytest.raises(SystemExit) as code, exit_on_clear_error("cocoer-train"):
        run_job(cfg, train)
    assert code.value.code == 2
    run = Path(cfg.paths.output_dir)
    assert one_error_line(capsys, "cocoer-train").endswith(f"{run / 'metrics.json'}: {ENOSPC}")
    failed = json.loads((run / "failed.json").read_text())
    assert failed["type"] == "OSError" and (run / "checkpoints" / "last.ckpt").is_file()
    assert not (run / "done").exists() and no_temporary_files(run)

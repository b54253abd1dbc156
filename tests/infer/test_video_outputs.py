"""Video and webcam outputs are collision-checked like photo outputs: files already in
`--out` (a user's own `clip.jsonl`, another run's saliency figures) are never replaced
unless `--overwrite`; a webcam index that is out of range, or not an ASCII number, is a
counted skip with a reason, never a traceback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cocoer.infer.inputs import OutputNamer, collect_inputs, stems_in


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_video_webcam_and_saliency_names_in_out_are_taken(tmp_path: Path) -> None:
    for name in ("clip.jsonl", "webcam0_annotated.mp4", "photo_p3_saliency.png", "x_vlm"):
        (tmp_path / name).write_text("a user's file")
    assert stems_in(tmp_path) == {"clip", "webcam0", "photo", "x"}
    namer = OutputNamer(tmp_path)
    got = [namer(Path(p)) for p in ("v/clip.mp4", "webcam0", "photo.jpg", "x.png", "y.mp4")]
    assert got == ["clip_2", "webcam0_2", "photo_2", "x_2", "y"]
    over = OutputNamer(tmp_path, overwrite=True)
    assert [over(Path(p)) for p in ("clip.mp4", "photo.jpg")] == ["clip", "photo"]
    assert stems_in(tmp_path / "missing") == set()


@pytest.mark.parametrize("arg", ["99999999999999999999999", "256", "²", "٣"])
def test_odd_webcam_indices_are_counted_skips(arg: str) -> None:
    inputs = collect_inputs([arg])
    assert inputs.webcams == [] and len(inputs.failures) == 1
    reason = inputs.failures[0].reason
    assert "out of range" in reason or "missing file" in reason


def test_video_run_keeps_files_already_in_out_unless_overwrite(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from cocoer.cli.infer import main

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (64, 48))
    for k in range(3):
        writer.write(np.full((48, 64, 3), 60 * k, np.uint8))
    writer.release()
    out = tmp_path / "out"
    out.mkdir()
    mine = {name: out / name for name in ("clip.jsonl", "clip_annotated.mp4")}
    for path in mine.values():
        path.write_text(f"the user's {path.name}")
    before = {name: digest(p) for name, p in mine.items()}
    args = [str(clip), "--ckpt", str(tiny_checkpoint), "--out", str(out), "--detector", "opencv"]
    assert main([*args, "--no-progress", "--quiet"]) == 0
    assert {name: digest(p) for name, p in mine.items()} == before
    report = json.loads((out / "run_report.json").read_text())
    assert report["videos"][0]["jsonl"] == str(out / "clip_2.jsonl")
    assert len((out / "clip_2.jsonl").read_text().splitlines()) == 3

    # the folder now holds a run: refused in one line, then replaced only when asked
    assert main([*args, "--no-progress", "--quiet"]) == 2
    assert "earlier run" in capsys.readouterr().err
    assert main([*args, "--no-progress", "--quiet", "--overwrite"]) == 0
    assert len((out / "clip.jsonl").read_text().splitlines()) == 3


def test_huge_webcam_index_on_the_command_line_is_one_reported_skip(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from cocoer.cli.infer import main

    out = tmp_path / "out"
    huge = "9" * 40
    assert main([huge, "--ckpt", str(tiny_checkpoint), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "webcam index out of range" in captured.out
    report = json.loads((out / "run_report.json").read_text())
    assert report["skipped"] == 1 and "out of range" in report["failures"][0]["reason"]

"""Video inference: IoU tracking and a small video written by the test itself."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from cocoer.infer.video import IoUTracker, iou_matrix

T1 = Path(__import__("insightface").__file__).parent / "data" / "images" / "t1.jpg"


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 101, 101]])
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 0.0, 0.0])


def test_tracker_keeps_ids_and_starts_new_ones() -> None:
    tr = IoUTracker(iou_threshold=0.3, max_age=1)
    assert tr.update([[0, 0, 10, 20], [50, 0, 60, 20]]) == [0, 1]
    # moved a little and listed in the other order: ids follow the boxes
    assert tr.update([[52, 1, 62, 21], [1, 0, 11, 20]]) == [1, 0]
    # a new person far away gets a new id; a vanished one is kept for max_age frames
    assert tr.update([[2, 0, 12, 20], [200, 0, 210, 20]]) == [0, 2]
    assert tr.update([[53, 1, 63, 21]]) == [1]  # person 1 came back within max_age
    tr.update([])
    tr.update([])
    assert tr.update([[0, 0, 10, 20]]) == [3]  # old tracks forgotten after max_age
    assert tr.num_tracks == 4


@pytest.fixture(scope="module")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 480x332 frames of t1.jpg, shifted by 4 px per frame, as mp4v."""
    root = tmp_path_factory.mktemp("video")
    img = cv2.imread(str(T1))
    img = cv2.resize(img, (500, 346), interpolation=cv2.INTER_AREA)
    path = root / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (480, 332))
    assert writer.isOpened()
    for k in range(6):
        writer.write(np.ascontiguousarray(img[2 : 2 + 332, 4 * k : 4 * k + 480]))
    writer.release()
    return path


def test_video_cli_tracks_people(small_video: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    from cocoer.cli.infer import main

    out = tmp_path / "out"
    args = [str(small_video), "--ckpt", str(tiny_checkpoint), "--out", str(out)]
    code = main([*args, "--detector", "opencv", "--no-progress", "--quiet"])
    assert code == 0
    lines = (out / "clip.jsonl").read_text().splitlines()
    frames = [json.loads(line) for line in lines]
    assert [f["frame"] for f in frames] == list(range(6))
    assert frames[0]["num_persons"] >= 1
    ids = Counter()
    for f in frames:
        frame_ids = [p["track_id"] for p in f["persons"]]
        assert len(set(frame_ids)) == len(frame_ids), "ids are unique within a frame"
        ids.update(frame_ids)
        for p in f["persons"]:
            assert sorted(p["exclusion_sequence"]) == ["body", "context", "head"]
    # the scene barely moves: someone keeps the same id through most frames
    assert ids.most_common(1)[0][1] >= 4
    cap = cv2.VideoCapture(str(out / "clip_annotated.mp4"))
    n, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, size = n + 1, frame.shape[:2]
    cap.release()
    assert n == 6 and size == (332, 480)
    report = json.loads((out / "run_report.json").read_text())
    assert report["videos"][0]["frames"] == 6 and report["videos"][0]["fps"] > 0


def test_unreadable_video_is_reported(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from cocoer.cli.infer import main

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    code = main([str(bad), "--ckpt", str(tiny_checkpoint), "--out", str(out), "--quiet"])
    assert code == 1  # nothing could be processed
    report = json.loads((out / "run_report.json").read_text())
    assert report["failures"][0]["path"] == str(bad)
    assert (
        "cannot open video" in report["failures"][0]["reason"]
        or "no frame" in (report["failures"][0]["reason"])
    )

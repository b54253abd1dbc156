"""Video and webcam inference: frame by frame with OpenCV, persons tracked by IoU.

Every frame is run like a photo (:meth:`Engine.predict_image`); body boxes are matched to
the previous frames' tracks with the Hungarian algorithm on IoU (scipy), so each person keeps
an id. Outputs: ``<stem>.jsonl`` (one JSON object per frame) and ``<stem>_annotated.mp4``
(mp4v), plus the processing speed in frames per second.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from cocoer.data.records import BadSampleError
from cocoer.infer.draw import annotate
from cocoer.infer.engine import Engine
from cocoer.infer.runner import OutputWriteError
from cocoer.utils.files import os_error_line, with_filename


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a [N, 4] and b [M, 4] (x1, y1, x2, y2) -> [N, M]."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda t: np.clip(t[:, 2] - t[:, 0], 0, None) * np.clip(t[:, 3] - t[:, 1], 0, None)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class IoUTracker:
    """Keeps person ids across frames by matching body boxes (Hungarian on IoU).

    Args:
        iou_threshold: a detection continues a track only if their IoU reaches this.
        max_age: a track unmatched for more than this many frames is forgotten.
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 10) -> None:
        self.iou_threshold, self.max_age = iou_threshold, max_age
        self._boxes: dict[int, np.ndarray] = {}
        self._age: dict[int, int] = {}
        self._next = 0

    @property
    def num_tracks(self) -> int:
        """Ids handed out so far."""
        return self._next

    def update(self, boxes: Sequence[Sequence[float]]) -> list[int]:
        """Track ids of this frame's ``boxes`` (same order); new ids for new persons."""
        boxes_arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        track_ids = list(self._boxes)
        ids: list[int | None] = [None] * len(boxes_arr)
        if track_ids and len(boxes_arr):
            iou = iou_matrix(boxes_arr, np.stack([self._boxes[t] for t in track_ids]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.iou_threshold:
                    ids[r] = track_ids[c]
        for t in track_ids:
            self._age[t] += 1
        out: list[int] = []
        for box, tid in zip(boxes_arr, ids, strict=True):
            if tid is None:
                tid, self._next = self._next, self._next + 1
            self._boxes[tid], self._age[tid] = box, 0
            out.append(tid)
        for t in [t for t, age in self._age.items() if age > self.max_age]:
            del self._boxes[t], self._age[t]
        return out


@dataclass
class VideoReport:
    """Outcome of a video run."""

    source: str
    frames: int
    persons: int
    seconds: float
    jsonl: Path
    video: Path
    tracks: int

    @property
    def fps(self) -> float:
        """Processed frames per second (detection + model + writing)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


T = TypeVar("T")


def _output(path: Path, write: Callable[..., T], *args: Any) -> T:
    """``write(*args)``, an OSError of it raised as :class:`OutputWriteError` naming the
    file (``path`` when the error names none)."""
    try:
        return write(*args)
    except OSError as exc:
        raise OutputWriteError(os_error_line(with_filename(exc, path))) from exc


def _open_text(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8")


def _append(fh: IO[str], line: str) -> None:
    """Write and flush ``line`` (a full disk shows here, not at close)."""
    fh.write(line)
    fh.flush()


def _video_writer(video: Path, fps: float, width: int, height: int) -> cv2.VideoWriter:
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
    writer = cv2.VideoWriter(str(video), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise OSError(None, "cannot open a video writer (mp4v codec unavailable?)", str(video))
    return writer


def run_video(
    predictor: Engine,
    source: str | Path | int,
    out_dir: Path,
    stem: str | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    tracker: IoUTracker | None = None,
) -> VideoReport:
    """Run CocoER on every frame of a video file (or webcam index) and track the persons.

    Raises:
        BadSampleError: the source cannot be opened or yields no frame.
        OutputWriteError: an output cannot be written (a full disk, a folder that is not
            writable): one line naming it; the frames before it are in ``<stem>.jsonl``.
    """
    name = f"webcam {source}" if isinstance(source, int) else str(source)
    cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not cap.isOpened():
        raise BadSampleError(name, "cannot open video (unreadable file or no such device)")
    stem = stem or (f"webcam{source}" if isinstance(source, int) else Path(source).stem)
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 25.0
    fps_in = fps_in if 0 < fps_in < 1000 else 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames is not None:
        total = min(total or max_frames, max_frames)
    jsonl, video = out_dir / f"{stem}.jsonl", out_dir / f"{stem}_annotated.mp4"
    tracker = tracker or IoUTracker()
    writer: cv2.VideoWriter | None = None
    frames = persons = 0
    start = time.perf_counter()
    bar = tqdm(total=total, desc=stem, unit="frame", disable=not progress, dynamic_ncols=True)
    try:
        fh = _output(jsonl, _open_text, jsonl)
        with fh:
            while max_frames is None or frames < max_frames:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                result = predictor.predict_image(rgb)
                ids = tracker.update([p.body_box for p in result.persons])
                result.persons = [
                    dataclasses.replace(p, track_id=t)
                    for p, t in zip(result.persons, ids, strict=True)
                ]
                result.source = f"{name}#frame{frames}"
                record = {"frame": frames, "time": frames / fps_in, **result.to_json()}
                line = json.dumps(record, ensure_ascii=False) + "\n"
                _output(jsonl, _append, fh, line)
                if writer is None:
                    h, w = rgb.shape[:2]
                    writer = _output(video, _video_writer, video, fps_in, w, h)
                writer.write(cv2.cvtColor(annotate(rgb, result), cv2.COLOR_RGB2BGR))
                frames += 1
                persons += len(result.persons)
                bar.update(1)
    except KeyboardInterrupt:  # webcam: stop cleanly on Ctrl-C
        pass
    finally:
        bar.close()
        cap.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        raise BadSampleError(name, "no frame could be decoded")
    return VideoReport(
        source=name,
        frames=frames,
        persons=persons,
        seconds=time.perf_counter() - start,
        jsonl=jsonl,
        video=video,
        tracks=tracker.num_tracks,
    )

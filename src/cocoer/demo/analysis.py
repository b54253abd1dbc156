"""One request of the demo page, without Gradio: photo in; annotated photo, one table row
per person, a message, the ``cocoer-infer`` JSON and optional Grad-CAM figures out.

The photo is decoded by :func:`cocoer.data.image_io.load_image` (the readers' decoder and
its decompression-bomb guard) and goes through :meth:`cocoer.infer.engine.Engine.
predict_image`, so a person's levels and exclusion sequence are those ``cocoer-infer``
writes for the same file and model. Bad input never raises: it becomes the message.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cocoer.constants import LEVELS
from cocoer.data.image_io import DEFAULT_MAX_PIXELS, load_image
from cocoer.data.records import BadSampleError
from cocoer.demo.boxes import BoxError, parse_boxes, persons_from_boxes
from cocoer.demo.models import PYTORCH, DemoModels
from cocoer.errors import CocoerError
from cocoer.infer.draw import annotate
from cocoer.infer.results import HeadPrediction, ImageResult

#: Columns of the per-person table.
TABLE_HEADERS = (
    "#",
    "exclusion sequence",
    "final (above threshold)",
    "V-I pseudo label",
    *LEVELS,
    "boxes",
)
#: Request folders (JSON, Grad-CAM figures) kept; older ones are deleted.
KEEP_REQUESTS = 64


@dataclass(frozen=True)
class DemoRequest:
    """The page's inputs.

    Attributes:
        photo: path of the uploaded / webcam / example photo (None: nothing given).
        boxes: hand-given body boxes, one ``x1, y1, x2, y2`` line each.
        only_hand_boxes: use only the hand-given boxes (no detection).
        thresholds: ``calibrated`` | ``demo`` | a number in (0, 1).
        detector: ``auto`` | ``insightface`` | ``opencv``.
        engine: ``pytorch`` | ``onnxruntime``.
        saliency: also compute each level's Grad-CAM before and after refinement.
    """

    photo: str | None
    boxes: str = ""
    only_hand_boxes: bool = False
    thresholds: str = "calibrated"
    detector: str = "auto"
    engine: str = PYTORCH
    saliency: bool = False


@dataclass
class DemoOutput:
    """The page's outputs (``image`` RGB uint8 [H, W, 3] or None)."""

    message: str
    image: np.ndarray | None = None
    rows: list[list[str]] = field(default_factory=list)
    json_path: str | None = None
    saliency: list[str] = field(default_factory=list)
    result: ImageResult | None = None


def labels_text(pred: HeadPrediction, max_labels: int = 3) -> str:
    """``name score`` of the predicted labels, highest first (``-`` when none)."""
    shown = [f"{lab.name} {lab.score:.2f}" for lab in pred.labels[:max_labels]]
    more = len(pred.labels) - len(shown)
    return (", ".join(shown) + (f" +{more}" if more > 0 else "")) or "-"


def table_rows(result: ImageResult) -> list[list[str]]:
    """One row per person, in the order of :data:`TABLE_HEADERS`."""
    return [
        [
            str(p.index),
            " -> ".join(p.exclusion_sequence),
            labels_text(p.final),
            labels_text(p.vi),
            *(labels_text(p.levels[m]) for m in LEVELS),
            f"body: {p.body_source}, head: {p.head_source}",
        ]
        for p in result.persons
    ]


class DemoAnalyser:
    """Runs requests against the loaded models (thread-safe; files under ``out_root``).

    Args:
        models: the loaded models.
        max_pixels: decompression-bomb guard (the readers' default).
        out_root: folder of the per-request files (a new temporary folder by default).
    """

    def __init__(
        self,
        models: DemoModels,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        out_root: str | Path | None = None,
    ) -> None:
        self.models = models
        self.max_pixels = max_pixels
        self.out_root = Path(out_root or tempfile.mkdtemp(prefix="cocoer_demo_"))
        self.out_root.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._lock = threading.Lock()

    def _request_dir(self) -> Path:
        with self._lock:
            self._count += 1
            n = self._count
        old = self.out_root / f"request_{n - KEEP_REQUESTS:06d}"
        shutil.rmtree(old, ignore_errors=True)
        path = self.out_root / f"request_{n:06d}"
        path.mkdir()
        return path

    def __call__(self, req: DemoRequest) -> DemoOutput:
        if not req.photo:
            return DemoOutput(
                "Give a photo: upload one, take one with the webcam or pick an example."
            )
        name = Path(req.photo).name
        try:
            engine = self.models.engine(req.engine, req.thresholds, req.detector)
        except CocoerError as exc:
            return DemoOutput(f"Settings: {exc}")
        try:
            image = load_image(req.photo, self.max_pixels)
        except BadSampleError as exc:
            return DemoOutput(f"Cannot use {name}: {exc.reason}")
        rgb = np.asarray(image, dtype=np.uint8)
        try:
            hand = parse_boxes(req.boxes, image.width, image.height)
        except BoxError as exc:
            return DemoOutput(f"Boxes by hand: {exc}", image=rgb)
        if hand or req.only_hand_boxes:  # the detected persons (unless only hand boxes) + hand
            face, _ = engine.detectors()
            persons = [] if req.only_hand_boxes else engine.detect(image)
            persons += persons_from_boxes(rgb, hand, face)
            result = engine.predict_image(image, persons)
        else:  # exactly what cocoer-infer does with the file
            result = engine.predict_image(image)
        if not result.persons:
            return DemoOutput(
                f"No person found in {name} (detector: {req.detector}). Draw a box by hand: "
                "click the top-left, then the bottom-right corner of each person on the photo "
                "(or type x1, y1, x2, y2 lines under *Boxes by hand*), then press Analyse.",
                image=rgb,
            )
        result.source = name
        out_dir = self._request_dir()
        stem = Path(name).stem or "photo"
        json_path = out_dir / f"{stem}.json"
        result.save_json(json_path)
        notes = ""
        figures: list[str] = []
        if req.saliency and req.engine == PYTORCH:
            from cocoer.infer.predictor import Predictor
            from cocoer.interpret.saliency import saliency_for_result

            assert isinstance(engine, Predictor)
            figures = [str(p) for p in saliency_for_result(engine, image, result, out_dir, stem)]
        elif req.saliency:
            notes = " Grad-CAM needs the PyTorch engine."
        n = len(result.persons)
        message = (
            f"{n} person{'s' * (n != 1)} in {name} ({image.width}x{image.height}); "
            f"engine {req.engine}, thresholds {result.thresholds['mode']}, "
            f"detector {req.detector}, {len(hand)} box(es) by hand.{notes}"
        )
        return DemoOutput(
            message,
            image=annotate(rgb, result),
            rows=table_rows(result),
            json_path=str(json_path),
            saliency=figures,
            result=result,
        )

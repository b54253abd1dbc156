"""OpenCV detectors that need no download: Haar face cascades and the HOG people detector.

Both use files shipped inside ``opencv-python`` (``cv2.data.haarcascades``) or built into
OpenCV (``cv2.HOGDescriptor_getDefaultPeopleDetector``). Every box they return has
``source="opencv"``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cocoer.data.records import BBox
from cocoer.detect.boxes import clip_box, nms, xywh_to_xyxy
from cocoer.detect.types import Detection, check_image_rgb
from cocoer.errors import MissingFileError

FRONTAL_CASCADE = "haarcascade_frontalface_default.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"


def _resize_factor(height: int, width: int, max_side: int | None, min_side: int) -> float:
    """Scale that brings the longer side to at most ``max_side`` and the shorter to at least
    ``min_side`` (upscaling capped at x2)."""
    scale = 1.0
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
    elif min(height, width) < min_side:
        scale = min(2.0, min_side / min(height, width))
    return scale


def _load_cascade(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]
    if not path.is_file():
        raise MissingFileError(
            f"OpenCV Haar cascade {name} not found in {path.parent} (is opencv-python installed?)"
        )
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load the Haar cascade {path}")
    return cascade


class OpenCVFaceDetector:
    """Haar-cascade face detector: frontal faces plus left and right profiles, merged by NMS.

    Args:
        scale_factor: cascade pyramid step.
        min_neighbors: detections a candidate needs to be kept (higher: fewer false positives).
        min_size: smallest face side in pixels of the (resized) image.
        max_side: images whose longer side exceeds this are downscaled first (speed).
        use_profile: also run the profile cascade on the image and its mirror.
        iou_threshold: NMS overlap threshold for merging the cascades' boxes.

    The score of a box is ``n / (n + min_neighbors)`` with ``n`` the cascade's neighbour count
    (in ``(0, 1)``; profile boxes are scaled by 0.9 so a frontal box wins a tie).
    """

    source = "opencv"

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 20,
        max_side: int | None = 1024,
        use_profile: bool = True,
        iou_threshold: float = 0.3,
    ) -> None:
        if scale_factor <= 1.0:
            raise ValueError(f"OpenCVFaceDetector: scale_factor must be > 1, got {scale_factor}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.max_side = max_side
        self.use_profile = bool(use_profile)
        self.iou_threshold = float(iou_threshold)
        self._frontal = _load_cascade(FRONTAL_CASCADE)
        self._profile = _load_cascade(PROFILE_CASCADE) if use_profile else None

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> tuple[np.ndarray, list]:
        rects, neighbours = cascade.detectMultiScale2(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return np.asarray(rects).reshape(-1, 4), list(np.asarray(neighbours).ravel())

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, best score first."""
        image = check_image_rgb(image_rgb, "OpenCVFaceDetector input")
        height, width = image.shape[:2]
        scale = _resize_factor(height, width, self.max_side, min_side=0)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale != 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)

        boxes: list[BBox] = []
        scores: list[float] = []

        def add(rects: np.ndarray, neighbours: list, weight: float) -> None:
            for box, n in zip(xywh_to_xyxy(rects, scale), neighbours, strict=True):
                boxes.append(clip_box(box, width, height))
                scores.append(weight * float(n) / (float(n) + self.min_neighbors))

        add(*self._run(self._frontal, gray), weight=1.0)
        if self._profile is not None:
            add(*self._run(self._profile, gray), weight=0.9)
            rects, neighbours = self._run(self._profile, np.ascontiguousarray(gray[:, ::-1]))
            if len(rects):
                rects = rects.copy()
                rects[:, 0] = gray.shape[1] - rects[:, 0] - rects[:, 2]  # mirror x back
            add(rects, neighbours, weight=0.9)

        keep = nms(boxes, scores, iou_threshold=self.iou_threshold)
        return [Detection(box=boxes[i], score=scores[i], source=self.source) for i in keep]


class HOGPersonDetector:
    """OpenCV's default HOG + linear SVM pedestrian detector.

    Args:
        min_score: minimum SVM score kept.
        max_side: the image is resized so its longer side is at most this (speed), and its
            shorter side at least 256 pixels (up to x2) so that people fill the 64 x 128 window.
        win_stride: sliding-window stride in pixels.
        scale: pyramid step.
        iou_threshold: NMS overlap threshold.

    The score is the SVM decision value (unbounded; about 0-3).
    """

    source = "opencv"

    def __init__(
        self,
        min_score: float = 0.3,
        max_side: int | None = 800,
        win_stride: int = 8,
        scale: float = 1.05,
        iou_threshold: float = 0.45,
    ) -> None:
        self.min_score = float(min_score)
        self.max_side = max_side
        self.win_stride = int(win_stride)
        self.scale = float(scale)
        self.iou_threshold = float(iou_threshold)
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """People (full or upper bodies) in an RGB uint8 image, best score first."""
        image = check_image_rgb(image_rgb, "HOGPersonDetector input")
        height, width = image.shape[:2]
        factor = _resize_factor(height, width, self.max_side, min_side=256)
        small = image
        if factor != 1.0:
            interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
            small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=interp)
        if small.shape[0] < 128 or small.shape[1] < 64:
            return []  # smaller than the detection window: nobody can be found
        rects, weights = self._hog.detectMultiScale(
            small,
            winStride=(self.win_stride, self.win_stride),
            padding=(8, 8),
            scale=self.scale,
        )
        boxes = [clip_box(b, width, height) for b in xywh_to_xyxy(np.asarray(rects), factor)]
        scores = [float(w) for w in np.asarray(weights).ravel()]
        pairs = [(b, s) for b, s in zip(boxes, scores, strict=True) if s >= self.min_score]
        keep = nms(
            [b for b, _ in pairs],
            [s for _, s in pairs],
            iou_threshold=self.iou_threshold,
            containment_threshold=None,
        )
        return [Detection(box=pairs[i][0], score=pairs[i][1], source=self.source) for i in keep]

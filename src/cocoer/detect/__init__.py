"""Face and person detection (InsightFace SCRFD or OpenCV, never downloading anything).

- :class:`Detection`, :class:`PersonDetection`: boxes in pixels with their ``source``;
- :class:`InsightFaceDetector`, :class:`InsightFacePersonDetector` (local ONNX files),
  :class:`OpenCVFaceDetector` (Haar cascades), :class:`HOGPersonDetector` (HOG people);
- :func:`build_face_detector`, :func:`build_person_detector`: ``auto|insightface|opencv``;
- :func:`detect_people`: persons (body + head) in a photo; :func:`head_for_body`: the head
  inside a known body box. Both fall back to :mod:`cocoer.data.heuristics`.

Inputs are RGB uint8 ``H x W x 3`` numpy arrays.
"""

from __future__ import annotations

from cocoer.detect.factory import (
    BACKENDS,
    build_face_detector,
    build_person_detector,
    insightface_available,
)
from cocoer.detect.insightface_backend import (
    DEFAULT_MODEL_DIR,
    FACE_MODEL_FILE,
    PERSON_MODEL_FILE,
    InsightFaceDetector,
    InsightFaceModelMissing,
    InsightFacePersonDetector,
    default_providers,
    find_insightface_model,
)
from cocoer.detect.opencv_backend import HOGPersonDetector, OpenCVFaceDetector
from cocoer.detect.people import associate_faces, detect_people, head_for_body, pick_head
from cocoer.detect.types import (
    SOURCES,
    Detection,
    Detector,
    FaceDetector,
    PersonDetection,
    PersonDetector,
    check_image_rgb,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL_DIR",
    "FACE_MODEL_FILE",
    "PERSON_MODEL_FILE",
    "SOURCES",
    "Detection",
    "Detector",
    "FaceDetector",
    "HOGPersonDetector",
    "InsightFaceDetector",
    "InsightFaceModelMissing",
    "InsightFacePersonDetector",
    "OpenCVFaceDetector",
    "PersonDetection",
    "PersonDetector",
    "associate_faces",
    "build_face_detector",
    "build_person_detector",
    "check_image_rgb",
    "default_providers",
    "detect_people",
    "find_insightface_model",
    "head_for_body",
    "insightface_available",
    "pick_head",
]

"""Choose a face / person detector backend: ``auto``, ``insightface`` or ``opencv``.

``auto`` uses InsightFace when its ONNX file is present locally, else OpenCV (nothing is ever
downloaded). ``insightface`` requires the file and raises a clear error without it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cocoer.constants import DETECTOR_BACKENDS
from cocoer.detect.insightface_backend import (
    FACE_MODEL_FILE,
    PERSON_MODEL_FILE,
    InsightFaceDetector,
    InsightFacePersonDetector,
    find_insightface_model,
)
from cocoer.detect.opencv_backend import HOGPersonDetector, OpenCVFaceDetector
from cocoer.detect.types import Detector
from cocoer.errors import check_choice

BACKENDS = DETECTOR_BACKENDS

PathLike = str | os.PathLike[str]


def _check_backend(backend: str) -> None:
    check_choice("detector backend", backend, BACKENDS)


def insightface_available(
    model_dir: PathLike | None = None, filename: str = FACE_MODEL_FILE
) -> bool:
    """Whether the InsightFace model ``filename`` is present (see
    :func:`~cocoer.detect.insightface_backend.find_insightface_model`)."""
    return find_insightface_model(filename, model_dir) is not None


def build_face_detector(
    backend: str = "auto",
    model_dir: PathLike | None = None,
    providers: Sequence[str] | None = None,
) -> Detector:
    """A face detector: :class:`InsightFaceDetector` or :class:`OpenCVFaceDetector`.

    Args:
        backend: ``"auto"`` (InsightFace if ``det_10g.onnx`` is found, else OpenCV),
            ``"insightface"`` (required) or ``"opencv"``.
        model_dir: InsightFace model folder (default ``~/.insightface/models/buffalo_l``).
        providers: onnxruntime providers for InsightFace.
    """
    _check_backend(backend)
    if backend == "opencv":
        return OpenCVFaceDetector()
    if backend == "insightface" or insightface_available(model_dir, FACE_MODEL_FILE):
        return InsightFaceDetector(model_dir, providers=providers)
    return OpenCVFaceDetector()


def build_person_detector(
    backend: str = "auto",
    model_dir: PathLike | None = None,
    providers: Sequence[str] | None = None,
) -> Detector:
    """A person detector: InsightFace SCRFD-person or OpenCV HOG.

    Args:
        backend: ``"auto"`` (SCRFD-person if ``scrfd_person_2.5g.onnx`` is found in
            ``model_dir`` or its parent, else HOG), ``"insightface"`` (required) or
            ``"opencv"``.
        model_dir: InsightFace model folder (default ``~/.insightface/models/buffalo_l``).
        providers: onnxruntime providers for InsightFace.

    The last fallback, a body expanded from a face, is applied by
    :func:`cocoer.detect.people.detect_people` for faces no person box claims.
    """
    _check_backend(backend)
    if backend == "opencv":
        return HOGPersonDetector()
    if backend == "insightface" or insightface_available(model_dir, PERSON_MODEL_FILE):
        return InsightFacePersonDetector(model_dir, providers=providers)
    return HOGPersonDetector()

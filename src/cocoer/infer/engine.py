"""What both inference engines share (torch-free): detection, decisions, the image result.

An engine subclass supplies the model part: :attr:`class_names`, :attr:`multi_label`,
:attr:`image_size`, :attr:`device` and :meth:`model_outputs` (the outputs of
:data:`cocoer.infer.decisions.OUTPUT_KEYS` for a list of persons of one image). The
PyTorch engine is :class:`cocoer.infer.predictor.Predictor`, the ONNX Runtime one
:class:`cocoer.infer.onnx_engine.OnnxPredictor`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from cocoer.data.image_io import load_image
from cocoer.detect import (
    Detector,
    PersonDetection,
    build_face_detector,
    build_person_detector,
    detect_people,
)
from cocoer.errors import InputError
from cocoer.infer.decisions import person_results
from cocoer.infer.results import ImageResult, PersonResult
from cocoer.infer.thresholds import ThresholdPolicy, build_policy

ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray


def to_rgb_image(image: ImageInput) -> tuple[Image.Image, str]:
    """Decode a path, PIL image or RGB uint8 array into a PIL RGB image and a source name."""
    if isinstance(image, Image.Image):
        return (image if image.mode == "RGB" else image.convert("RGB")), "<PIL image>"
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an RGB uint8 H x W x 3 array, got {image.dtype} {image.shape}"
            )
        return Image.fromarray(np.ascontiguousarray(image)), "<array>"
    return load_image(image), str(image)


class Engine:
    """Detection + model + decisions for photos (the model part is the subclass's).

    Args:
        calibrated_thresholds: [k] per-class thresholds stored with the model.
        multi_label: the model's task type (for the threshold policy).
        thresholds: ``calibrated`` | ``demo`` | a float (see :mod:`cocoer.infer.thresholds`).
        detector: ``auto`` | ``insightface`` | ``opencv`` (built on first use).
        insightface_models: folder of the InsightFace ONNX files.
        batch_size: persons per forward pass.
        checkpoint: model path recorded in the results.
    """

    #: where the model runs (a torch.device, or ``onnxruntime:<provider>``), for messages
    device: Any

    def __init__(
        self,
        calibrated_thresholds: Any,
        multi_label: bool,
        thresholds: str | float = "calibrated",
        detector: str = "auto",
        insightface_models: str | os.PathLike[str] | None = None,
        batch_size: int = 16,
        checkpoint: str = "",
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.policy: ThresholdPolicy = build_policy(thresholds, calibrated_thresholds, multi_label)
        self.detector_backend = detector
        self.insightface_models = insightface_models
        self.batch_size = batch_size
        self.checkpoint = checkpoint
        self._face: Detector | None = None
        self._person: Detector | None = None

    # ------------------------------------------------------------------ the model part
    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    @property
    def multi_label(self) -> bool:
        raise NotImplementedError

    def model_outputs(
        self, image: Image.Image, persons: Sequence[PersonDetection]
    ) -> Mapping[str, Any]:
        """Outputs (``OUTPUT_KEYS``, arrays with P rows) for the persons of one image."""
        raise NotImplementedError

    # ------------------------------------------------------------------ detection
    def detectors(self) -> tuple[Detector, Detector]:
        """(face detector, person detector), built on first use."""
        if self._face is None or self._person is None:
            self._face = build_face_detector(self.detector_backend, self.insightface_models)
            self._person = build_person_detector(self.detector_backend, self.insightface_models)
        return self._face, self._person

    def detect(self, image: Image.Image) -> list[PersonDetection]:
        """Persons (body + head boxes) in an RGB image, left to right."""
        face, person = self.detectors()
        return detect_people(np.asarray(image, dtype=np.uint8), face, person)

    # ------------------------------------------------------------------ results
    def to_person_results(
        self, persons: Sequence[PersonDetection], out: Mapping[str, Any]
    ) -> list[PersonResult]:
        """Decisions and records from the model outputs of ``persons`` (same order)."""
        return person_results(persons, out, self.class_names, self.multi_label, self.policy)

    def predict_image(
        self, image: ImageInput, persons: Sequence[PersonDetection] | None = None
    ) -> ImageResult:
        """Detect the persons (unless given) and recognise each one's emotion.

        Args:
            image: a path (decoded with :func:`cocoer.data.image_io.load_image`), a PIL image
                or an RGB uint8 array.
            persons: known persons (boxes in pixels); None runs the detectors.
        """
        pil, source = to_rgb_image(image)
        t0 = time.perf_counter()
        people = list(self.detect(pil) if persons is None else persons)
        t1 = time.perf_counter()
        records: list[PersonResult] = []
        if people:
            records = self.to_person_results(people, self.model_outputs(pil, people))
        t2 = time.perf_counter()
        face, person = (self._face, self._person) if persons is None else (None, None)
        return ImageResult(
            source=source,
            width=pil.width,
            height=pil.height,
            persons=records,
            class_names=self.class_names,
            multi_label=bool(self.multi_label),
            thresholds=self.policy.describe(),
            detectors={
                "face": type(face).__name__ if face is not None else "given",
                "person": type(person).__name__ if person is not None else "given",
            },
            checkpoint=self.checkpoint,
            seconds={"detection": t1 - t0, "model": t2 - t1},
        )

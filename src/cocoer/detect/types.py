"""Result types and detector protocols of :mod:`cocoer.detect`.

Every box is in pixels of the image given to the detector, ``(x1, y1, x2, y2)``, and carries
the name of what produced it (``source``): ``"insightface"``, ``"opencv"``, ``"heuristic"`` or
``"annotation"`` (the vocabulary of the box cache, :mod:`cocoer.data.box_cache`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from cocoer.data.records import BBox

#: Box sources, as written to the box cache.
SOURCES: tuple[str, ...] = ("annotation", "insightface", "opencv", "heuristic")


@dataclass(frozen=True)
class Detection:
    """One detected box.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the input image.
        score: detector confidence (higher is better; see each detector for its scale).
        source: what produced the box (``"insightface"``, ``"opencv"``, ``"heuristic"``).
    """

    box: BBox
    score: float
    source: str


@dataclass(frozen=True)
class PersonDetection:
    """One person found in an image: a body box and a head box, each with its source.

    ``score`` is the person detector's score when the body box comes from a person detector,
    else the face detector's score.
    """

    body_box: BBox
    body_source: str
    head_box: BBox
    head_source: str
    score: float


@runtime_checkable
class Detector(Protocol):
    """Anything with ``detect(image_rgb) -> list[Detection]`` and a ``source`` name."""

    source: str

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Boxes found in an RGB uint8 ``H x W x 3`` image, best first."""
        ...


#: Face detectors and person detectors share one interface.
FaceDetector = Detector
PersonDetector = Detector


def check_image_rgb(image: np.ndarray, where: str = "image") -> np.ndarray:
    """Validate an RGB uint8 ``H x W x 3`` array (raises ``ValueError`` naming ``where``)."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{where}: expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{where}: expected an H x W x 3 RGB array, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: expected dtype uint8, got {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{where}: empty image of shape {image.shape}")
    return image

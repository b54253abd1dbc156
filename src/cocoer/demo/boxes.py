"""Body boxes given by hand on the demo page, for persons the detectors missed.

A box is one line ``x1, y1, x2, y2`` in pixels of the photo (the page fills the lines in
from two clicks on the photo, top-left then bottom-right corner, or the user types them).
The head inside a hand-given body box comes from the face detector, else the documented
heuristic (:func:`cocoer.detect.head_for_body`); the body box's source is ``"hand"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cocoer.data.records import BBox
from cocoer.detect import Detector, PersonDetection, head_for_body
from cocoer.errors import CocoerError

#: ``body_source`` of a box given by hand.
HAND = "hand"


class BoxError(CocoerError, ValueError):
    """A hand-given box line that cannot be used (the message names the line)."""


def parse_boxes(text: str, width: int, height: int) -> list[BBox]:
    """Boxes ``[x1, y1, x2, y2]`` from ``text`` (one per line; blank lines and ``#``
    comments ignored), clipped to the ``width`` x ``height`` photo.

    Raises:
        BoxError: a line without four numbers, or a box with no area inside the photo.
    """
    boxes: list[BBox] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in line.replace(",", " ").split() if p]
        try:
            x1, y1, x2, y2 = (float(p) for p in parts)
        except ValueError:
            raise BoxError(
                f"box line {number} {raw.strip()!r}: expected four numbers x1, y1, x2, y2"
            ) from None
        if not all(np.isfinite([x1, y1, x2, y2])):
            raise BoxError(f"box line {number} {raw.strip()!r}: numbers must be finite")
        x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
        y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
        if x2 - x1 < 2 or y2 - y1 < 2:
            raise BoxError(
                f"box line {number} {raw.strip()!r}: no area inside the {width}x{height} photo"
            )
        boxes.append((x1, y1, x2, y2))
    return boxes


def persons_from_boxes(
    image_rgb: np.ndarray, boxes: Sequence[BBox], face_detector: Detector
) -> list[PersonDetection]:
    """One person per hand-given body box; the head from ``face_detector`` inside it (else
    the heuristic head box)."""
    persons = []
    for box in boxes:
        head, head_source = head_for_body(image_rgb, box, face_detector)
        persons.append(PersonDetection(box, HAND, head, head_source, 1.0))
    return persons


def add_corner(
    pending: Sequence[float] | None, text: str, x: float, y: float
) -> tuple[list[float] | None, str]:
    """A click at (x, y) on the photo: the first click of a pair is kept as ``pending``;
    the second one appends the box of the two corners to ``text`` (one line per box).

    Returns:
        (the new pending corner or None, the new box text).
    """
    if pending is None:
        return [float(x), float(y)], text
    x0, y0 = pending
    line = f"{min(x0, x):.0f}, {min(y0, y):.0f}, {max(x0, x):.0f}, {max(y0, y):.0f}"
    body = (text or "").rstrip("\n")
    return None, (f"{body}\n{line}" if body else line)

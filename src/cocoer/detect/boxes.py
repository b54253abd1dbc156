"""Small box geometry helpers (pixel ``(x1, y1, x2, y2)`` boxes) used by the detectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cocoer.data.records import BBox


def box_area(box: BBox) -> float:
    """Area of a box (0 for an empty or inverted box)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def box_center(box: BBox) -> tuple[float, float]:
    """Centre ``(cx, cy)`` of a box."""
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def intersection(a: BBox, b: BBox) -> float:
    """Area of the intersection of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def iou(a: BBox, b: BBox) -> float:
    """Intersection over union (0 when both boxes are empty)."""
    inter = intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def containment(inner: BBox, outer: BBox) -> float:
    """Fraction of ``inner``'s area that lies inside ``outer`` (0 for an empty ``inner``)."""
    area = box_area(inner)
    return intersection(inner, outer) / area if area > 0 else 0.0


def contains_point(box: BBox, x: float, y: float) -> bool:
    """Whether the point ``(x, y)`` lies inside ``box`` (borders included)."""
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def clip_box(box: BBox, width: int, height: int) -> BBox:
    """Clip a box to the image ``[0, width] x [0, height]``."""
    x1 = min(max(float(box[0]), 0.0), float(width))
    y1 = min(max(float(box[1]), 0.0), float(height))
    x2 = min(max(float(box[2]), 0.0), float(width))
    y2 = min(max(float(box[3]), 0.0), float(height))
    return (x1, y1, x2, y2)


def union_box(a: BBox, b: BBox) -> BBox:
    """Smallest box containing both boxes."""
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def nms(
    boxes: Sequence[BBox],
    scores: Sequence[float],
    iou_threshold: float = 0.3,
    containment_threshold: float | None = 0.7,
) -> list[int]:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    A box is suppressed by a better-scored kept box when their IoU exceeds ``iou_threshold``
    or, if ``containment_threshold`` is set, when more than that fraction of the SMALLER
    box lies inside the other (cascade detectors often return nested boxes on one face).
    Ties in score keep the input order.
    """
    if len(boxes) != len(scores):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    order = sorted(range(len(boxes)), key=lambda i: -float(scores[i]))
    keep: list[int] = []
    for i in order:
        suppressed = False
        for j in keep:
            if iou(boxes[i], boxes[j]) > iou_threshold:
                suppressed = True
                break
            if containment_threshold is not None:
                small, big = (
                    (boxes[i], boxes[j])
                    if box_area(boxes[i]) <= box_area(boxes[j])
                    else (boxes[j], boxes[i])
                )
                if containment(small, big) > containment_threshold:
                    suppressed = True
                    break
        if not suppressed:
            keep.append(i)
    return keep


def xywh_to_xyxy(rects: np.ndarray, scale: float = 1.0) -> list[BBox]:
    """OpenCV ``(x, y, w, h)`` rectangles (in an image resized by ``scale``) to original xyxy."""
    out: list[BBox] = []
    for x, y, w, h in np.asarray(rects, dtype=np.float64).reshape(-1, 4):
        out.append((x / scale, y / scale, (x + w) / scale, (y + h) / scale))
    return out

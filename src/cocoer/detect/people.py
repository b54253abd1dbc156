"""Persons in a photo (body + head boxes) and the head inside a known body box.

Used by ``cocoer-prepare`` (EMOTIC heads, CAER-S faces and bodies) and by inference on photos.
The fallbacks are the documented heuristics of :mod:`cocoer.data.heuristics`:
``body_from_face`` for a face no person box claims and ``head_from_body`` for a person box
without a face; their boxes have ``source="heuristic"``.
"""

from __future__ import annotations

import cv2
import numpy as np

from cocoer.data.heuristics import body_from_face, head_from_body
from cocoer.data.records import BBox
from cocoer.detect.boxes import (
    box_area,
    box_center,
    clip_box,
    containment,
    contains_point,
    union_box,
)
from cocoer.detect.types import Detection, Detector, PersonDetection, check_image_rgb

HEURISTIC = "heuristic"


def associate_faces(
    faces: list[Detection], persons: list[Detection]
) -> list[tuple[int | None, int | None]]:
    """Match faces to person boxes one-to-one.

    A face may match a person whose box contains the face centre; pairs are taken greedily by
    containment (fraction of the face inside the body box, higher first), then by a smaller
    body (the tighter person), then by face score. Returns ``(face_index, person_index)``
    pairs: matched pairs, then unmatched faces ``(i, None)``, then unmatched persons
    ``(None, j)``.
    """
    candidates: list[tuple[float, float, float, int, int]] = []
    for i, face in enumerate(faces):
        cx, cy = box_center(face.box)
        for j, person in enumerate(persons):
            if contains_point(person.box, cx, cy):
                candidates.append(
                    (-containment(face.box, person.box), box_area(person.box), -face.score, i, j)
                )
    candidates.sort()
    used_faces: set[int] = set()
    used_persons: set[int] = set()
    pairs: list[tuple[int | None, int | None]] = []
    for *_, i, j in candidates:
        if i in used_faces or j in used_persons:
            continue
        used_faces.add(i)
        used_persons.add(j)
        pairs.append((i, j))
    pairs += [(i, None) for i in range(len(faces)) if i not in used_faces]
    pairs += [(None, j) for j in range(len(persons)) if j not in used_persons]
    return pairs


def detect_people(
    image_rgb: np.ndarray, face_detector: Detector, person_detector: Detector | None
) -> list[PersonDetection]:
    """All persons in an image, sorted left to right (by body-box centre).

    Runs the face detector and the person detector once each (``person_detector=None`` skips
    person detection: every body then comes from ``body_from_face``), matches faces to person
    boxes with :func:`associate_faces`, and completes each person:

    - face + person box: the body box is the person box, grown if needed to contain the face;
    - face only: body = ``body_from_face(face, W, H)`` (source ``"heuristic"``);
    - person box only: head = ``head_from_body(body)`` (source ``"heuristic"``).
    """
    image = check_image_rgb(image_rgb, "detect_people input")
    height, width = image.shape[:2]
    faces = face_detector.detect(image)
    persons = person_detector.detect(image) if person_detector is not None else []
    out: list[PersonDetection] = []
    for fi, pi in associate_faces(faces, persons):
        if fi is not None and pi is not None:
            face, person = faces[fi], persons[pi]
            body = clip_box(union_box(person.box, face.box), width, height)
            out.append(PersonDetection(body, person.source, face.box, face.source, person.score))
        elif fi is not None:
            face = faces[fi]
            body = clip_box(body_from_face(face.box, width, height), width, height)
            out.append(PersonDetection(body, HEURISTIC, face.box, face.source, face.score))
        elif pi is not None:
            person = persons[pi]
            head = clip_box(head_from_body(person.box), width, height)
            out.append(PersonDetection(person.box, person.source, head, HEURISTIC, person.score))
    out.sort(key=lambda p: (box_center(p.body_box)[0], box_center(p.body_box)[1]))
    return out


def pick_head(faces: list[Detection], body_box: BBox) -> Detection | None:
    """The face that best fits a body box: large and near the expected head position.

    Only faces whose centre lies inside ``body_box`` are considered. The value maximised is
    ``area / body_area - (dx**2 + dy**2)``, with ``dx, dy`` the face centre's offsets from
    the point (horizontal centre, top quarter) of the body box, in units of its width/height.
    """
    bw = max(body_box[2] - body_box[0], 1e-6)
    bh = max(body_box[3] - body_box[1], 1e-6)
    ex, ey = body_box[0] + 0.5 * bw, body_box[1] + 0.25 * bh
    best: tuple[float, Detection] | None = None
    for face in faces:
        cx, cy = box_center(face.box)
        if not contains_point(body_box, cx, cy):
            continue
        value = box_area(face.box) / (bw * bh) - (((cx - ex) / bw) ** 2 + ((cy - ey) / bh) ** 2)
        if best is None or value > best[0]:
            best = (value, face)
    return None if best is None else best[1]


def head_for_body(
    image_rgb: np.ndarray,
    body_box: BBox,
    face_detector: Detector,
    min_crop_side: int = 160,
) -> tuple[BBox, str]:
    """The head box inside a known body box, and its source.

    Crops the body box (clipped to the image), upsamples small crops so the shorter side is at
    least ``min_crop_side`` pixels (at most x4), runs ``face_detector`` once on the crop, maps
    the faces back to image pixels and picks one with :func:`pick_head`. Without a face (or
    for a body box outside the image) the head is ``head_from_body(body_box)`` with source
    ``"heuristic"``.
    """
    image = check_image_rgb(image_rgb, "head_for_body input")
    height, width = image.shape[:2]
    fallback = (clip_box(head_from_body(body_box), width, height), HEURISTIC)
    x1, y1, x2, y2 = clip_box(body_box, width, height)
    ix1, iy1 = int(np.floor(x1)), int(np.floor(y1))
    ix2, iy2 = int(np.ceil(x2)), int(np.ceil(y2))
    if ix2 - ix1 < 2 or iy2 - iy1 < 2:
        return fallback
    crop = image[iy1:iy2, ix1:ix2]
    scale = 1.0
    short = min(crop.shape[0], crop.shape[1])
    if short < min_crop_side:
        scale = min(4.0, min_crop_side / short)
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    faces = [
        Detection(
            box=clip_box(
                (
                    ix1 + d.box[0] / scale,
                    iy1 + d.box[1] / scale,
                    ix1 + d.box[2] / scale,
                    iy1 + d.box[3] / scale,
                ),
                width,
                height,
            ),
            score=d.score,
            source=d.source,
        )
        for d in face_detector.detect(np.ascontiguousarray(crop))
    ]
    face = pick_head(faces, (x1, y1, x2, y2))
    if face is None:
        return fallback
    return face.box, face.source

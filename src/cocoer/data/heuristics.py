"""Documented fallbacks for missing boxes, and box sanitising.

Fallback rules (all boxes are pixel ``(x1, y1, x2, y2)`` in the original image):

``head_from_body(body)``
    A square of side ``s = min(HEAD_WIDTH_FRAC * bw, HEAD_HEIGHT_FRAC * bh)`` (bw, bh = body
    width and height), horizontally centred on the body box, its top ``HEAD_TOP_OFFSET_FRAC * bh``
    below the body top. With the defaults: side = min(0.5 bw, 0.3 bh), top = y1 + 0.02 bh.

``body_from_face(face, W, H)``
    The face box (width fw, height fh, centre cx) expanded to ``BODY_WIDTH_FACES * fw`` wide
    (centred on cx), from ``BODY_UP_FACES * fh`` above the face top down to ``BODY_DOWN_FACES *
    fh`` below the face bottom, clipped to the image: x in [cx - 1.5 fw, cx + 1.5 fw],
    y in [y1 - 0.25 fh, y2 + 4 fh].

``full_image_box(W, H)``
    When neither a body nor a face is known (e.g. CAER-S without a box cache), the body is the
    whole image ``(0, 0, W, H)``; the head then follows ``head_from_body``.
"""

from __future__ import annotations

import math

from cocoer.data.records import BBox

HEAD_WIDTH_FRAC = 0.5
HEAD_HEIGHT_FRAC = 0.3
HEAD_TOP_OFFSET_FRAC = 0.02

BODY_WIDTH_FACES = 3.0
BODY_UP_FACES = 0.25
BODY_DOWN_FACES = 4.0


def head_from_body(body_box: BBox) -> BBox:
    """Head box guessed as the top-centre square of the body box (fractions in module doc)."""
    x1, y1, x2, y2 = (float(v) for v in body_box)
    bw, bh = x2 - x1, y2 - y1
    side = min(HEAD_WIDTH_FRAC * bw, HEAD_HEIGHT_FRAC * bh)
    cx = 0.5 * (x1 + x2)
    top = y1 + HEAD_TOP_OFFSET_FRAC * bh
    return (cx - 0.5 * side, top, cx + 0.5 * side, top + side)


def body_from_face(face_box: BBox, width: int, height: int) -> BBox:
    """Body box guessed by expanding the face box downward, clipped to ``width`` x ``height``."""
    x1, y1, x2, y2 = (float(v) for v in face_box)
    fw, fh = x2 - x1, y2 - y1
    cx = 0.5 * (x1 + x2)
    box = (
        cx - 0.5 * BODY_WIDTH_FACES * fw,
        y1 - BODY_UP_FACES * fh,
        cx + 0.5 * BODY_WIDTH_FACES * fw,
        y2 + BODY_DOWN_FACES * fh,
    )
    return clip_box(box, width, height)


def full_image_box(width: int, height: int) -> BBox:
    """The whole image as a box."""
    return (0.0, 0.0, float(width), float(height))


def clip_box(box: BBox, width: float, height: float) -> BBox:
    """Clip a box to ``[0, width] x [0, height]``."""
    x1, y1, x2, y2 = box
    return (
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    )


def sanitize_box(
    box: BBox, width: float | None, height: float | None
) -> tuple[BBox | None, list[str]]:
    """Repair a box: re-order inverted corners, clip to the image; refuse empty boxes.

    Args:
        box: ``(x1, y1, x2, y2)`` in pixels.
        width, height: image size, or None to skip clipping.

    Returns:
        ``(box, notes)``: the repaired box, or None when it is non-finite or has zero area after
        re-ordering/clipping; ``notes`` lists what was done, each note starting with
        ``"inverted box"``, ``"box outside the image"``, ``"non-finite box"`` or ``"zero-area
        box"``.
    """
    notes: list[str] = []
    vals = [float(v) for v in box]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        return None, [f"non-finite box: {box!r}"]
    x1, y1, x2, y2 = vals
    if x2 < x1 or y2 < y1:
        notes.append(f"inverted box re-ordered: {tuple(vals)}")
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
    out: BBox = (x1, y1, x2, y2)
    if width is not None and height is not None:
        clipped = clip_box(out, float(width), float(height))
        if clipped != out:
            notes.append(f"box outside the image clipped to {width}x{height}: {out}")
            out = clipped
    if out[2] - out[0] <= 0 or out[3] - out[1] <= 0:
        return None, [*notes, f"zero-area box: {out}"]
    return out, notes


def tag_note(note: str, what: str) -> str:
    """Insert ``(what)`` after a note's kind: ``"zero-area box: ..."`` -> ``"zero-area box
    (body_bbox): ..."`` so reports group by kind and still say which box."""
    kind, sep, rest = note.partition(":")
    return f"{kind} ({what}){sep}{rest}"

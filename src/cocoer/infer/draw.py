"""Annotated images: body box, head box, person index (or track id) and top labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cocoer.infer.results import ImageResult, PersonResult
from cocoer.utils.files import atomic_write_bytes, printable

#: RGB colours cycled over persons.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def person_colour(person: PersonResult) -> tuple[int, int, int]:
    """Colour of a person: by track id when tracked, else by index."""
    key = person.track_id if person.track_id is not None else person.index
    return PALETTE[key % len(PALETTE)]


def label_lines(person: PersonResult, max_labels: int = 3) -> list[str]:
    """Text drawn beside a person: ``#i`` (or ``id i``), the top predicted labels, and with the
    VAD head its final valence / arousal / dominance."""
    tag = f"id {person.track_id}" if person.track_id is not None else f"#{person.index}"
    labels = person.final.labels[:max_labels]
    lines = [tag] + [f"{printable(lab.name, 40)} {lab.score:.2f}" for lab in labels]
    if not labels:
        lines.append("(no label)")
    if person.vad is not None:  # the VAD head's final values
        v = person.vad["final"]
        lines.append(f"V {v['valence']:.1f} A {v['arousal']:.1f} D {v['dominance']:.1f}")
    return lines


def _text_block(
    img: np.ndarray, lines: list[str], x: int, y: int, colour: tuple[int, int, int], scale: float
) -> None:
    """Lines of text on a filled background, top-left corner at (x, y), kept inside img."""
    h, w = img.shape[:2]
    thick = max(1, round(scale * 2))
    sizes = [cv2.getTextSize(t, FONT, scale, thick)[0] for t in lines]
    line_h = max(s[1] for s in sizes) + 6
    block_w = max(s[0] for s in sizes) + 6
    x = int(min(max(0, x), max(0, w - block_w)))
    y = int(min(max(0, y), max(0, h - line_h * len(lines))))
    cv2.rectangle(img, (x, y), (x + block_w, y + line_h * len(lines)), colour, -1)
    for i, text in enumerate(lines):
        cv2.putText(
            img, text, (x + 3, y + (i + 1) * line_h - 4), FONT, scale, (255, 255, 255), thick
        )


def annotate(image_rgb: np.ndarray, result: ImageResult, max_labels: int = 3) -> np.ndarray:
    """Draw every person of ``result`` on a copy of an RGB uint8 image (same size).

    Body box: thick line; head box: thin line; the text block (index and top labels) sits
    just below the head box so that it does not hide the face.
    """
    img = np.ascontiguousarray(image_rgb.copy())
    h, w = img.shape[:2]
    scale = max(0.3, min(0.9, min(h, w) / 1400.0))
    thick = max(1, round(min(h, w) / 300))
    for p in result.persons:
        colour = person_colour(p)
        bx1, by1, bx2, by2 = (round(v) for v in p.body_box)
        hx1, hy1, hx2, hy2 = (round(v) for v in p.head_box)
        cv2.rectangle(img, (bx1, by1), (bx2, by2), colour, thick + 1)
        cv2.rectangle(img, (hx1, hy1), (hx2, hy2), colour, thick)
        _text_block(img, label_lines(p, max_labels), hx1, hy2 + thick + 1, colour, scale)
    return img


def save_rgb(path: str, image_rgb: np.ndarray, quality: int = 92) -> None:
    """Write an RGB uint8 image, encoded by OpenCV after ``path``'s suffix (JPEG quality for
    .jpg), atomically (:func:`cocoer.utils.files.atomic_write`); raises OSError naming
    ``path`` (a full disk, a folder that is not writable, a suffix OpenCV cannot encode)."""
    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    try:
        ok, data = cv2.imencode(Path(path).suffix, bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    except cv2.error:
        ok = False
    if not ok:
        raise OSError(None, "OpenCV could not encode the image", str(path))
    atomic_write_bytes(path, data.tobytes())

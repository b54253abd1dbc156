"""Bad inputs of the generated EMOTIC data, as a table of rows applied in one loop.

Each :class:`BadCase` row says what is wrong with one person's image or annotation, what the
data layer must do with it (``expected``: ``"load"``, ``"fixed"`` or ``"skip"``) and a substring
of the reason it must report. :func:`emotic_bad_cases` draws a fresh one-person image for every
row, applies the row's annotation edit and file writer, and lists the case in the meta file.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cocoer.data.synthetic.emotic_writer import annotator_records
from cocoer.data.synthetic.meta import person_row
from cocoer.data.synthetic.render import PALETTE, layout_persons, render, save_image

W, H = 120, 100
FOLDER = "mscoco/images"

#: ``write(path, image, rng)``: how a row's file is written (or not).
Writer = Callable[[Path, Image.Image, np.random.Generator], None]
#: ``edit(person) -> person``: how a row's annotation is spoiled (boxes, labels).
Edit = Callable[[dict[str, Any]], dict[str, Any]]


def write_png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny, well-formed PNG (IHDR + IEND) that claims ``width`` x ``height`` pixels: a
    decompression bomb for any reader that trusts the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


# ----------------------------------------------------------------------------- file writers
def _jpeg(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    save_image(img, path)


def _converted(mode: str) -> Writer:
    return lambda path, img, rng: save_image(img.convert(mode), path)


def _rgba(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    rgba = img.convert("RGBA")
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, : W // 6] = 0
    rgba.putalpha(Image.fromarray(alpha))
    save_image(rgba, path, "PNG")


def _gray16(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    g16 = (np.asarray(img.convert("L"), np.uint16) * 257).astype(np.uint16)
    save_image(Image.fromarray(g16), path, "PNG")


def _exif_rotated(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    """Stored rotated; EXIF orientation 6 turns it back to the annotated frame."""
    exif = Image.Exif()
    exif[0x0112] = 6
    save_image(img.transpose(Image.Transpose.ROTATE_90), path, exif=exif.tobytes())


def _random_bytes(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rng.bytes(2000))


def _truncated(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])


def _bomb(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    write_png_header_only(path, 30000, 30000)


def _nothing(path: Path, img: Image.Image, rng: np.random.Generator) -> None:
    return None


# ----------------------------------------------------------------------------- annotation edits
def _body(fn: Callable[[list[float]], list[float]]) -> Edit:
    return lambda p: {**p, "body_bbox": fn(p["body_bbox"])}


def _categories(cats: list[str]) -> Edit:
    def edit(p: dict[str, Any]) -> dict[str, Any]:
        ann = {"categories": cats, "continuous": (5.0, 5.0, 5.0)}
        return {**p, "annotators": [ann], "combined_categories": cats}

    return edit


def _continuous(values: tuple[float, float, float] | None) -> Edit:
    """The (single, train) annotator's continuous values replaced by ``values``."""

    def edit(p: dict[str, Any]) -> dict[str, Any]:
        ann = {**p["annotators"][0], "continuous": values}
        return {**p, "annotators": [ann], "combined_continuous": values}

    return edit


@dataclass(frozen=True)
class BadCase:
    """One bad input: the person (class ``label``) drawn, spoiled by ``edit``, written by
    ``write``; ``companion``: the image also holds the unspoiled person (who must load)."""

    kind: str
    expected: str
    reason: str
    label: int
    write: Writer = _jpeg
    edit: Edit | None = None
    split: str = "train"
    ext: str = "jpg"
    companion: bool = False


EMOTIC_BAD_CASES: tuple[BadCase, ...] = (
    # valid inputs in unusual formats (must load)
    BadCase("grayscale", "load", "", 0, _converted("L")),
    BadCase("rgba", "load", "", 1, _rgba, ext="png"),
    BadCase("cmyk", "load", "", 2, _converted("CMYK")),
    BadCase("gray16", "load", "", 3, _gray16, ext="png"),
    BadCase("exif_rotated", "load", "", 4, _exif_rotated),
    # repaired boxes (kept, reported as fixed)
    BadCase(
        "box_outside",
        "fixed",
        "box outside the image",
        5,
        edit=_body(lambda b: [b[0], b[1], W + 40.0, H + 30.0]),
    ),
    BadCase(
        "inverted_box", "fixed", "inverted box", 6, edit=_body(lambda b: [b[2], b[3], b[0], b[1]])
    ),
    # skipped persons / images
    BadCase(
        "zero_area_box", "skip", "zero-area box", 7, edit=_body(lambda b: [b[0], b[1], b[0], b[3]])
    ),
    BadCase(
        "box_fully_outside",
        "skip",
        "zero-area box",
        8,
        edit=_body(lambda b: [W + 10.0, H + 10.0, W + 50.0, H + 60.0]),
    ),
    BadCase(
        "unknown_category",
        "skip",
        "unknown category",
        9,
        edit=_categories(["Boredom"]),
        companion=True,
    ),
    BadCase("empty_labels", "skip", "empty label set", 10, edit=_categories([]), companion=True),
    # bad continuous values: the person is kept for its categories, its values are dropped
    BadCase(
        "vad_out_of_range",
        "fixed",
        "continuous labels dropped",
        15,
        edit=_continuous((11.0, 5.0, 5.0)),
    ),
    BadCase(
        "vad_nan",
        "fixed",
        "continuous labels dropped",
        16,
        edit=_continuous((5.0, float("nan"), 5.0)),
    ),
    BadCase("vad_missing", "fixed", "continuous labels dropped", 17, edit=_continuous(None)),
    BadCase("unreadable", "skip", "unreadable image", 11, _random_bytes),
    BadCase("truncated", "skip", "truncated image", 12, _truncated),
    BadCase("decompression_bomb", "skip", "decompression bomb", 14, _bomb, ext="png"),
    BadCase("missing", "skip", "missing file", 13, _nothing, split="test"),
)


def simple_person(
    rng: np.random.Generator, width: int, height: int, labels: list[int], split: str
) -> tuple[Image.Image, dict[str, Any]]:
    """A one-person image without conflict and its EMOTIC person record."""
    layout = layout_persons(rng, width, height, 1)
    img = render(rng, width, height, layout, labels, [(labels, labels)], list(PALETTE))
    anns, combined, cont = annotator_records(rng, labels, split)
    person = {
        "body_bbox": [float(v) for v in layout[0][0]],
        "head_bbox": None,
        "annotators": anns,
        "combined_categories": combined,
        "combined_continuous": cont,
        "gender": "Female",
        "age": "Adult",
    }
    return img, person


def emotic_bad_cases(
    root: Path,
    rng: np.random.Generator,
    splits: dict[str, list[dict[str, Any]]],
    meta_persons: list[dict[str, Any]],
    cases: tuple[BadCase, ...] = EMOTIC_BAD_CASES,
) -> list[dict[str, Any]]:
    """Append the bad inputs to their splits (and valid persons to ``meta_persons``); returns
    the meta file's ``bad_cases`` list (one row per person of a bad image)."""
    bad: list[dict[str, Any]] = []
    for case in cases:
        img, good = simple_person(rng, W, H, [case.label], case.split)
        spoiled = case.edit(good) if case.edit is not None else good
        filename = f"bad_{case.kind}.{case.ext}"
        case.write(root / FOLDER / filename, img, rng)
        persons = [spoiled, *([good] if case.companion else [])]
        labels = [
            [] if case.companion else [case.label],
            *([[case.label]] if case.companion else []),
        ]
        image = f"{FOLDER}/{filename}"
        splits[case.split].append(
            {"filename": filename, "folder": FOLDER, "size": (W, H), "persons": persons}
        )
        for i, (p, lab) in enumerate(zip(persons, labels, strict=True)):
            is_bad = i == 0
            expected = case.expected if is_bad else "load"
            bad.append(
                {
                    "kind": case.kind if is_bad else f"{case.kind}:companion",
                    "image": image,
                    "person": i,
                    "split": case.split,
                    "expected": expected,
                    "reason": case.reason if is_bad else "",
                }
            )
            if expected != "skip":  # a valid person: listed with the others so none is lost
                meta_persons.append(
                    person_row(
                        image,
                        i,
                        case.split,
                        lab,
                        p["body_bbox"],
                        None,
                        head_annotated=False,
                        continuous=(
                            None
                            if p["combined_continuous"] is None
                            else list(p["combined_continuous"])
                        ),
                        bad_case=case.kind if is_bad else None,
                    )
                )
    return bad

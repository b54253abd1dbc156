"""Generated datasets in the real EMOTIC and CAER-S layouts (for tests, smoke runs, demos).

Labels are easy to learn from pixels, at every level: class ``i`` has a solid colour
``PALETTE[i]`` (the 26 colours ``{0, 128, 255}^3`` minus mid-grey). For every person each shown
class is painted

- on the head: vertical colour strips filling the head box (visible above and beside a
  face-like pattern: skin ellipse in the lower two thirds, dark eyes and mouth);
- on the body: horizontal stripes on the torso (body box below the head);
- in the context: round blobs outside every body box.

The background is low-saturation noise. A fraction ``conflict_rate`` of the images has ONE level
(head, body or context, uniformly) showing a wrong class instead of one true class; the side file
``cocoer_synthetic_meta.json`` records, per person, the true labels, the conflicting level and
the classes involved (and the bad cases, below). Everything is deterministic given ``seed``.

EMOTIC (:func:`generate_emotic`): JPEGs under ``emodb_small/images``, ``ade20k/images``,
``framesdb/images``, ``mscoco/images``; ``Annotations/Annotations.mat`` written with
``scipy.io.savemat`` as MATLAB struct arrays laid out like the official file (see
:mod:`cocoer.data.emotic`), and the CSV export ``emotic_pre/{train,val,test}.csv``. About 30% of
the images have two persons (sharing the label set). The head is drawn at
``head_from_body(body)`` plus a small jitter; ``head_box_fraction`` of the persons also carry
an annotated ``head_bbox``.

CAER-S (:func:`generate_caer_s`): PNGs in ``CAER-S/{train,test}/<Emotion>/``, one person per
image, and (``box_cache=True``) the true boxes in ``CAER-S/cocoer_boxes.jsonl`` with source
``"annotation"``.

``bad_cases=True`` adds inputs the data layer must handle (listed in the meta file under
``"bad_cases"`` with ``expected`` = ``"skip"``, ``"fixed"`` or ``"load"`` and a ``reason``
substring of the reported reason).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cocoer.constants import CAER_S_CLASSES, EMOTIC_CATEGORIES
from cocoer.data.box_cache import BoxCacheWriter
from cocoer.data.emotic import CSV_COLUMNS
from cocoer.data.heuristics import head_from_body

#: 26 distinct colours: {0, 128, 255}^3 without (128, 128, 128); class i -> PALETTE[i].
PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (r, g, b)
    for r in (0, 128, 255)
    for g in (0, 128, 255)
    for b in (0, 128, 255)
    if (r, g, b) != (128, 128, 128)
)
#: Palette indices used for the 7 CAER-S classes (saturated, far apart).
CAER_S_COLOURS: tuple[int, ...] = (
    PALETTE.index((255, 0, 0)),
    PALETTE.index((0, 255, 0)),
    PALETTE.index((0, 0, 255)),
    PALETTE.index((255, 255, 0)),
    PALETTE.index((255, 0, 255)),
    PALETTE.index((0, 255, 255)),
    PALETTE.index((255, 255, 255)),
)
EMOTIC_FOLDERS = ("emodb_small/images", "ade20k/images", "framesdb/images", "mscoco/images")
META_NAME = "cocoer_synthetic_meta.json"
LEVEL_NAMES = ("context", "body", "head")

SKIN = (224, 172, 140)
EYE = (70, 45, 30)
MOUTH = (185, 90, 80)


# ----------------------------------------------------------------------------- drawing
def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Low-saturation noise around a random grey level, with a mild gradient."""
    base = rng.uniform(95, 165)
    grad = np.linspace(-12, 12, width)[None, :] * rng.choice([-1.0, 1.0])
    lum = base + grad + rng.normal(0, 10, (height, width))
    chroma = rng.normal(0, 4, (height, width, 3)) + rng.normal(0, 6, 3)
    arr = np.clip(lum[..., None] + chroma, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _rint(v: float) -> int:
    return round(float(v))


def _draw_head(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], colours: list[tuple[int, int, int]]
) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    n = len(colours)
    for i, c in enumerate(colours):  # vertical strips ("hair / hat") behind the face
        sx1 = x1 + _rint(i * w / n)
        sx2 = x1 + _rint((i + 1) * w / n) - 1
        draw.rectangle((sx1, y1, max(sx1, sx2), y2 - 1), fill=c)
    fx1, fy1 = x1 + 0.2 * w, y1 + 0.36 * h  # the strips stay visible above and beside the face
    fx2, fy2 = x2 - 0.2 * w, y2 - 0.02 * h
    draw.ellipse((fx1, fy1, fx2, fy2), fill=SKIN)
    fw, fh = fx2 - fx1, fy2 - fy1
    r = max(1.0, 0.08 * fw)
    for ex in (fx1 + 0.32 * fw, fx1 + 0.68 * fw):
        ey = fy1 + 0.4 * fh
        draw.ellipse((ex - r, ey - r, ex + r, ey + r), fill=EYE)
    my = fy1 + 0.72 * fh
    draw.rectangle((fx1 + 0.3 * fw, my, fx1 + 0.7 * fw, my + max(1.0, 0.07 * fh)), fill=MOUTH)


def _draw_body(
    draw: ImageDraw.ImageDraw,
    body: tuple[int, int, int, int],
    top: int,
    colours: list[tuple[int, int, int]],
) -> None:
    x1, _, x2, y2 = body
    top = min(max(top, body[1]), y2 - 1)
    h = y2 - top
    n = len(colours)
    for i, c in enumerate(colours):
        sy1 = top + _rint(i * h / n)
        sy2 = top + _rint((i + 1) * h / n) - 1
        draw.rectangle((x1, sy1, x2 - 1, max(sy1, sy2)), fill=c)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...], pad: float = 2.0) -> bool:
    return not (
        a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1]
    )


def _draw_context(
    rng: np.random.Generator,
    draw: ImageDraw.ImageDraw,
    width: int,
    height: int,
    bodies: list[tuple[int, int, int, int]],
    colours: list[tuple[int, int, int]],
    blobs_per_class: int = 2,
) -> None:
    placed: list[tuple[float, ...]] = []
    for c in colours:
        for _ in range(blobs_per_class):
            r = rng.uniform(0.06, 0.09) * min(width, height)
            best = None
            for _try in range(40):
                cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
                box = (cx - r, cy - r, cx + r, cy + r)
                if not any(_overlaps(box, b) for b in [*bodies, *placed]):
                    best = box
                    break
                if best is None and not any(_overlaps(box, b) for b in bodies):
                    best = box
            if best is None:
                best = box
            placed.append(best)
            draw.ellipse(best, fill=c)


def _layout(
    rng: np.random.Generator, width: int, height: int, n_persons: int
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Body boxes (side by side) and jittered heuristic head boxes."""
    out = []
    slot = width / n_persons
    for p in range(n_persons):
        frac = rng.uniform(0.25, 0.4) if n_persons == 1 else rng.uniform(0.5, 0.7)
        bw = frac * (width if n_persons == 1 else slot)
        lo, hi = p * slot + 0.03 * width, (p + 1) * slot - 0.03 * width - bw
        bx1 = rng.uniform(lo, max(lo, hi))
        bh = rng.uniform(0.5, 0.75) * height
        by1 = rng.uniform(0.04 * height, 0.97 * height - bh)
        body = (_rint(bx1), _rint(by1), _rint(bx1 + bw), _rint(by1 + bh))
        hx1, hy1, hx2, _ = head_from_body(body)
        side = (hx2 - hx1) * rng.uniform(0.92, 1.08)
        jx, jy = rng.uniform(-0.05, 0.05) * side, rng.uniform(-0.05, 0.05) * side
        cx, top = 0.5 * (hx1 + hx2) + jx, hy1 + jy
        head = (_rint(cx - side / 2), _rint(top), _rint(cx + side / 2), _rint(top + side))
        head = (
            max(head[0], body[0]),
            max(head[1], body[1]),
            min(head[2], body[2]),
            min(head[3], body[3]),
        )
        out.append((body, head))
    return out


def _conflict(
    rng: np.random.Generator, labels: list[int], num_classes: int, conflict_rate: float
) -> tuple[str | None, int | None, int | None]:
    """(level, replaced true class, wrong class) or (None, None, None)."""
    if rng.random() >= conflict_rate:
        return None, None, None
    level = LEVEL_NAMES[int(rng.integers(3))]
    replaced = int(rng.choice(labels))
    wrong = int(rng.choice([c for c in range(num_classes) if c not in labels]))
    return level, replaced, wrong


def _shown(
    labels: list[int], level: str, conflict: tuple[str | None, int | None, int | None]
) -> list[int]:
    c_level, replaced, wrong = conflict
    if c_level != level:
        return list(labels)
    return [wrong if c == replaced else c for c in labels]  # type: ignore[misc]


def _render(
    rng: np.random.Generator,
    width: int,
    height: int,
    persons: list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]],
    context_shown: list[int],
    shown: list[tuple[list[int], list[int]]],
    colour_of: list[tuple[int, int, int]],
) -> Image.Image:
    img = _background(rng, width, height)
    draw = ImageDraw.Draw(img)
    _draw_context(
        rng, draw, width, height, [b for b, _ in persons], [colour_of[c] for c in context_shown]
    )
    for (body, head), (head_sh, body_sh) in zip(persons, shown, strict=True):
        _draw_body(draw, body, head[3], [colour_of[c] for c in body_sh])
        _draw_head(draw, head, [colour_of[c] for c in head_sh])
    return img


# ----------------------------------------------------------------------------- .mat writing
def _cell(strings: list[str]) -> np.ndarray:
    arr = np.empty((1, len(strings)), dtype=object)
    for i, s in enumerate(strings):
        arr[0, i] = s
    return arr


def _struct_array(items: list[dict[str, Any]], fields: list[str]) -> np.ndarray:
    arr = np.empty((1, len(items)), dtype=[(f, object) for f in fields])
    for i, d in enumerate(items):
        for f in fields:
            arr[0, i][f] = d[f]
    return arr


def _vad_struct(v: tuple[float, float, float]) -> dict[str, float]:
    return {"valence": float(v[0]), "arousal": float(v[1]), "dominance": float(v[2])}


def _box_arr(box: list[float] | None) -> np.ndarray:
    return np.zeros((0, 0)) if box is None else np.asarray([box], dtype=np.float64)


def _person_struct(p: dict[str, Any], split: str) -> dict[str, Any]:
    """One person as the official file lays it out (field order as in Annotations.mat)."""
    out: dict[str, Any] = {"body_bbox": _box_arr(p["body_bbox"])}
    anns = p["annotators"]
    if split == "train":
        out["annotations_categories"] = {"categories": _cell(anns[0]["categories"])}
        out["annotations_continuous"] = _vad_struct(anns[0]["continuous"])
    else:
        out["annotations_categories"] = _struct_array(
            [{"categories": _cell(a["categories"])} for a in anns], ["categories"]
        )
        out["combined_categories"] = _cell(p["combined_categories"])
        out["annotations_continuous"] = _struct_array(
            [_vad_struct(a["continuous"]) for a in anns], ["valence", "arousal", "dominance"]
        )
        out["combined_continuous"] = _vad_struct(p["combined_continuous"])
    out["gender"] = p["gender"]
    out["age"] = p["age"]
    return out


def write_emotic_mat(path: Path, splits: dict[str, list[dict[str, Any]]]) -> None:
    """Write entries (per split) as MATLAB struct arrays in the official layout."""
    import scipy.io

    mat: dict[str, Any] = {}
    for split, entries in splits.items():
        rows = []
        for e in entries:
            persons = [_person_struct(p, split) for p in e["persons"]]
            fields = list(persons[0].keys())
            if any(p.get("head_bbox") is not None for p in e["persons"]):
                fields.append("head_bbox")
                for ps, p in zip(persons, e["persons"], strict=True):
                    ps["head_bbox"] = _box_arr(p.get("head_bbox"))
            rows.append(
                {
                    "filename": e["filename"],
                    "folder": e["folder"],
                    "image_size": {"n_col": float(e["size"][0]), "n_row": float(e["size"][1])},
                    "original_database": {"name": e["folder"].split("/")[0], "info": ""},
                    "person": _struct_array(persons, fields),
                }
            )
        mat[split] = _struct_array(
            rows, ["filename", "folder", "image_size", "original_database", "person"]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), mat, do_compression=True, oned_as="row")
    # the MAT 5 header holds a creation time: make it fixed so the file depends on the seed only
    header = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: cocoer.data.synthetic"
    with path.open("r+b") as fh:
        fh.write(header.ljust(116, b" "))


def write_emotic_csv(path: Path, split: str, entries: list[dict[str, Any]]) -> None:
    """The common CSV export: one row per person (labels/continuous combined for val/test)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for e in entries:
            for p in e["persons"]:
                if split == "train":
                    cats, cont = p["annotators"][0]["categories"], p["annotators"][0]["continuous"]
                else:
                    cats, cont = p["combined_categories"], p["combined_continuous"]
                box = p["body_bbox"] if p["body_bbox"] is not None else []
                w.writerow(
                    [
                        e["filename"],
                        e["folder"],
                        json.dumps([int(e["size"][0]), int(e["size"][1])]),
                        json.dumps([float(v) for v in box]),
                        repr(list(cats)),
                        json.dumps([float(v) for v in cont]),
                        p["gender"],
                        p["age"],
                    ]
                )


# ----------------------------------------------------------------------------- EMOTIC
def _annotations(
    rng: np.random.Generator, labels: list[int], split: str
) -> tuple[list[dict[str, Any]], list[str], tuple[float, float, float]]:
    names = [EMOTIC_CATEGORIES[c] for c in labels]
    if split == "train":
        cont = tuple(float(v) for v in rng.integers(1, 11, 3))
        return [{"categories": names, "continuous": cont}], names, cont  # type: ignore[return-value]
    n_ann = int(rng.integers(2, 4))
    anns: list[dict[str, Any]] = []
    for a in range(n_ann):
        cats = list(names)
        if a == 0 and rng.random() < 0.3:  # one annotator adds an extra class
            extra = int(rng.choice([c for c in range(26) if c not in labels]))
            cats.append(EMOTIC_CATEGORIES[extra])
        anns.append(
            {"categories": cats, "continuous": tuple(float(v) for v in rng.integers(1, 11, 3))}
        )
    combined = tuple(float(np.mean([a["continuous"][i] for a in anns])) for i in range(3))
    return anns, names, combined  # type: ignore[return-value]


def _save(img: Image.Image, path: Path, fmt: str = "JPEG", **kw: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "JPEG":
        # 4:4:4 chroma keeps the thin colour strips of small heads recognisable
        img.save(path, "JPEG", quality=kw.pop("quality", 92), subsampling=0, **kw)
    else:
        img.save(path, fmt, compress_level=1, **kw)


def generate_emotic(
    root: str | os.PathLike[str],
    n_train: int = 400,
    n_val: int = 100,
    n_test: int = 100,
    seed: int = 0,
    image_size: tuple[int, int] | list[int] = (96, 160),
    conflict_rate: float = 0.25,
    head_box_fraction: float = 0.2,
    bad_cases: bool = False,
    csv: bool = True,
    multi_person_rate: float = 0.3,
    labels_per_person: tuple[int, int] | list[int] = (1, 3),
) -> dict[str, Any]:
    """Write an EMOTIC-layout dataset under ``root`` (see module doc).

    Args:
        root: output folder (created).
        n_train, n_val, n_test: numbers of IMAGES per split (persons: about 1.3x).
        seed: everything is a function of it.
        image_size: ``(min, max)`` side length in pixels; width and height drawn independently.
        conflict_rate: fraction of images with one level showing a wrong class.
        head_box_fraction: fraction of persons with an annotated ``head_bbox``.
        bad_cases: also write the bad inputs listed in the meta file.
        csv: also write ``emotic_pre/{train,val,test}.csv``.
        multi_person_rate: fraction of images with two persons.
        labels_per_person: ``(min, max)`` true labels per person.

    Returns:
        A summary dict: persons per split, conflicts per level, bad cases, seconds.
    """
    t0 = time.perf_counter()
    root = Path(root)
    rng = np.random.default_rng(seed)
    k = len(EMOTIC_CATEGORIES)
    lo, hi = int(image_size[0]), int(image_size[1])
    splits: dict[str, list[dict[str, Any]]] = {}
    meta_persons: list[dict[str, Any]] = []
    img_counter = 0
    for split, n_images in (("train", n_train), ("val", n_val), ("test", n_test)):
        entries: list[dict[str, Any]] = []
        offset = int(rng.integers(k))
        for j in range(n_images):
            width, height = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
            n_persons = 2 if rng.random() < multi_person_rate else 1
            n_lab = int(rng.integers(labels_per_person[0], labels_per_person[1] + 1))
            first = (offset + j) % k  # cycles through all classes: each has positives per split
            others = rng.choice([c for c in range(k) if c != first], n_lab - 1, replace=False)
            labels = sorted([first, *(int(c) for c in others)])
            conflict = _conflict(rng, labels, k, conflict_rate)
            c_person = int(rng.integers(n_persons))  # who carries a head/body conflict
            layout = _layout(rng, width, height, n_persons)
            shown = []
            for p in range(n_persons):
                cf = conflict if (conflict[0] == "context" or p == c_person) else (None, None, None)
                shown.append((_shown(labels, "head", cf), _shown(labels, "body", cf)))
            img = _render(
                rng,
                width,
                height,
                layout,
                _shown(labels, "context", conflict),
                shown,
                list(PALETTE),
            )
            folder = EMOTIC_FOLDERS[img_counter % len(EMOTIC_FOLDERS)]
            filename = f"syn_{split}_{j:06d}.jpg"
            _save(img, root / folder / filename)
            img_counter += 1
            persons = []
            for p, (body, head) in enumerate(layout):
                anns, combined, cont = _annotations(rng, labels, split)
                has_head = bool(rng.random() < head_box_fraction)
                persons.append(
                    {
                        "body_bbox": [float(v) for v in body],
                        "head_bbox": [float(v) for v in head] if has_head else None,
                        "annotators": anns,
                        "combined_categories": combined,
                        "combined_continuous": cont,
                        "gender": str(rng.choice(["Male", "Female"])),
                        "age": str(rng.choice(["Adult", "Teenager", "Kid"])),
                    }
                )
                person_conflict = conflict[0] == "context" or p == c_person
                meta_persons.append(
                    {
                        "image": f"{folder}/{filename}",
                        "person": p,
                        "split": split,
                        "labels": labels,
                        "body_box": list(body),
                        "head_box": list(head),
                        "head_annotated": has_head,
                        "conflict_level": conflict[0] if person_conflict else None,
                        "conflict_true_class": conflict[1] if person_conflict else None,
                        "conflict_wrong_class": conflict[2] if person_conflict else None,
                        "continuous": list(cont),
                    }
                )
            entries.append(
                {
                    "filename": filename,
                    "folder": folder,
                    "size": (width, height),
                    "persons": persons,
                }
            )
        splits[split] = entries
    bad: list[dict[str, Any]] = []
    if bad_cases:
        bad = _emotic_bad_cases(root, rng, splits, meta_persons)
    write_emotic_mat(root / "Annotations" / "Annotations.mat", splits)
    if csv:
        for split, entries in splits.items():
            write_emotic_csv(root / "emotic_pre" / f"{split}.csv", split, entries)
    counts = {
        "persons": {s: sum(1 for m in meta_persons if m["split"] == s) for s in splits},
        "images": {s: len(e) for s, e in splits.items()},
    }
    return _write_meta(root, "emotic", seed, EMOTIC_CATEGORIES, meta_persons, bad, counts, t0)


def _write_meta(
    base: Path,
    dataset: str,
    seed: int,
    classes: Sequence[str],
    meta_persons: list[dict[str, Any]],
    bad: list[dict[str, Any]],
    counts: dict[str, Any],
    t0: float,
) -> dict[str, Any]:
    """Write ``<base>/cocoer_synthetic_meta.json`` and return the generator's summary."""
    summary = {
        "dataset": dataset,
        "seed": seed,
        **counts,
        "conflicts": {
            lv: sum(1 for m in meta_persons if m["conflict_level"] == lv) for lv in LEVEL_NAMES
        },
        "bad_cases": len(bad),
    }
    meta = {
        "generator": f"cocoer.data.synthetic.generate_{dataset}",
        "summary": summary,
        "classes": list(classes),
        "persons": meta_persons,
        "bad_cases": bad,
    }
    (base / META_NAME).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def _simple_person(
    rng: np.random.Generator, width: int, height: int, labels: list[int], split: str
) -> tuple[Image.Image, dict[str, Any]]:
    layout = _layout(rng, width, height, 1)
    img = _render(rng, width, height, layout, labels, [(labels, labels)], list(PALETTE))
    anns, combined, cont = _annotations(rng, labels, split)
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


def write_png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny, well-formed PNG (IHDR + IEND) that claims ``width`` x ``height`` pixels: a
    decompression bomb for any reader that trusts the header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def _emotic_bad_cases(
    root: Path,
    rng: np.random.Generator,
    splits: dict[str, list[dict[str, Any]]],
    meta_persons: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Append the bad inputs to the train split (and one to test); returns their meta list."""
    bad: list[dict[str, Any]] = []
    folder = "mscoco/images"
    W, H = 120, 100

    def add(
        split: str,
        kind: str,
        expected: str,
        reason: str,
        img: Image.Image | None,
        person: dict[str, Any],
        labels: list[int],
        save: Any = None,
        size: tuple[int, int] = (W, H),
        extra_persons: Sequence[tuple[dict[str, Any], list[int]]] = (),
    ) -> None:
        ext = "png" if kind in ("rgba", "gray16", "decompression_bomb") else "jpg"
        filename = f"bad_{kind}.{ext}"
        path = root / folder / filename
        if save is not None:
            save(path)
        elif img is not None:
            _save(img, path)
        persons = [person, *(p for p, _ in extra_persons)]
        all_labels = [labels, *(lab for _, lab in extra_persons)]
        splits[split].append(
            {"filename": filename, "folder": folder, "size": size, "persons": persons}
        )
        image = f"{folder}/{filename}"
        for i, (p, lab) in enumerate(zip(persons, all_labels, strict=True)):
            is_bad = i == 0
            exp = expected if is_bad else "load"
            bad.append(
                {
                    "kind": kind if is_bad else f"{kind}:companion",
                    "image": image,
                    "person": i,
                    "split": split,
                    "expected": exp,
                    "reason": reason if is_bad else "",
                }
            )
            if exp != "skip":  # a valid person: listed with the others so none can be lost
                meta_persons.append(
                    {
                        "image": image,
                        "person": i,
                        "split": split,
                        "labels": lab,
                        "body_box": p["body_bbox"],
                        "head_box": None,
                        "head_annotated": False,
                        "conflict_level": None,
                        "conflict_true_class": None,
                        "conflict_wrong_class": None,
                        "continuous": list(p["combined_continuous"]),
                        "bad_case": kind if is_bad else None,
                    }
                )

    def fresh(labels: list[int], split: str = "train") -> tuple[Image.Image, dict[str, Any]]:
        return _simple_person(rng, W, H, labels, split)

    # --- valid inputs in unusual formats (must load)
    img, p = fresh([0])
    add("train", "grayscale", "load", "", img.convert("L"), p, [0])
    img, p = fresh([1])
    rgba = img.convert("RGBA")
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, : W // 6] = 0
    rgba.putalpha(Image.fromarray(alpha))
    add(
        "train", "rgba", "load", "", None, p, [1], save=lambda path, im=rgba: _save(im, path, "PNG")
    )
    img, p = fresh([2])
    add("train", "cmyk", "load", "", img.convert("CMYK"), p, [2])
    img, p = fresh([3])
    g16 = Image.fromarray((np.asarray(img.convert("L"), np.uint16) * 257).astype(np.uint16))
    add(
        "train",
        "gray16",
        "load",
        "",
        None,
        p,
        [3],
        save=lambda path, im=g16: _save(im, path, "PNG"),
    )
    img, p = fresh([4])  # stored rotated; EXIF orientation 6 turns it back to the annotated frame
    stored = img.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    add(
        "train",
        "exif_rotated",
        "load",
        "",
        None,
        p,
        [4],
        save=lambda path, im=stored, ex=exif: _save(im, path, exif=ex.tobytes()),
    )
    # --- repaired boxes (kept, reported as fixed)
    img, p = fresh([5])
    b = p["body_bbox"]
    p["body_bbox"] = [b[0], b[1], W + 40.0, H + 30.0]
    add("train", "box_outside", "fixed", "box outside the image", img, p, [5])
    img, p = fresh([6])
    b = p["body_bbox"]
    p["body_bbox"] = [b[2], b[3], b[0], b[1]]
    add("train", "inverted_box", "fixed", "inverted box", img, p, [6])
    # --- skipped persons / images
    img, p = fresh([7])
    b = p["body_bbox"]
    p["body_bbox"] = [b[0], b[1], b[0], b[3]]
    add("train", "zero_area_box", "skip", "zero-area box", img, p, [7])
    img, p = fresh([8])
    p["body_bbox"] = [W + 10.0, H + 10.0, W + 50.0, H + 60.0]
    add("train", "box_fully_outside", "skip", "zero-area box", img, p, [8])
    img, p = fresh([9])
    p2 = dict(p)
    p2["annotators"] = [{"categories": ["Boredom"], "continuous": (5.0, 5.0, 5.0)}]
    p2["combined_categories"] = ["Boredom"]
    add(
        "train",
        "unknown_category",
        "skip",
        "unknown category",
        img,
        p2,
        [],
        extra_persons=[(p, [9])],
    )
    img, p = fresh([10])
    p2 = dict(p)
    p2["annotators"] = [{"categories": [], "continuous": (5.0, 5.0, 5.0)}]
    p2["combined_categories"] = []
    add("train", "empty_labels", "skip", "empty label set", img, p2, [], extra_persons=[(p, [10])])
    img, p = fresh([11])
    add(
        "train",
        "unreadable",
        "skip",
        "unreadable image",
        None,
        p,
        [11],
        save=lambda path: (
            path.parent.mkdir(parents=True, exist_ok=True),
            path.write_bytes(rng.bytes(2000)),
        ),
    )
    img, p = fresh([12])
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    add(
        "train",
        "truncated",
        "skip",
        "truncated image",
        None,
        p,
        [12],
        save=lambda path: (
            path.parent.mkdir(parents=True, exist_ok=True),
            path.write_bytes(data[: len(data) // 2]),
        ),
    )
    img, p = fresh([14])
    add(
        "train",
        "decompression_bomb",
        "skip",
        "decompression bomb",
        None,
        p,
        [14],
        save=lambda path: write_png_header_only(path, 30000, 30000),
    )
    img, p = fresh([13], "test")
    add("test", "missing", "skip", "missing file", None, p, [13], save=lambda path: None)
    return bad


# ----------------------------------------------------------------------------- CAER-S
def generate_caer_s(
    root: str | os.PathLike[str],
    n_per_class_train: int = 40,
    n_per_class_test: int = 10,
    seed: int = 0,
    image_size: tuple[int, int] | list[int] = (96, 160),
    conflict_rate: float = 0.25,
    box_cache: bool = True,
    bad_cases: bool = False,
) -> dict[str, Any]:
    """Write ``<root>/CAER-S/{train,test}/<Emotion>/*.png`` (see module doc).

    Args:
        root: parent folder of the ``CAER-S/`` folder written.
        n_per_class_train, n_per_class_test: images per class and split.
        seed: everything is a function of it.
        image_size: ``(min, max)`` side length.
        conflict_rate: fraction of images with one level showing another class.
        box_cache: write the true boxes to ``CAER-S/cocoer_boxes.jsonl`` (source "annotation").
        bad_cases: also write bad inputs (listed in ``CAER-S/cocoer_synthetic_meta.json``).

    Returns:
        A summary dict.
    """
    t0 = time.perf_counter()
    base = Path(root) / "CAER-S"
    rng = np.random.default_rng(seed)
    k = len(CAER_S_CLASSES)
    colours = [PALETTE[i] for i in CAER_S_COLOURS]
    lo, hi = int(image_size[0]), int(image_size[1])
    meta_persons: list[dict[str, Any]] = []
    cache_rows: list[dict[str, Any]] = []
    for split, n in (("train", n_per_class_train), ("test", n_per_class_test)):
        for cls, name in enumerate(CAER_S_CLASSES):
            for j in range(n):
                width, height = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
                layout = _layout(rng, width, height, 1)
                body, head = layout[0]
                conflict = _conflict(rng, [cls], k, conflict_rate)
                img = _render(
                    rng,
                    width,
                    height,
                    layout,
                    _shown([cls], "context", conflict),
                    [(_shown([cls], "head", conflict), _shown([cls], "body", conflict))],
                    colours,
                )
                rel = f"{split}/{name}/{j:04d}.png"
                _save(img, base / rel, "PNG")
                meta_persons.append(
                    {
                        "image": rel,
                        "person": 0,
                        "split": split,
                        "labels": [cls],
                        "body_box": list(body),
                        "head_box": list(head),
                        "conflict_level": conflict[0],
                        "conflict_true_class": conflict[1],
                        "conflict_wrong_class": conflict[2],
                    }
                )
                cache_rows.append(_annotated_cache_row(rel, head, body))
    bad: list[dict[str, Any]] = []
    if bad_cases:
        bad = _caer_bad_cases(base, rng, colours, meta_persons, cache_rows)
    if box_cache:
        cache = base / "cocoer_boxes.jsonl"
        if cache.exists():
            cache.unlink()
        with BoxCacheWriter(base) as writer:
            for row in cache_rows:
                writer.append(row)
    counts = {
        "images": {s: sum(1 for m in meta_persons if m["split"] == s) for s in ("train", "test")}
    }
    return _write_meta(base, "caer_s", seed, CAER_S_CLASSES, meta_persons, bad, counts, t0)


def _annotated_cache_row(rel: str, head: Sequence[float], body: Sequence[float]) -> dict[str, Any]:
    """A box-cache line holding the generator's own (true) head and body boxes."""
    return {
        "image": rel,
        "person": 0,
        "head_box": [float(v) for v in head],
        "head_source": "annotation",
        "body_box": [float(v) for v in body],
        "body_source": "annotation",
    }


def _caer_bad_cases(
    base: Path,
    rng: np.random.Generator,
    colours: list[tuple[int, int, int]],
    meta_persons: list[dict[str, Any]],
    cache_rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    bad: list[dict[str, Any]] = []
    W, H = 120, 100

    def person(cls: int) -> tuple[Image.Image, tuple[int, ...], tuple[int, ...]]:
        layout = _layout(rng, W, H, 1)
        return (
            _render(rng, W, H, layout, [cls], [([cls], [cls])], colours),
            layout[0][0],
            layout[0][1],
        )

    def valid(rel: str, cls: int, kind: str, body: tuple[int, ...], head: tuple[int, ...]) -> None:
        meta_persons.append(
            {
                "image": rel,
                "person": 0,
                "split": "train",
                "labels": [cls],
                "body_box": list(body),
                "head_box": list(head),
                "conflict_level": None,
                "conflict_true_class": None,
                "conflict_wrong_class": None,
                "bad_case": kind,
            }
        )
        cache_rows.append(_annotated_cache_row(rel, head, body))
        bad.append(
            {
                "kind": kind,
                "image": rel,
                "person": 0,
                "split": "train",
                "expected": "load",
                "reason": "",
            }
        )

    img, b, h = person(0)
    rel = "train/Anger/bad_grayscale.png"
    _save(img.convert("L"), base / rel, "PNG")
    valid(rel, 0, "grayscale", b, h)
    img, b, h = person(1)
    rel = "train/Disgust/bad_gray16.png"
    _save(Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257), base / rel, "PNG")
    valid(rel, 1, "gray16", b, h)
    img, b, h = person(2)
    rel = "train/Fear/bad_rgba.png"
    _save(img.convert("RGBA"), base / rel, "PNG")
    valid(rel, 2, "rgba", b, h)
    for kind, rel, reason in (
        ("unreadable", "train/Happy/bad_unreadable.png", "unreadable image"),
        ("truncated", "train/Sad/bad_truncated.png", "truncated image"),
        ("not_image", "train/Neutral/notes.txt", "not an image file"),
        ("unknown_class", "train/Contempt", "unknown class folder"),
    ):
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "unreadable":
            path.write_bytes(rng.bytes(1500))
        elif kind == "truncated":
            buf = io.BytesIO()
            person(4)[0].save(buf, "PNG")
            path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        elif kind == "not_image":
            path.write_text("not an image\n")
        else:
            path.mkdir(parents=True, exist_ok=True)
            _save(person(0)[0], path / "0000.png", "PNG")
        bad.append(
            {
                "kind": kind,
                "image": rel,
                "person": 0,
                "split": "train",
                "expected": "skip",
                "reason": reason,
            }
        )
    return bad

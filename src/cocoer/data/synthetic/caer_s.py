"""The generated CAER-S-layout dataset (:func:`generate_caer_s`): one person per image."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cocoer.constants import CAER_S_CLASSES
from cocoer.data.box_cache import BoxCacheWriter
from cocoer.data.synthetic.meta import annotated_cache_row, person_row, write_meta
from cocoer.data.synthetic.render import (
    CAER_S_COLOURS,
    PALETTE,
    conflict_for,
    layout_persons,
    render,
    save_image,
    shown_classes,
)

Colour = tuple[int, int, int]


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
    """Write ``<root>/CAER-S/{train,test}/<Emotion>/*.png`` (see the package doc).

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
    config = {k: v for k, v in locals().items() if k != "root"}  # recorded in the meta file
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
                layout = layout_persons(rng, width, height, 1)
                body, head = layout[0]
                conflict = conflict_for(rng, [cls], k, conflict_rate)
                shown = [
                    (shown_classes([cls], "head", conflict), shown_classes([cls], "body", conflict))
                ]
                context = shown_classes([cls], "context", conflict)
                img = render(rng, width, height, layout, context, shown, colours)
                rel = f"{split}/{name}/{j:04d}.png"
                save_image(img, base / rel, "PNG")
                meta_persons.append(person_row(rel, 0, split, [cls], body, head, conflict))
                cache_rows.append(annotated_cache_row(rel, head, body))
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
    return write_meta(base, "caer_s", seed, CAER_S_CLASSES, meta_persons, bad, counts, t0, config)


def _caer_bad_cases(
    base: Path,
    rng: np.random.Generator,
    colours: list[Colour],
    meta_persons: list[dict[str, Any]],
    cache_rows: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Valid files in unusual formats (must load) and files the scan must skip."""
    bad: list[dict[str, Any]] = []
    W, H = 120, 100

    def person(cls: int) -> tuple[Image.Image, tuple[int, ...], tuple[int, ...]]:
        layout = layout_persons(rng, W, H, 1)
        img = render(rng, W, H, layout, [cls], [([cls], [cls])], colours)
        return img, layout[0][0], layout[0][1]

    def bad_row(kind: str, rel: str, expected: str, reason: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "image": rel,
            "person": 0,
            "split": "train",
            "expected": expected,
            "reason": reason,
        }

    loadable = (
        ("grayscale", "train/Anger/bad_grayscale.png", lambda im: im.convert("L")),
        (
            "gray16",
            "train/Disgust/bad_gray16.png",
            lambda im: Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257),
        ),
        ("rgba", "train/Fear/bad_rgba.png", lambda im: im.convert("RGBA")),
    )
    for cls, (kind, rel, convert) in enumerate(loadable):
        img, b, h = person(cls)
        save_image(convert(img), base / rel, "PNG")
        meta_persons.append(person_row(rel, 0, "train", [cls], b, h, bad_case=kind))
        cache_rows.append(annotated_cache_row(rel, h, b))
        bad.append(bad_row(kind, rel, "load", ""))
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
            save_image(person(0)[0], path / "0000.png", "PNG")
        bad.append(bad_row(kind, rel, "skip", reason))
    return bad

"""The generated EMOTIC-layout dataset (:func:`generate_emotic`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from cocoer.constants import EMOTIC_CATEGORIES
from cocoer.data.synthetic.bad_cases import emotic_bad_cases
from cocoer.data.synthetic.emotic_writer import (
    annotator_records,
    write_emotic_csv,
    write_emotic_mat,
)
from cocoer.data.synthetic.meta import NO_CONFLICT, person_row, write_meta
from cocoer.data.synthetic.render import (
    EMOTIC_FOLDERS,
    PALETTE,
    conflict_for,
    layout_persons,
    render,
    save_image,
    shown_classes,
)


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
    conflict_area: float = 1.0,
) -> dict[str, Any]:
    """Write an EMOTIC-layout dataset under ``root`` (see the package doc).

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
        conflict_area: share of the replaced class's area that the wrong class covers on a
            conflicting body or context (1: all of it; see ``render.render``).

    Returns:
        A summary dict: persons per split, conflicts per level, bad cases, seconds.
    """
    config = {k: v for k, v in locals().items() if k != "root"}  # recorded in the meta file
    t0 = time.perf_counter()
    root = Path(root)
    rng = np.random.default_rng(seed)
    k = len(EMOTIC_CATEGORIES)
    splits: dict[str, list[dict[str, Any]]] = {}
    meta_persons: list[dict[str, Any]] = []
    img_counter = 0
    for split, n_images in (("train", n_train), ("val", n_val), ("test", n_test)):
        entries: list[dict[str, Any]] = []
        offset = int(rng.integers(k))
        for j in range(n_images):
            folder = EMOTIC_FOLDERS[img_counter % len(EMOTIC_FOLDERS)]
            entry, rows = _emotic_image(
                rng,
                root,
                split,
                folder,
                f"syn_{split}_{j:06d}.jpg",
                first=(offset + j) % k,  # cycles through all classes: each has positives
                image_size=image_size,
                conflict_rate=conflict_rate,
                head_box_fraction=head_box_fraction,
                multi_person_rate=multi_person_rate,
                labels_per_person=labels_per_person,
                conflict_area=conflict_area,
            )
            img_counter += 1
            entries.append(entry)
            meta_persons.extend(rows)
        splits[split] = entries
    bad: list[dict[str, Any]] = []
    if bad_cases:
        bad = emotic_bad_cases(root, rng, splits, meta_persons)
    write_emotic_mat(root / "Annotations" / "Annotations.mat", splits)
    if csv:
        for split, entries in splits.items():
            write_emotic_csv(root / "emotic_pre" / f"{split}.csv", split, entries)
    counts = {
        "persons": {s: sum(1 for m in meta_persons if m["split"] == s) for s in splits},
        "images": {s: len(e) for s, e in splits.items()},
    }
    return write_meta(
        root, "emotic", seed, EMOTIC_CATEGORIES, meta_persons, bad, counts, t0, config
    )


def _emotic_image(
    rng: np.random.Generator,
    root: Path,
    split: str,
    folder: str,
    filename: str,
    first: int,
    image_size: tuple[int, int] | list[int],
    conflict_rate: float,
    head_box_fraction: float,
    multi_person_rate: float,
    labels_per_person: tuple[int, int] | list[int],
    conflict_area: float,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Draw and save one image; returns its annotation entry and its persons' meta rows."""
    k = len(EMOTIC_CATEGORIES)
    lo, hi = int(image_size[0]), int(image_size[1])
    width, height = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
    n_persons = 2 if rng.random() < multi_person_rate else 1
    n_lab = int(rng.integers(labels_per_person[0], labels_per_person[1] + 1))
    others = rng.choice([c for c in range(k) if c != first], n_lab - 1, replace=False)
    labels = sorted([first, *(int(c) for c in others)])
    conflict = conflict_for(rng, labels, k, conflict_rate)
    c_person = int(rng.integers(n_persons))  # who carries a head/body conflict
    layout = layout_persons(rng, width, height, n_persons)
    person_conflicts = [
        conflict if (conflict[0] == "context" or p == c_person) else NO_CONFLICT
        for p in range(n_persons)
    ]
    shown = [
        (shown_classes(labels, "head", cf), shown_classes(labels, "body", cf))
        for cf in person_conflicts
    ]
    context = shown_classes(labels, "context", conflict)
    img = render(
        rng, width, height, layout, context, shown, list(PALETTE), conflict[2], conflict_area
    )
    save_image(img, root / folder / filename)
    persons, rows = [], []
    for p, (body, head) in enumerate(layout):
        anns, combined, cont = annotator_records(rng, labels, split)
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
        rows.append(
            person_row(
                f"{folder}/{filename}",
                p,
                split,
                labels,
                body,
                head,
                person_conflicts[p],
                head_annotated=has_head,
                continuous=list(cont),
            )
        )
    entry = {"filename": filename, "folder": folder, "size": (width, height), "persons": persons}
    return entry, rows

"""EMOTIC writers: ``Annotations.mat`` in the official MATLAB layout, the CSV export, and the
per-person annotator records (one annotator on train, 2-3 combined on val/test).

Continuous values follow the painted classes (:func:`class_vad`): class ``i`` painted in
``PALETTE[i] = (r, g, b)`` has valence, arousal and dominance ``1 + 9 (r, g, b) / 255`` (1,
5.5 or 10 each); a person's values are the mean over its true classes plus a per-annotator
offset in [-0.45, 0.45], clipped to 1..10. A model that recognises the classes can therefore
predict the values far better than the training mean.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from cocoer.constants import EMOTIC_CATEGORIES, VAD_NAMES
from cocoer.data.emotic import CSV_COLUMNS
from cocoer.data.synthetic.render import PALETTE

#: Per-annotator offset: ``VAD_NOISE * (draw - 5.5)`` for an integer draw in 1..10.
VAD_NOISE = 0.1


def class_vad(labels: list[int]) -> np.ndarray:
    """The noise-free (valence, arousal, dominance) of a person showing ``labels``: the mean of
    ``1 + 9 * PALETTE[c] / 255`` over its classes c.  -> float64 [3] in 1..10."""
    colours = np.asarray([PALETTE[c] for c in labels], dtype=np.float64)  # [n, 3]
    return 1.0 + 9.0 * colours.mean(0) / 255.0


def _annotator_vad(rng: np.random.Generator, labels: list[int]) -> tuple[float, float, float]:
    """One annotator's values: :func:`class_vad` plus an offset, clipped to 1..10 (rounded to
    4 decimals so that the CSV and the .mat hold the same numbers)."""
    draw = rng.integers(1, 11, 3)  # the same draws as before version 2: images unchanged
    values = np.clip(class_vad(labels) + VAD_NOISE * (draw - 5.5), 1.0, 10.0)
    return tuple(round(float(v), 4) for v in values)  # type: ignore[return-value]


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


def _vad_struct(v: tuple[float, float, float] | None) -> dict[str, float] | np.ndarray:
    """A continuous annotation struct, or an empty array for a missing one (bad cases)."""
    if v is None:
        return np.zeros((0, 0))
    return {n: float(x) for n, x in zip(VAD_NAMES, v, strict=True)}


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
            [dict(zip(VAD_NAMES, map(float, a["continuous"]), strict=True)) for a in anns],
            list(VAD_NAMES),
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
                        json.dumps([] if cont is None else [float(v) for v in cont]),
                        p["gender"],
                        p["age"],
                    ]
                )


def annotator_records(
    rng: np.random.Generator, labels: list[int], split: str
) -> tuple[list[dict[str, Any]], list[str], tuple[float, float, float]]:
    """Annotators of one person: ``[{"categories", "continuous"}]``, the combined category
    names and the combined (mean) continuous values (see the module doc)."""
    names = [EMOTIC_CATEGORIES[c] for c in labels]
    if split == "train":
        cont = _annotator_vad(rng, labels)
        return [{"categories": names, "continuous": cont}], names, cont  # type: ignore[return-value]
    n_ann = int(rng.integers(2, 4))
    anns: list[dict[str, Any]] = []
    for a in range(n_ann):
        cats = list(names)
        if a == 0 and rng.random() < 0.3:  # one annotator adds an extra class
            extra = int(rng.choice([c for c in range(26) if c not in labels]))
            cats.append(EMOTIC_CATEGORIES[extra])
        anns.append({"categories": cats, "continuous": _annotator_vad(rng, labels)})
    combined = tuple(round(float(np.mean([a["continuous"][i] for a in anns])), 4) for i in range(3))
    return anns, names, combined  # type: ignore[return-value]

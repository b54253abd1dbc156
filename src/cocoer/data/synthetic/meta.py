"""The generator's side file ``cocoer_synthetic_meta.json`` and its per-person rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cocoer.data.synthetic.render import GENERATOR_VERSION, LEVEL_NAMES, META_NAME
from cocoer.errors import InputError

#: (level, replaced true class, wrong class), or (None, None, None) for no conflict.
Conflict = tuple[str | None, int | None, int | None]
NO_CONFLICT: Conflict = (None, None, None)


def person_row(
    image: str,
    person: int,
    split: str,
    labels: list[int],
    body: Sequence[float],
    head: Sequence[float] | None,
    conflict: Conflict = NO_CONFLICT,
    **extra: Any,
) -> dict[str, Any]:
    """One person of the meta file: true labels, true boxes and the planted conflict."""
    return {
        "image": image,
        "person": person,
        "split": split,
        "labels": list(labels),
        "body_box": list(body),
        "head_box": None if head is None else list(head),
        **({"head_annotated": extra.pop("head_annotated")} if "head_annotated" in extra else {}),
        "conflict_level": conflict[0],
        "conflict_true_class": conflict[1],
        "conflict_wrong_class": conflict[2],
        **extra,
    }


def annotated_cache_row(rel: str, head: Sequence[float], body: Sequence[float]) -> dict[str, Any]:
    """A box-cache line holding the generator's own (true) head and body boxes."""
    return {
        "image": rel,
        "person": 0,
        "head_box": [float(v) for v in head],
        "head_source": "annotation",
        "body_box": [float(v) for v in body],
        "body_source": "annotation",
    }


def write_meta(
    base: Path,
    dataset: str,
    seed: int,
    classes: Sequence[str],
    meta_persons: list[dict[str, Any]],
    bad: list[dict[str, Any]],
    counts: dict[str, Any],
    t0: float,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``<base>/cocoer_synthetic_meta.json`` and return the generator's summary.

    ``config`` (the generator's keyword arguments) and :data:`GENERATOR_VERSION` are recorded so
    that a dataset made with other settings or by an older generator is recognised as stale
    (:func:`is_stale`)."""
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
        "version": GENERATOR_VERSION,
        "config": _plain(config or {}),
        "summary": summary,
        "classes": list(classes),
        "persons": meta_persons,
        "bad_cases": bad,
    }
    (base / META_NAME).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def _plain(value: Any) -> Any:
    """JSON's view of a value (tuples and OmegaConf lists become lists, OmegaConf dicts
    dicts), for recording and comparing configs."""

    def convert(obj: Any) -> Any:
        if isinstance(obj, Mapping):
            return dict(obj)
        if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
            return list(obj)
        raise TypeError(f"{type(obj).__name__} is not a plain config value")

    return json.loads(json.dumps(value, default=convert))


def is_stale(base: Path, requested: Mapping[str, Any]) -> str | None:
    """Why the generated dataset at ``base`` does not match the ``requested`` generator
    keyword arguments (another value, or another generator version), or None when it does
    or when ``base`` holds no generated dataset (no meta file: real data is never touched)."""
    path = base / META_NAME
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return f"{path} is not valid JSON"
    if not isinstance(meta, dict) or meta.get("version") != GENERATOR_VERSION:
        found = meta.get("version") if isinstance(meta, dict) else None
        return f"made by generator version {found}, this is version {GENERATOR_VERSION}"
    made = meta.get("config")
    made = made if isinstance(made, dict) else {}
    for key, value in _plain(requested).items():
        if made.get(key) != value:
            return f"made with {key}={made.get(key)!r}, asked for {value!r}"
    return None


def read_planted_conflicts(base: Path) -> dict[tuple[str, int], int] | None:
    """``(image, person) -> planted level index`` (in LEVEL_NAMES order; -1: no conflict) from
    ``<base>/cocoer_synthetic_meta.json``; None when the folder holds no generated dataset."""
    path = base / META_NAME
    if not path.is_file():
        return None
    try:
        persons = json.loads(path.read_text(encoding="utf-8"))["persons"]
        return {
            (str(m["image"]), int(m["person"])): (
                -1 if m["conflict_level"] is None else LEVEL_NAMES.index(m["conflict_level"])
            )
            for m in persons
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a valid generator meta file ({exc})") from exc

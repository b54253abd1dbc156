"""Readers for the EMOTIC annotations: the official ``Annotations.mat`` and the CSV export.

``Annotations/Annotations.mat`` holds struct arrays ``train``, ``val`` and ``test``; each entry
has ``filename``, ``folder``, ``image_size`` (struct ``n_col``, ``n_row``), ``original_database``
and ``person`` (struct array). A person has ``body_bbox`` ``[x1 y1 x2 y2]``,
``annotations_categories`` (struct(-array) with a ``categories`` cell array: one annotator in
train, several in val/test), ``combined_categories`` (val/test), ``annotations_continuous``
(struct(-array) with ``valence``/``arousal``/``dominance``), ``combined_continuous`` (val/test),
``gender``, ``age`` and, for some entries, ``head_bbox``.

Labels: train uses the (single) annotator's categories (the union if there are several);
val/test use ``combined_categories`` when present and non-empty, else the union of annotators.
Continuous values (``extra["valence"]``, ``["arousal"]``, ``["dominance"]``): the annotator's
on train, ``combined_continuous`` on val/test when present, else the annotators' mean. Values
must lie in :data:`VAD_RANGE` (1..10): a missing, NaN or out-of-range value drops the person's
continuous values only (the person keeps its categories), reported as
``"fixed: continuous labels dropped: ..."`` naming the file and entry / row (``strict``: a
``BadSampleError``).

Category names are matched case-insensitively after stripping spaces. Problems are reported per
person in a :class:`~cocoer.data.records.SkipReport` (or raise ``BadSampleError`` when
``strict``): unknown category names, empty label sets, missing/zero-area body boxes. Inverted
boxes are re-ordered and boxes outside the annotated image size are clipped (both reported as
"fixed", the person is kept). A missing split or an unreadable ``.mat`` raises ``ValueError``
naming the file.

The CSV export has one row per person with columns ``Filename, Folder, Image Size, BBox,
Categorical_Labels, Continuous_Labels, Gender, Age`` (extra columns are ignored); list-valued
cells are Python/JSON literals such as ``"[640, 480]"`` or ``"['Peace', 'Engagement']"``.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cocoer.constants import EMOTIC_CATEGORIES, VAD_NAMES, VAD_RANGE
from cocoer.data.heuristics import sanitize_box, tag_note
from cocoer.data.records import BadSampleError, BBox, PersonRecord, SkipReport, skip_or_raise
from cocoer.errors import InputError, MissingFileError, check_choice

SPLITS = ("train", "val", "test")
_CAT_INDEX = {c.replace(" ", "").lower(): i for i, c in enumerate(EMOTIC_CATEGORIES)}
CSV_COLUMNS = (
    "Filename",
    "Folder",
    "Image Size",
    "BBox",
    "Categorical_Labels",
    "Continuous_Labels",
    "Gender",
    "Age",
)


def category_index(name: str) -> int | None:
    """Index of an EMOTIC category name (case/space-insensitive), or None if unknown."""
    return _CAT_INDEX.get(str(name).replace(" ", "").lower())


# ----------------------------------------------------------------------------- .mat helpers
def _items(value: Any) -> list[Any]:
    """A MATLAB struct array / cell array loaded with ``squeeze_me`` as a Python list.

    Handles the squeeze quirks: a 1-element array becomes a scalar (a ``mat_struct`` or a str),
    an empty one an empty ndarray.
    """
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUSV" or value.dtype.names:
            return list(value.ravel())
        return [value]
    return [value]


def _strings(value: Any) -> list[str]:
    """A cell array of strings (possibly squeezed to one str, or empty) as a list of str."""
    out: list[str] = []
    for v in _items(value):
        if isinstance(v, np.ndarray):
            out.extend(_strings(v))
        elif isinstance(v, bytes):
            out.append(v.decode())
        elif isinstance(v, str):
            out.append(v)
        else:
            out.append(str(v))
    return [s for s in out if s != ""]


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return getattr(obj, name, default) if obj is not None else default


def _str_field(obj: Any, name: str) -> str:
    v = _field(obj, name, "")
    if isinstance(v, np.ndarray):
        return "" if v.size == 0 else str(v.ravel()[0])
    return str(v)


def _box(value: Any) -> list[float] | None:
    """A 1x4 numeric array (or empty) as 4 floats, or None."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64).ravel() if not isinstance(value, str) else None
    if arr is None or arr.size == 0:
        return None
    if arr.size != 4:
        raise InputError(f"box has {arr.size} numbers, expected 4")
    return [float(v) for v in arr]


def _num(value: Any) -> float:
    arr = np.asarray(value, dtype=np.float64).ravel()
    return float(arr[0]) if arr.size else float("nan")


def _vad(struct: Any) -> tuple[float, float, float] | None:
    if struct is None or (isinstance(struct, np.ndarray) and struct.size == 0):
        return None
    return tuple(_num(_field(struct, k)) for k in VAD_NAMES)  # type: ignore[return-value]


def load_mat(mat_path: str | os.PathLike[str]) -> dict[str, Any]:
    """``scipy.io.loadmat`` with ``squeeze_me`` and struct objects; clear error when corrupt."""
    import scipy.io

    path = Path(mat_path)
    if not path.is_file():
        raise MissingFileError(f"{path}: EMOTIC annotation file not found")
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError on garbage
        raise InputError(
            f"{path}: corrupt or unreadable .mat file ({type(exc).__name__}: {exc})"
        ) from exc


def _labels(
    names: Sequence[str], where: str, report: SkipReport | None, strict: bool
) -> tuple[int, ...] | None:
    """Map names to sorted unique indices; unknown names or an empty set -> skip (None)."""
    unknown = [n for n in names if category_index(n) is None]
    if unknown:
        skip_or_raise(report, strict, where, f"unknown category name(s): {unknown}")
        return None
    idx = tuple(sorted({category_index(n) for n in names}))  # type: ignore[type-var]
    if not idx:
        skip_or_raise(report, strict, where, "empty label set")
        return None
    return idx  # type: ignore[return-value]


def _finish_box(
    raw: list[float] | None,
    size: tuple[int, int] | None,
    where: str,
    what: str,
    report: SkipReport | None,
    strict: bool,
) -> tuple[BBox | None, bool]:
    """Sanitise one box. Returns (box, ok); ok=False means the person must be skipped."""
    if raw is None:
        return None, True
    w, h = size if size is not None else (None, None)
    box, notes = sanitize_box(tuple(raw), w, h)  # type: ignore[arg-type]
    if box is None:
        skip_or_raise(report, strict, where, tag_note(notes[-1], what))
        return None, False
    for note in notes:
        if report is not None:
            report.add_fixed(where, tag_note(note, what))
    return box, True


def vad_problem(cont: Sequence[float] | None) -> str | None:
    """Why ``cont`` (valence, arousal, dominance) is not usable, or None when it is."""
    if cont is None or len(cont) != len(VAD_NAMES):
        return "missing"
    lo, hi = VAD_RANGE
    for name, v in zip(VAD_NAMES, cont, strict=True):
        if math.isnan(v):
            return f"{name} is NaN"
        if not lo <= v <= hi:
            return f"{name}={v:g} outside {lo:g}..{hi:g}"
    return None


def _continuous_extra(
    cont: Sequence[float] | None, where: str, source: str, report: SkipReport | None, strict: bool
) -> dict[str, float]:
    """``{"valence": .., "arousal": .., "dominance": ..}``, or {} (reported) when unusable."""
    problem = vad_problem(cont)
    if problem is None:
        return {n: float(v) for n, v in zip(VAD_NAMES, cont, strict=True)}  # type: ignore[arg-type]
    reason = f"continuous labels dropped: {problem} [{source}]"
    if strict:
        raise BadSampleError(where, reason)
    if report is not None:
        report.add_fixed(where, reason)
    return {}


def _make_record(
    *,
    image: str,
    person: int,
    split: str,
    size: tuple[int, int] | None,
    body: list[float] | None,
    head: list[float] | None,
    names: list[str],
    extra: dict[str, Any],
    cont: Sequence[float] | None,
    source: str,
    report: SkipReport | None,
    strict: bool,
) -> PersonRecord | None:
    """The record of one person, or None (reported) when it must be skipped; ``source`` (file
    and entry or row) names where a bad continuous value was read."""
    where = f"{image}#{person}"
    labels = _labels(names, where, report, strict)
    if labels is None:
        return None
    if body is None:
        skip_or_raise(report, strict, where, "missing body box")
        return None
    body_box, ok = _finish_box(body, size, where, "body_bbox", report, strict)
    if not ok:
        return None
    head_box, ok = _finish_box(head, size, where, "head_bbox", report, strict)
    if not ok:  # a bad optional head box: drop the head, keep the person (head from cache)
        head_box = None
    extra = {**extra, **_continuous_extra(cont, where, source, report, strict)}
    return PersonRecord(
        image=image,
        person=person,
        split=split,
        labels=labels,
        body_box=body_box,
        head_box=head_box,
        image_size=size,
        extra=extra,
    )


def _entry_image(entry: Any, where: str) -> tuple[str, tuple[int, int] | None]:
    """``folder/filename`` (posix) and the (width, height) of one .mat entry, if valid.

    Raises ValueError naming ``where`` (file and index) for a malformed entry.
    """
    try:
        filename = _str_field(entry, "filename")
        folder = _str_field(entry, "folder").replace("\\", "/").strip("/")
    except Exception as exc:
        raise InputError(f"{where} malformed entry ({exc})") from exc
    image = f"{folder}/{filename}" if folder else filename
    size_struct = _field(entry, "image_size")
    size: tuple[int, int] | None = None
    if size_struct is not None and not isinstance(size_struct, np.ndarray):
        n_col, n_row = _num(_field(size_struct, "n_col")), _num(_field(size_struct, "n_row"))
        if math.isfinite(n_col) and math.isfinite(n_row) and n_col > 0 and n_row > 0:
            size = (int(n_col), int(n_row))
    return image, size


def _person_labels(
    p: Any, split: str
) -> tuple[list[str], dict[str, Any], tuple[float, ...] | None]:
    """Category names, extra fields (gender, age, annotators) and VAD of one .mat person.

    Names: the combined categories on val / test when present, else the union over the
    annotators; VAD: the combined values, else the annotators' mean.
    """
    annotators = [
        _strings(_field(a, "categories")) for a in _items(_field(p, "annotations_categories"))
    ]
    combined_raw = _field(p, "combined_categories")
    combined = _strings(combined_raw) if combined_raw is not None else []
    if split != "train" and combined:
        names = combined
    else:
        names = sorted({n for a in annotators for n in a})
    cont_ann = [v for v in (_vad(a) for a in _items(_field(p, "annotations_continuous"))) if v]
    cont = _vad(_field(p, "combined_continuous"))
    if cont is None and cont_ann:
        cont = tuple(float(np.mean(c)) for c in zip(*cont_ann, strict=True))  # type: ignore[assignment]
    extra: dict[str, Any] = {"gender": _str_field(p, "gender"), "age": _str_field(p, "age")}
    if split != "train":
        extra["annotator_categories"] = tuple(tuple(a) for a in annotators)
        extra["annotator_continuous"] = tuple(cont_ann)
    return names, extra, cont


def read_emotic_mat(
    mat_path: str | os.PathLike[str],
    split: str,
    report: SkipReport | None = None,
    strict: bool = False,
    mat: dict[str, Any] | None = None,
) -> list[PersonRecord]:
    """Persons of one split of the official ``Annotations.mat``.

    Args:
        mat_path: path to ``Annotations/Annotations.mat``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        report: receives skipped/fixed persons (see module doc).
        strict: raise ``BadSampleError`` instead of skipping.
        mat: an already loaded file (``load_mat``), to avoid re-reading it per split.

    Returns:
        Records in file order, ``image = folder/filename`` (posix).

    Raises:
        ValueError: unreadable/corrupt file or missing split (naming the file).
    """
    check_choice("split", split, SPLITS)
    data = mat if mat is not None else load_mat(mat_path)
    if split not in data:
        present = sorted(k for k in data if not k.startswith("__"))
        raise InputError(f"{mat_path}: split {split!r} missing from the .mat (has {present})")
    records: list[PersonRecord] = []
    for e_idx, entry in enumerate(_items(data[split])):
        image, size = _entry_image(entry, f"{mat_path}: {split}[{e_idx}]")
        persons = _items(_field(entry, "person"))
        if not persons:
            skip_or_raise(report, strict, image, "entry has no person")
            continue
        for p_idx, p in enumerate(persons):
            where = f"{image}#{p_idx}"
            try:
                body = _box(_field(p, "body_bbox"))
                head = _box(_field(p, "head_bbox"))
            except ValueError as exc:
                skip_or_raise(report, strict, where, f"malformed box: {exc}")
                continue
            names, extra, cont = _person_labels(p, split)
            rec = _make_record(
                image=image,
                person=p_idx,
                split=split,
                size=size,
                body=body,
                head=head,
                names=names,
                extra=extra,
                cont=cont,
                source=f"{mat_path}: {split}[{e_idx}].person[{p_idx}]",
                report=report,
                strict=strict,
            )
            if rec is not None:
                records.append(rec)
    return records


# ----------------------------------------------------------------------------- CSV
def _literal(cell: str, where: str, column: str) -> Any:
    text = (cell or "").strip()
    if text == "":
        return []
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        if "nan" in text.lower():  # JSON's NaN (Python's float("nan") has no literal)
            try:
                return json.loads(re.sub(r"\bnan\b", "NaN", text, flags=re.IGNORECASE))
            except ValueError:
                pass
        raise InputError(
            f"{where}: column {column!r} is not a list literal: {text[:60]!r}"
        ) from exc


def _csv_row_values(
    row: dict[str, Any], line: str
) -> tuple[tuple[int, int] | None, list[float] | None, list[str], tuple[float, ...] | None]:
    """(image size, body box, class names, (valence, arousal, dominance)) of one CSV row.

    Raises ValueError naming ``line`` (file and line number) for a cell that is not a list
    literal or holds values of the wrong type or count.
    """
    size_v = _literal(row["Image Size"], line, "Image Size")
    box_v = _literal(row["BBox"], line, "BBox")
    cats = _literal(row["Categorical_Labels"], line, "Categorical_Labels")
    cont_v = _literal(row["Continuous_Labels"], line, "Continuous_Labels")
    try:
        size_l, box_l, cont_l = list(size_v), list(box_v), list(cont_v)
        size = (int(size_l[0]), int(size_l[1])) if len(size_l) == 2 else None
        body = [float(v) for v in box_l] if len(box_l) == 4 else None
        cont = tuple(float(v) for v in cont_l) if len(cont_l) == 3 else None
        names = [cats] if isinstance(cats, str) else [str(c) for c in cats]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{line}: malformed values ({exc})") from None
    if box_l and body is None:
        raise InputError(f"{line}: malformed box: {box_v!r}")
    return size, body, names, cont


def read_emotic_csv(
    csv_path: str | os.PathLike[str],
    split: str,
    report: SkipReport | None = None,
    strict: bool = False,
) -> list[PersonRecord]:
    """Persons from the common CSV export (one row per person; see module doc).

    The person index is the row's position among the rows of the same image.

    Raises:
        FileNotFoundError / ValueError: missing file, or required columns absent (naming the file).
    """
    path = Path(csv_path)
    if not path.is_file():
        raise MissingFileError(f"{path}: EMOTIC CSV annotation file not found")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing CSV column(s) {missing}")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    records: list[PersonRecord] = []
    counter: dict[str, int] = {}
    for r_idx, raw_row in enumerate(rows):
        # short rows leave cells None, long rows put the extra cells under the key None
        row = {k: (v if isinstance(v, str) else "") for k, v in raw_row.items() if k is not None}
        folder = row["Folder"].replace("\\", "/").strip("/")
        image = f"{folder}/{row['Filename']}" if folder else row["Filename"]
        p_idx = counter.get(image, 0)
        counter[image] = p_idx + 1
        where = f"{image}#{p_idx}"
        line = f"{path}:{r_idx + 2}"
        try:
            size, body, names, cont = _csv_row_values(row, line)
        except ValueError as exc:
            skip_or_raise(report, strict, where, str(exc))
            continue
        extra: dict[str, Any] = {"gender": row["Gender"], "age": row["Age"]}
        rec = _make_record(
            image=image,
            person=p_idx,
            split=split,
            size=size,
            body=body,
            head=None,
            names=names,
            extra=extra,
            cont=cont,
            source=line,
            report=report,
            strict=strict,
        )
        if rec is not None:
            records.append(rec)
    return records

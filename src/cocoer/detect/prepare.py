"""Dataset preparation: a head and a body box for every person, cached in the box cache.

:func:`prepare_dataset` is the pure function behind ``cocoer-prepare``. For every person of
the requested splits that is not yet in ``<root>/cocoer_boxes.jsonl``:

- head: the annotation's head box (source ``"annotation"``); else the face inside the body box
  (:func:`~cocoer.detect.people.head_for_body`, source of the face detector), falling back to
  ``head_from_body`` (``"heuristic"``);
- body: the annotation's body box (``"annotation"``);
- a person with no body box (CAER-S) gets the main person of the image from
  :func:`~cocoer.detect.people.detect_people`: the one with the largest detected face (its body
  is a person detection containing the face, else ``body_from_face``), else the largest person
  box, else the whole image with ``head_from_body`` (both ``"heuristic"``).

Entries are appended one by one (flushed), so an interrupted run resumes where it stopped; a
re-run skips every key already in the cache without building a detector. An unreadable image is
reported (counted and listed with its reason) and its persons are not written, so a later run
retries them; with ``strict=True`` it raises :class:`~cocoer.data.records.BadSampleError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cocoer.constants import ANNOTATION_FORMATS, DATASETS, DEFAULT_CSV_DIR
from cocoer.data.box_cache import BoxCacheWriter, BoxKey, cache_path, load_box_cache
from cocoer.data.heuristics import full_image_box, head_from_body
from cocoer.data.records import BadSampleError, BBox, PersonRecord, SkipReport
from cocoer.detect.boxes import box_area
from cocoer.detect.people import HEURISTIC, detect_people, head_for_body
from cocoer.detect.summary import PrepareSummary, SplitStats
from cocoer.detect.types import Detector, PersonDetection
from cocoer.errors import ConfigError, MissingFileError, check_choice

__all__ = ["ANNOTATION_FORMATS", "DATASETS", "DEFAULT_CSV_DIR", "prepare_dataset"]

DEFAULT_SPLITS: dict[str, tuple[str, ...]] = {
    "emotic": ("train", "val", "test"),
    "caer_s": ("train", "test"),
}
#: Splits accepted by ``splits=`` (CAER-S "train" covers its "val" hold-out; see read_records).
KNOWN_SPLITS: dict[str, tuple[str, ...]] = {
    "emotic": ("train", "val", "test"),
    "caer_s": ("train", "val", "test"),
}
ANNOTATION = "annotation"

PathLike = str | os.PathLike[str]


class _CountingDetector:
    """Wraps a detector and counts its calls (reported in the summary)."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.source = inner.source
        self.calls = 0

    def detect(self, image_rgb: np.ndarray) -> list[Any]:
        self.calls += 1
        return self.inner.detect(image_rgb)


def read_records(
    dataset: str,
    root: PathLike,
    splits: Sequence[str],
    annotations: str = "mat",
    reports: Mapping[str, SkipReport] | None = None,
    strict: bool = False,
    csv_dir: str = DEFAULT_CSV_DIR,
) -> dict[str, list[PersonRecord]]:
    """Records per split, read with the :mod:`cocoer.data` readers (``reports[split]``, if
    given, receives that split's skipped/fixed inputs).

    EMOTIC: ``<root>/Annotations/Annotations.mat`` (loaded once) or
    ``<root>/<csv_dir>/<split>.csv``. CAER-S: ``"train"`` lists the whole train folder
    (``val_fraction=0``), so that the validation hold-out carved from it at load time is
    prepared too.
    """
    root = Path(root)
    reports = reports or {}
    out: dict[str, list[PersonRecord]] = {}
    if dataset == "emotic":
        from cocoer.data import emotic

        if annotations == "mat":
            mat_path = root / "Annotations" / "Annotations.mat"
            if not mat_path.is_file():
                raise MissingFileError(f"{mat_path}: EMOTIC annotation file not found")
            mat = emotic.load_mat(mat_path)
            for split in splits:
                out[split] = emotic.read_emotic_mat(
                    mat_path, split, reports.get(split), strict, mat=mat
                )
        else:
            for split in splits:
                out[split] = emotic.read_emotic_csv(
                    root / csv_dir / f"{split}.csv", split, reports.get(split), strict
                )
    else:
        from cocoer.data.caer_s import list_caer_s

        for split in splits:
            kwargs: dict[str, Any] = {"val_fraction": 0.0} if split == "train" else {}
            out[split] = list_caer_s(
                root, split, report=reports.get(split), strict=strict, **kwargs
            )
    return out


def dataset_dir(dataset: str, root: PathLike) -> Path:
    """Folder the record image paths are relative to, and where the box cache lives
    (``root`` for EMOTIC; the resolved ``CAER-S/`` folder for CAER-S)."""
    if dataset == "caer_s":
        from cocoer.data.caer_s import resolve_caer_s_root

        return resolve_caer_s_root(root)
    return Path(root)


def main_person(people: Sequence[PersonDetection]) -> PersonDetection | None:
    """The person with the largest detected face, else the largest body box, else None."""
    with_face = [p for p in people if p.head_source != HEURISTIC]
    if with_face:
        return max(with_face, key=lambda p: box_area(p.head_box))
    if people:
        return max(people, key=lambda p: box_area(p.body_box))
    return None


def boxes_for_record(
    record: PersonRecord,
    image_rgb: np.ndarray | None,
    face_detector: Detector | None,
    person_detector: Detector | None,
) -> dict[str, Any]:
    """The box-cache entry of one person (``image_rgb`` may be None only when the record has
    both an annotated head and body box)."""
    head: BBox | None = record.head_box
    body: BBox | None = record.body_box
    head_src = ANNOTATION if head is not None else None
    body_src = ANNOTATION if body is not None else None
    if head is None or body is None:
        if image_rgb is None or face_detector is None:
            raise ValueError(f"{record.record_id}: an image and a face detector are needed")
        if body is not None:
            head, head_src = head_for_body(image_rgb, body, face_detector)
        else:
            person = main_person(detect_people(image_rgb, face_detector, person_detector))
            if person is None:
                height, width = image_rgb.shape[:2]
                body, body_src = full_image_box(width, height), HEURISTIC
                if head is None:
                    head, head_src = head_from_body(body), HEURISTIC
            else:
                body, body_src = person.body_box, person.body_source
                if head is None:
                    head, head_src = person.head_box, person.head_source
    return {
        "image": record.image,
        "person": record.person,
        "head_box": [float(v) for v in head] if head is not None else None,
        "head_source": head_src,
        "body_box": [float(v) for v in body] if body is not None else None,
        "body_source": body_src,
    }


def _group_by_image(records: Iterable[PersonRecord]) -> dict[str, list[PersonRecord]]:
    groups: dict[str, list[PersonRecord]] = {}
    for rec in records:
        groups.setdefault(rec.image, []).append(rec)
    return groups


def _needs_image(record: PersonRecord) -> bool:
    return record.head_box is None or record.body_box is None


def _checked_args(
    dataset: str, annotations: str, root: PathLike, splits: Sequence[str] | None
) -> tuple[Path, tuple[str, ...]]:
    """The root as a Path and the splits to prepare; ValueError / FileNotFoundError naming
    the unknown dataset, annotation format, split or the missing root."""
    check_choice("dataset", dataset, DATASETS)
    check_choice("annotation format", annotations, ANNOTATION_FORMATS)
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"{root}: dataset root is not a directory")
    chosen = tuple(splits) if splits else tuple(DEFAULT_SPLITS[dataset])
    unknown = [s for s in chosen if s not in KNOWN_SPLITS[dataset]]
    if unknown:
        raise ConfigError(f"unknown split(s) {unknown} for {dataset}; has {KNOWN_SPLITS[dataset]}")
    return root, chosen


def _load_if_needed(
    persons: Sequence[PersonRecord],
    path: Path,
    load_image: Callable[..., Any],
    max_pixels: int | None,
    strict: bool,
    report: SkipReport,
) -> np.ndarray | None:
    """The RGB image [H, W, 3] uint8 when a person lacks a box; None when none does or the
    file cannot be decoded (reported, or raised with ``strict``)."""
    if not any(_needs_image(r) for r in persons):
        return None
    try:
        return np.asarray(load_image(path, max_pixels), dtype=np.uint8)
    except BadSampleError as exc:
        if strict:
            raise
        report.add(exc.where, exc.reason)
        return None


def _write_persons(
    persons: Sequence[PersonRecord],
    image_rgb: np.ndarray | None,
    done: set[BoxKey],
    st: SplitStats,
    writer: BoxCacheWriter,
    face: Detector | None,
    person: Detector | None,
) -> None:
    """Append the boxes of one image's persons to the cache (counted in ``st``)."""
    for rec in persons:
        if rec.key in done:  # the same person listed twice (e.g. in two splits)
            st.done_before += 1
            continue
        if _needs_image(rec) and image_rgb is None:
            st.skipped += 1
            continue
        writer.append(boxes_for_record(rec, image_rgb, face, person))
        done.add(rec.key)
        st.written += 1


def _count_sources(
    stats: dict[str, SplitStats],
    records: Mapping[str, Sequence[PersonRecord]],
    cache: Mapping[BoxKey, Mapping[str, Any]],
) -> None:
    """Count the head / body box sources of every split's persons found in the cache."""
    for split, st in stats.items():
        for rec in records[split]:
            entry = cache.get(rec.key)
            if entry is None:
                continue
            st.head_sources[entry.get("head_source") or "none"] += 1
            st.body_sources[entry.get("body_source") or "none"] += 1


def _default_loader(max_pixels: int | None) -> tuple[Callable[..., Any], int]:
    """The data layer's image decoder and its decompression-bomb guard (unless given)."""
    from cocoer.data.windows import DEFAULT_MAX_PIXELS, load_image

    return load_image, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels


def _read_all(
    dataset: str,
    root: Path,
    splits: tuple[str, ...],
    annotations: str,
    strict: bool,
    csv_dir: str,
    report: SkipReport,
) -> tuple[dict[str, list[PersonRecord]], dict[str, SplitStats]]:
    """The persons of every split and their counts; the readers' skips go to ``report``."""
    split_reports = {split: SkipReport() for split in splits}
    records = read_records(dataset, root, splits, annotations, split_reports, strict, csv_dir)
    stats: dict[str, SplitStats] = {}
    for split in splits:
        report.extend(split_reports[split])
        stats[split] = SplitStats(
            persons=len(records[split]), reader_skipped=split_reports[split].num_skipped()
        )
    return records, stats


def _detect_and_write(
    dataset: str,
    base: Path,
    records: Mapping[str, Sequence[PersonRecord]],
    stats: dict[str, SplitStats],
    report: SkipReport,
    build_detectors: Callable[[], tuple[_CountingDetector, _CountingDetector | None]],
    load: Callable[[Sequence[PersonRecord], Path], np.ndarray | None],
    progress: bool,
) -> tuple[_CountingDetector | None, _CountingDetector | None]:
    """Append the boxes of every person not yet in ``<base>/cocoer_boxes.jsonl``, image by
    image; the detectors are built only when some person needs one. Returns them."""
    face: _CountingDetector | None = None
    person: _CountingDetector | None = None
    with BoxCacheWriter(base) as writer:
        if writer.torn_lines:
            report.add_fixed(str(writer.path), "torn last line from an interrupted run removed")
        done = writer.done_keys()
        todo = {split: [r for r in records[split] if r.key not in done] for split in stats}
        if any(_needs_image(r) for recs in todo.values() for r in recs):
            # built up front so a missing model fails before any work; not at all on a re-run
            face, person = build_detectors()
        for split, st in stats.items():
            st.done_before = st.persons - len(todo[split])
            groups = _group_by_image(todo[split])
            bar = tqdm(
                groups.items(),
                total=len(groups),
                desc=f"{dataset} {split}",
                unit="img",
                disable=not progress,
            )
            for rel, persons in bar:
                image_rgb = load(persons, base / rel)
                _write_persons(persons, image_rgb, done, st, writer, face, person)
    return face, person


def prepare_dataset(
    dataset: str,
    root: PathLike,
    *,
    annotations: str = "mat",
    csv_dir: str = DEFAULT_CSV_DIR,
    splits: Sequence[str] | None = None,
    detector: str = "auto",
    insightface_models: PathLike | None = None,
    strict: bool = False,
    face_detector: Detector | None = None,
    person_detector: Detector | None = None,
    progress: bool = True,
    max_pixels: int | None = None,
    load_image: Callable[..., Any] | None = None,
) -> PrepareSummary:
    """Detect and cache a head and a body box for every person (see the module doc).

    Args:
        dataset: ``"emotic"`` or ``"caer_s"``.
        root: dataset root (EMOTIC: the folder with ``Annotations/``; CAER-S: ``CAER-S/`` or
            its parent). The cache is ``cocoer_boxes.jsonl`` in :func:`dataset_dir`.
        annotations: EMOTIC annotation format, ``"mat"`` or ``"csv"``.
        csv_dir: folder of the EMOTIC CSV files, relative to ``root``.
        splits: splits to prepare (default: all of the dataset's splits).
        detector: face backend ``"auto"``, ``"insightface"`` or ``"opencv"``; the person
            backend is InsightFace's person model when present (unless ``"opencv"``), else HOG.
        insightface_models: InsightFace model folder (default ``~/.insightface/models/buffalo_l``).
        strict: bad annotations and unreadable images raise instead of being reported.
        face_detector / person_detector: ready detectors (override ``detector``; for tests).
        progress: show a tqdm progress bar.
        max_pixels: decompression-bomb guard passed to ``load_image`` (default: the data
            layer's).
        load_image: image decoder ``(path, max_pixels) -> PIL image`` (default
            :func:`cocoer.data.windows.load_image`).

    Returns:
        A :class:`PrepareSummary` (per-split counts, boxes by source, the skip report).

    Raises:
        ValueError: unknown dataset, annotation format or split.
        FileNotFoundError: missing root or annotation file (named).
        BadSampleError: with ``strict``, the first bad annotation or unreadable image.
    """
    root, splits = _checked_args(dataset, annotations, root, splits)
    if load_image is None:
        load_image, max_pixels = _default_loader(max_pixels)
    report = SkipReport()
    records, stats = _read_all(dataset, root, splits, annotations, strict, csv_dir, report)

    base = dataset_dir(dataset, root)
    face, person = _detect_and_write(
        dataset,
        base,
        records,
        stats,
        report,
        lambda: _build_detectors(
            dataset, detector, insightface_models, face_detector, person_detector
        ),
        lambda persons, path: _load_if_needed(
            persons, path, load_image, max_pixels, strict, report
        ),
        progress,
    )
    _count_sources(stats, records, load_box_cache(base))
    return PrepareSummary(
        dataset=dataset,
        root=root,
        cache_path=cache_path(base),
        face_detector=_describe(face),
        person_detector=_describe(person),
        splits=stats,
        report=report,
        detector_calls=(face.calls if face else 0) + (person.calls if person else 0),
    )


def _build_detectors(
    dataset: str,
    detector: str,
    insightface_models: PathLike | None,
    face_detector: Detector | None,
    person_detector: Detector | None,
) -> tuple[_CountingDetector, _CountingDetector | None]:
    """The (counted) face detector, and the person detector for CAER-S (None for EMOTIC,
    whose bodies are annotated, unless one is given)."""
    from cocoer.detect.factory import build_face_detector, build_person_detector

    fd = face_detector or build_face_detector(detector, insightface_models)
    pd = person_detector
    if pd is None and dataset == "caer_s":
        person_backend = "opencv" if detector == "opencv" else "auto"
        pd = build_person_detector(person_backend, insightface_models)
    return _CountingDetector(fd), (_CountingDetector(pd) if pd is not None else None)


def _describe(det: _CountingDetector | None) -> str | None:
    if det is None:
        return None
    return f"{type(det.inner).__name__}({det.source})"

"""Per-person head/body box cache: ``<dataset root>/cocoer_boxes.jsonl``.

Format: JSON lines (UTF-8), one object per person::

    {"image": "mscoco/images/COCO_train2014_000000000001.jpg",   # relative posix path
     "person": 0,                                                  # person index in the image
     "head_box": [x1, y1, x2, y2] | null,   # pixels, original image frame
     "head_source": "annotation" | "insightface" | "opencv" | "heuristic" | null,
     "body_box": [x1, y1, x2, y2] | null,
     "body_source": "annotation" | "insightface" | "opencv" | "heuristic" | null}

Extra keys (e.g. a detection score) are allowed and kept. When the same ``(image, person)``
appears more than once, the LAST line wins (so a re-run can correct an entry by appending).

:class:`BoxCacheWriter` appends one line at a time and flushes it, so a preparation run that is
interrupted can resume: :meth:`BoxCacheWriter.done_keys` lists the persons already written. A
torn last line (a run killed mid-write) is tolerated: it is reported in the returned
:class:`~cocoer.data.records.SkipReport` (or by a warning) and ignored; the writer truncates it
before appending. A malformed line anywhere else is an error naming the file and line.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

from cocoer.data.records import SkipReport
from cocoer.errors import InputError

CACHE_NAME = "cocoer_boxes.jsonl"
SOURCES = ("annotation", "insightface", "opencv", "heuristic")

BoxKey = tuple[str, int]


def cache_path(root: str | os.PathLike[str]) -> Path:
    """Path of the box cache inside a dataset root."""
    return Path(root) / CACHE_NAME


def _check_box(value: Any, where: str) -> list[float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 4
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)
    ):
        raise InputError(f"{where}: a box must be null or 4 finite numbers, got {value!r}")
    return [float(v) for v in value]


def validate_entry(entry: dict[str, Any], where: str = "box cache entry") -> dict[str, Any]:
    """Check one cache object (types, box shape, sources); returns a normalised copy."""
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    if not isinstance(entry.get("image"), str) or not entry["image"]:
        raise InputError(f"{where}: 'image' must be a non-empty string")
    if not isinstance(entry.get("person"), int) or isinstance(entry.get("person"), bool):
        raise InputError(f"{where}: 'person' must be an integer")
    out = dict(entry)
    out["image"] = entry["image"].replace("\\", "/")
    for level in ("head", "body"):
        out[f"{level}_box"] = _check_box(entry.get(f"{level}_box"), f"{where} ({level}_box)")
        src = entry.get(f"{level}_source")
        if src is not None and src not in SOURCES:
            raise InputError(
                f"{where}: {level}_source must be one of {SOURCES} or null, got {src!r}"
            )
        out[f"{level}_source"] = src
    return out


def _read_lines(path: Path) -> tuple[list[tuple[int, str]], str | None]:
    """Complete lines (1-based numbers) and the torn tail (text after the last newline)."""
    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    if not text:
        return [], None
    parts = text.split("\n")
    tail = parts.pop()  # text after the last newline ('' when the file ends with '\n')
    lines = [(i + 1, ln) for i, ln in enumerate(parts) if ln.strip()]
    return lines, (tail if tail.strip() else None)


def load_box_cache(
    root: str | os.PathLike[str], report: SkipReport | None = None
) -> dict[BoxKey, dict[str, Any]]:
    """Read ``<root>/cocoer_boxes.jsonl`` into ``{(image, person): entry}`` (empty if absent).

    A torn last line (no trailing newline and not valid JSON) is ignored and reported in
    ``report`` (or warned about when ``report`` is None). Any other malformed line raises
    ``ValueError`` naming the file and the line number.
    """
    path = cache_path(root)
    if not path.is_file():
        return {}
    lines, tail = _read_lines(path)
    if tail is not None:
        try:
            json.loads(tail)
            lines.append((len(lines) + 1, tail))  # complete object without final newline
        except json.JSONDecodeError:
            msg = "torn last line (interrupted write?) ignored"
            if report is not None:
                report.add(str(path), msg)
            else:
                warnings.warn(f"{path}: {msg}", stacklevel=2)
    out: dict[BoxKey, dict[str, Any]] = {}
    for lineno, line in lines:
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: malformed JSON line ({exc.msg})") from exc
        entry = validate_entry(obj, where)
        out[(entry["image"], entry["person"])] = entry
    return out


class BoxCacheWriter:
    """Append-only writer of the box cache (one flushed line per person; resumable).

    Use as a context manager or call :meth:`close`. On open, a torn last line left by a killed
    run is cut off (and counted in :attr:`torn_lines`) so the file stays valid JSON lines.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = cache_path(root)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.torn_lines = 0
        self._repair_tail()
        self._done: set[BoxKey] = set(load_box_cache(self.path.parent).keys())
        self._fh = self.path.open("a", encoding="utf-8")

    def _repair_tail(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1  # 0 when there is no newline at all
        tail = data[cut:]
        try:
            json.loads(tail.decode("utf-8"))
            with self.path.open("ab") as fh:  # complete object: just terminate the line
                fh.write(b"\n")
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.torn_lines += 1
            warnings.warn(
                f"{self.path}: torn last line from an interrupted run removed", stacklevel=3
            )
            with self.path.open("r+b") as fh:
                fh.truncate(cut)

    def append(self, record: dict[str, Any]) -> None:
        """Validate and append one person's entry, then flush (and fsync) it."""
        entry = validate_entry(record, f"{self.path} (append)")
        self._fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._done.add((entry["image"], entry["person"]))

    def done_keys(self) -> set[BoxKey]:
        """``(image, person)`` keys already in the cache (from earlier runs and this one)."""
        return set(self._done)

    def close(self) -> None:
        """Close the file."""
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> BoxCacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

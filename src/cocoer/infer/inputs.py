"""Command-line inputs: files and directories sorted into images, videos and failures.

Nothing is dropped silently: a missing path or a file that is neither an image nor a video
becomes an :class:`InputFailure` with the reason, listed at the end of the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg"})


#: the highest webcam index accepted (OpenCV's indices are small integers)
MAX_WEBCAM = 255


@dataclass(frozen=True)
class InputFailure:
    """An input that could not be processed, with the reason."""

    path: str
    reason: str


@dataclass
class Inputs:
    """Inputs sorted by kind, in the order given (directories expanded, sorted)."""

    images: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    webcams: list[int] = field(default_factory=list)
    failures: list[InputFailure] = field(default_factory=list)


def _classify(path: Path, inputs: Inputs, from_dir: bool) -> None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        inputs.videos.append(path)
    elif suffix in IMAGE_SUFFIXES or not from_dir:
        # an explicit file with an unknown suffix is tried as an image (the decoder reports it)
        inputs.images.append(path)
    else:
        inputs.failures.append(
            InputFailure(str(path), f"not an image or video file (suffix {suffix or 'none'!r})")
        )


def collect_inputs(paths: Sequence[str | os.PathLike[str]], recursive: bool = True) -> Inputs:
    """Sort command-line arguments into images, videos, webcam indices and failures.

    A plain integer (``0``) that is not an existing path is a webcam index. A directory
    contributes its files (sorted; recursively when ``recursive``; hidden files ignored).
    """
    inputs = Inputs()
    for raw in paths:
        text = str(raw)
        path = Path(text)
        if text.isascii() and text.isdigit() and not path.exists():
            if len(text) > 4 or int(text) > MAX_WEBCAM:
                inputs.failures.append(
                    InputFailure(text[:40], f"webcam index out of range (0 to {MAX_WEBCAM})")
                )
            else:
                inputs.webcams.append(int(text))
        elif path.is_dir():
            files: Iterable[Path] = path.rglob("*") if recursive else path.iterdir()
            for f in sorted(files):
                if any(part.startswith(".") for part in f.relative_to(path).parts):
                    continue
                if f.is_file():
                    _classify(f, inputs, from_dir=True)
                elif not f.is_dir():
                    inputs.failures.append(InputFailure(str(f), not_a_file_reason(f)))
        elif path.is_file():
            _classify(path, inputs, from_dir=False)
        else:
            inputs.failures.append(InputFailure(text, not_a_file_reason(path)))
    return inputs


def not_a_file_reason(path: Path) -> str:
    """Why ``path`` (neither a regular file nor a folder) is skipped."""
    if path.is_symlink() and not path.exists():
        return "dangling symbolic link (its target does not exist)"
    if not path.exists():
        return "missing file: no such file or directory"
    if path.is_fifo():
        return "not a regular file (a FIFO / named pipe)"
    if path.is_socket():
        return "not a regular file (a socket)"
    return "not a regular file (a device or special file)"


#: what one input writes next to its stem (images, videos, saliency, VLM exports)
OUTPUT_SUFFIXES = (".json", "_annotated.jpg", ".jsonl", "_annotated.mp4", "_vlm")
#: the saliency figures of a stem's persons: ``<stem>_p<i>_saliency.png``
SALIENCY_NAME = re.compile(r"(.+)_p\d+_saliency\.png")
#: stems no input may take: the run's own report
RESERVED_STEMS = frozenset({"run_report"})


class OutputNamer:
    """Unique output stems: ``photo``, then ``photo_2``, ``photo_3``... checked against every
    stem given out in this run (case-insensitively, for case-insensitive file systems), the
    reserved names (:data:`RESERVED_STEMS`) and, unless ``overwrite``, the files already in
    ``out_dir`` when the namer is made (:func:`stems_in`), so no input's results (photos
    and videos alike) replace another's or a file already there."""

    def __init__(self, out_dir: Path | None = None, overwrite: bool = False) -> None:
        self.out_dir, self.overwrite = out_dir, overwrite
        self._used: set[str] = {s.casefold() for s in RESERVED_STEMS}
        self._taken: set[str] = set() if out_dir is None or overwrite else stems_in(out_dir)

    def _free(self, stem: str) -> bool:
        key = stem.casefold()
        return key not in self._used and key not in self._taken

    def __call__(self, path: Path) -> str:
        base = path.stem or "input"
        stem, n = base, 1
        while not self._free(stem):
            n += 1
            stem = f"{base}_{n}"
        self._used.add(stem.casefold())
        return stem


def stems_in(out_dir: Path) -> set[str]:
    """The stems (case-folded) whose outputs are in ``out_dir`` (:data:`OUTPUT_SUFFIXES`,
    :data:`SALIENCY_NAME`); empty if it does not exist."""
    try:
        names = os.listdir(out_dir)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    stems = set()
    for name in names:
        saliency = SALIENCY_NAME.fullmatch(name)
        if saliency:
            stems.add(saliency.group(1).casefold())
        stems.update(name[: -len(s)].casefold() for s in OUTPUT_SUFFIXES if name.endswith(s))
    return stems

"""Command-line inputs: files and directories sorted into images, videos and failures.

Nothing is dropped silently: a missing path or a file that is neither an image nor a video
becomes an :class:`InputFailure` with the reason, listed at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg"})


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
        if text.isdigit() and not path.exists():
            inputs.webcams.append(int(text))
        elif path.is_dir():
            files: Iterable[Path] = path.rglob("*") if recursive else path.iterdir()
            for f in sorted(files):
                if f.is_file() and not any(
                    part.startswith(".") for part in f.relative_to(path).parts
                ):
                    _classify(f, inputs, from_dir=True)
        elif path.is_file():
            _classify(path, inputs, from_dir=False)
        else:
            inputs.failures.append(InputFailure(text, "missing file: no such file or directory"))
    return inputs


class OutputNamer:
    """Unique output stems: ``photo``, then ``photo_2``, ``photo_3`` for repeated stems."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def __call__(self, path: Path) -> str:
        stem = path.stem or "input"
        n = self._used.get(stem, 0) + 1
        self._used[stem] = n
        return stem if n == 1 else f"{stem}_{n}"

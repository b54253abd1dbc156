"""Example photos offered on the demo page.

cocoer does not ship photos of people. The examples are located at run time in the
installed ``insightface`` package (a dependency of cocoer), whose MIT-licensed
distribution includes the sample group photo ``data/images/t1.jpg`` (the photo the tests
use). Folders given with ``--examples`` add the images they hold.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from cocoer.infer.inputs import IMAGE_SUFFIXES

#: Sample photos of the insightface package used as examples.
INSIGHTFACE_SAMPLES = ("t1.jpg",)


def insightface_samples() -> list[Path]:
    """The sample photos of the installed insightface package that exist (found without
    importing insightface)."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        return []
    images = Path(next(iter(spec.submodule_search_locations))) / "data" / "images"
    return [images / n for n in INSIGHTFACE_SAMPLES if (images / n).is_file()]


def example_photos(folders: Sequence[str | Path] = ()) -> list[Path]:
    """insightface's samples, then the images of ``folders`` (sorted, not recursive)."""
    found = insightface_samples()
    for folder in folders:
        found += sorted(
            p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
    return found

"""VLM helper (paper Sec. 10.2): inputs for a vision-language model such as GPT-4o.

For each person, CocoER's first-excluded level is the level whose prediction disagreed most
with the vocabulary-informed pseudo label. Two ways to use that with a VLM:

1. multi-level input: the person's level crops (context, body, head) WITHOUT the first-
   excluded level, with the prompt
   ``What's the emotion in these N pictures. Choose multiple emotions from [...]``
   (single-label vocabularies: ``Choose from [...]``);
2. single-image input: the whole image with the single-image prompt plus
   ``Please avoid potentially inconsistent recognition result from {level}.``

This module only writes files (crops, prompt texts, a JSON manifest); it never calls a
network service.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from cocoer.constants import LEVELS
from cocoer.errors import check_choice
from cocoer.infer.results import ImageResult, PersonResult
from cocoer.utils.files import atomic_save_as, atomic_write_text

AVOID_SENTENCE = "Please avoid potentially inconsistent recognition result from {level}."
#: How a level is named inside :data:`AVOID_SENTENCE`.
LEVEL_PHRASE = "{level} level"


def choice_clause(class_names: Sequence[str], multi_label: bool) -> str:
    """``Choose multiple emotions from [a, b, ...]`` or ``Choose from [a, b, ...]``."""
    verb = "Choose multiple emotions from" if multi_label else "Choose from"
    return f"{verb} [{', '.join(class_names)}]"


def multilevel_prompt(n_pictures: int, class_names: Sequence[str], multi_label: bool) -> str:
    """The supplement's multi-level prompt for ``n_pictures`` level crops."""
    return (
        f"What's the emotion in these {n_pictures} pictures. "
        f"{choice_clause(class_names, multi_label)}"
    )


def single_image_prompt(
    class_names: Sequence[str], multi_label: bool, avoid_level: str | None = None
) -> str:
    """The single-image prompt, with the avoid sentence for ``avoid_level`` appended."""
    text = f"What's the emotion in this picture. {choice_clause(class_names, multi_label)}"
    if avoid_level is not None:
        check_choice("level", avoid_level, LEVELS)
        text += " " + AVOID_SENTENCE.format(level=LEVEL_PHRASE.format(level=avoid_level))
    return text


def crop_box(image: Image.Image, box: Sequence[float]) -> Image.Image:
    """Crop a pixel box (widened to whole pixels, clipped to the image, at least 1 px)."""
    w, h = image.size
    x1 = min(max(0, math.floor(box[0])), w - 1)
    y1 = min(max(0, math.floor(box[1])), h - 1)
    x2 = max(min(w, math.ceil(box[2])), x1 + 1)
    y2 = max(min(h, math.ceil(box[3])), y1 + 1)
    return image.crop((x1, y1, x2, y2))


def level_crops(image: Image.Image, person: PersonResult) -> dict[str, Image.Image]:
    """The person's three level images at full resolution: context, body, head."""
    return {
        "context": image,
        "body": crop_box(image, person.body_box),
        "head": crop_box(image, person.head_box),
    }


def export_person(
    image: Image.Image,
    person: PersonResult,
    out_dir: Path,
    class_names: Sequence[str],
    multi_label: bool,
) -> dict[str, Any]:
    """Write one person's VLM inputs into ``out_dir``; return its manifest entry."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dropped = person.first_excluded
    kept = [lvl for lvl in LEVELS if lvl != dropped]
    crops = level_crops(image, person)
    files = {}
    for lvl in kept:
        path = out_dir / f"{lvl}.jpg"
        _save_jpeg(crops[lvl], path)
        files[lvl] = path
    single = out_dir / "single.jpg"
    _save_jpeg(image, single)
    multi_text = multilevel_prompt(len(kept), class_names, multi_label)
    single_text = single_image_prompt(class_names, multi_label, dropped)
    atomic_write_text(out_dir / "prompt_multilevel.txt", multi_text + "\n")
    atomic_write_text(out_dir / "prompt_single.txt", single_text + "\n")
    root = out_dir.parent
    return {
        "person": person.index,
        "exclusion_sequence": person.exclusion_sequence,
        "first_excluded": dropped,
        "multilevel": {
            "images": [str(files[lvl].relative_to(root)) for lvl in kept],
            "levels": kept,
            "prompt": multi_text,
            "prompt_file": str((out_dir / "prompt_multilevel.txt").relative_to(root)),
        },
        "single": {
            "image": str(single.relative_to(root)),
            "prompt": single_text,
            "prompt_file": str((out_dir / "prompt_single.txt").relative_to(root)),
        },
    }


def export_vlm_inputs(image: Image.Image, result: ImageResult, out_dir: str | Path) -> Path:
    """Write ``person_<i>/`` folders and ``manifest.json`` for every person of ``result``.

    Returns:
        The manifest path.
    """
    out_dir = Path(out_dir)
    entries = [
        export_person(
            image, p, out_dir / f"person_{p.index}", result.class_names, result.multi_label
        )
        for p in result.persons
    ]
    manifest = {
        "source": result.source,
        "class_names": list(result.class_names),
        "multi_label": result.multi_label,
        "note": "Inputs for a VLM (paper Sec. 10.2). No request was sent anywhere.",
        "persons": entries,
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    return atomic_write_text(out_dir / "manifest.json", text)


def _save_jpeg(image: Image.Image, path: Path) -> None:
    atomic_save_as(path, lambda tmp: image.save(tmp, format="JPEG", quality=92))

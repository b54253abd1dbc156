"""VLM helper (paper Sec. 10.2): crops without the first-excluded level and the prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cocoer.constants import CAER_S_CLASSES, EMOTIC_CATEGORIES
from cocoer.infer.results import HeadPrediction, ImageResult, PersonResult
from cocoer.interpret.vlm import export_vlm_inputs, multilevel_prompt, single_image_prompt


def test_prompts_follow_the_supplement() -> None:
    text = multilevel_prompt(2, EMOTIC_CATEGORIES, multi_label=True)
    assert text.startswith(
        "What's the emotion in these 2 pictures. Choose multiple emotions from ["
    )
    assert text.endswith("Sympathy, Yearning]")
    assert "Doubt/Confusion" in text
    caer = multilevel_prompt(3, CAER_S_CLASSES, multi_label=False)
    assert caer == (
        "What's the emotion in these 3 pictures. Choose from "
        "[Anger, Disgust, Fear, Happy, Neutral, Sad, Surprise]"
    )
    single = single_image_prompt(CAER_S_CLASSES, False, "body")
    assert single.endswith(
        "Choose from [Anger, Disgust, Fear, Happy, Neutral, Sad, Surprise] "
        "Please avoid potentially inconsistent recognition result from body level."
    )
    with pytest.raises(ValueError):
        single_image_prompt(CAER_S_CLASSES, False, "torso")


def _person(index: int, sequence: list[str]) -> PersonResult:
    empty = HeadPrediction([], {})
    return PersonResult(
        index=index,
        body_box=[10.0 + 60 * index, 5.0, 60.0 + 60 * index, 95.0],
        body_source="test",
        head_box=[20.0 + 60 * index, 8.0, 40.0 + 60 * index, 30.0],
        head_source="test",
        detection_score=1.0,
        final=empty,
        vi=empty,
        levels={"context": empty, "body": empty, "head": empty},
        level_losses={"context": 1.0, "body": 2.0, "head": 3.0},
        exclusion_sequence=sequence,
    )


def test_export_drops_the_first_excluded_level(tmp_path: Path) -> None:
    image = Image.new("RGB", (160, 100), (10, 120, 200))
    result = ImageResult(
        source="x.jpg",
        width=160,
        height=100,
        persons=[_person(0, ["head", "body", "context"]), _person(1, ["context", "head", "body"])],
        class_names=list(EMOTIC_CATEGORIES),
        multi_label=True,
        thresholds={},
    )
    manifest_path = export_vlm_inputs(image, result, tmp_path / "vlm")
    manifest = json.loads(manifest_path.read_text())
    assert [p["first_excluded"] for p in manifest["persons"]] == ["head", "context"]
    p0, p1 = (tmp_path / "vlm" / f"person_{i}" for i in (0, 1))
    assert sorted(f.name for f in p0.glob("*.jpg")) == ["body.jpg", "context.jpg", "single.jpg"]
    assert sorted(f.name for f in p1.glob("*.jpg")) == ["body.jpg", "head.jpg", "single.jpg"]
    with Image.open(p0 / "body.jpg") as body, Image.open(p1 / "head.jpg") as head:
        assert body.size == (50, 90) and head.size == (20, 22)
    entry = manifest["persons"][0]
    assert entry["multilevel"]["levels"] == ["context", "body"]
    assert entry["multilevel"]["images"] == ["person_0/context.jpg", "person_0/body.jpg"]
    assert (p0 / "prompt_multilevel.txt").read_text().strip() == entry["multilevel"]["prompt"]
    assert "these 2 pictures" in entry["multilevel"]["prompt"]
    single = (p0 / "prompt_single.txt").read_text().strip()
    assert single.endswith(
        "Please avoid potentially inconsistent recognition result from head level."
    )
    assert manifest["persons"][1]["single"]["prompt"].endswith("from context level.")

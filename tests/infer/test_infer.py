"""cocoer-infer on a real photograph (insightface's t1.jpg) and on bad inputs, plus the
threshold rules and the Predictor API."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cocoer.constants import DEMO_FINAL, DEMO_LEVEL, LEVELS
from cocoer.detect import PersonDetection
from cocoer.infer import Predictor, build_policy, parse_threshold_spec

IMAGES = Path(__import__("insightface").__file__).parent / "data" / "images"
T1 = IMAGES / "t1.jpg"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict:
    """One CLI run over a folder holding t1.jpg and three bad files, plus a missing path."""
    from cocoer.cli.infer import main

    root = tmp_path_factory.mktemp("infer_cli")
    inp = root / "in"
    inp.mkdir()
    shutil.copy(T1, inp / "t1.jpg")
    data = T1.read_bytes()
    (inp / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (inp / "text.jpg").write_text("this is not a JPEG\n")
    (inp / "notes.txt").write_text("not an image\n")
    out = root / "out"
    code = main(
        [
            str(inp),
            str(root / "missing.png"),
            "--ckpt",
            str(tiny_checkpoint),
            "--out",
            str(out),
            "--detector",
            "opencv",
            "--no-progress",
            "--quiet",
        ]
    )
    return {"code": code, "out": out, "inp": inp, "root": root}


def test_cli_writes_json_for_t1(cli_run: dict) -> None:
    assert cli_run["code"] == 0
    data = json.loads((cli_run["out"] / "t1.json").read_text())
    assert data["width"] == 1280 and data["height"] == 886
    persons = data["persons"]
    assert len(persons) >= 3, "t1.jpg is a group photo: several persons expected"
    assert data["num_persons"] == len(persons)
    assert sum(p["head_source"] == "opencv" for p in persons) >= 3, "faces must be detected"
    names = data["class_names"]
    assert len(names) == 26
    thr = data["thresholds"]
    assert thr["mode"] == "calibrated"
    for i, p in enumerate(persons):
        assert p["index"] == i
        for key in ("body_box", "head_box"):
            x1, y1, x2, y2 = p[key]
            assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 886
        assert p["body_source"] in ("opencv", "heuristic", "insightface")
        assert sorted(p["exclusion_sequence"]) == sorted(LEVELS)
        assert p["first_excluded"] == p["exclusion_sequence"][0]
        assert set(p["level_losses"]) == set(LEVELS)
        assert all(math.isfinite(v) and v >= 0 for v in p["level_losses"].values())
        # the first-excluded level has the largest level loss (competition, Alg. 1)
        assert p["level_losses"][p["first_excluded"]] == max(p["level_losses"].values())
        heads = {"final": p["final"], "vi": p["vi"], **p["levels"]}
        assert set(p["levels"]) == set(LEVELS)
        for head in heads.values():
            assert list(head["scores"]) == names
            assert all(0.0 <= s <= 1.0 for s in head["scores"].values())
            scores = [lab["score"] for lab in head["labels"]]
            assert scores == sorted(scores, reverse=True)
        # final labels are exactly the classes above the calibrated per-class thresholds
        expected = {
            n for n, t in zip(names, thr["final"], strict=True) if p["final"]["scores"][n] > t
        }
        assert {lab["name"] for lab in p["final"]["labels"]} == expected
        expected_lvl = {n for n, s in p["levels"]["head"]["scores"].items() if s > thr["levels"]}
        assert {lab["name"] for lab in p["levels"]["head"]["labels"]} == expected_lvl


def test_cli_annotated_image(cli_run: dict) -> None:
    path = cli_run["out"] / "t1_annotated.jpg"
    with Image.open(path) as im:
        im.load()
        assert im.size == (1280, 886)
        ann = np.asarray(im.convert("RGB"), dtype=np.int16)
    orig = np.asarray(Image.open(T1).convert("RGB"), dtype=np.int16)
    changed = (np.abs(ann - orig).max(-1) > 60).mean()
    assert 0.002 < changed < 0.6, "boxes and labels must be drawn"


def test_cli_reports_bad_inputs_and_continues(cli_run: dict) -> None:
    report = json.loads((cli_run["out"] / "run_report.json").read_text())
    assert [Path(p["source"]).name for p in report["processed"]] == ["t1.jpg"]
    reasons = {Path(f["path"]).name: f["reason"] for f in report["failures"]}
    assert set(reasons) == {"truncated.jpg", "text.jpg", "notes.txt", "missing.png"}
    assert "truncated" in reasons["truncated.jpg"]
    assert "not a recognised image" in reasons["text.jpg"]
    assert "not an image" in reasons["notes.txt"]
    assert "missing" in reasons["missing.png"]
    written = sorted(p.name for p in cli_run["out"].iterdir())
    assert written == ["run_report.json", "t1.json", "t1_annotated.jpg"]


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cocoer.cli.infer import main

    code = main([str(T1), "--ckpt", str(tmp_path / "nope.ckpt"), "--quiet"])
    assert code == 2
    assert "nope.ckpt: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    assert main([str(T1), "--ckpt", str(bad), "--quiet"]) == 2
    assert str(bad) in capsys.readouterr().err


# ------------------------------------------------------------------ thresholds
def test_threshold_policies() -> None:
    cal = torch.linspace(0.1, 0.9, 5)
    scores = torch.tensor([[0.05, 0.35, 0.55, 0.75, 0.95]])
    pol = build_policy("calibrated", cal, multi_label=True)
    assert pol.decide(scores, "final").tolist() == [[False, True, True, True, True]]
    y_t = torch.tensor([[1.0, 0, 0, 0, 1]])
    assert pol.decide(scores, "vi", y_t).tolist() == [[True, False, False, False, True]]
    assert pol.decide(scores, "body").tolist() == [[False, False, True, True, True]]
    demo = build_policy("demo", cal, multi_label=True)
    assert demo.decide(scores, "final").tolist() == (scores > DEMO_FINAL).tolist()
    assert demo.decide(scores, "head").tolist() == (scores > DEMO_LEVEL).tolist()
    val = build_policy("0.8", cal, multi_label=True)
    assert val.decide(scores, "vi").tolist() == [[False, False, False, False, True]]
    single = build_policy(0.9, cal, multi_label=False)
    assert single.decide(scores, "final").tolist() == [[False, False, False, False, True]]
    for bad in ("sometimes", "1.5", 0.0):
        with pytest.raises(ValueError):
            parse_threshold_spec(bad)


# ------------------------------------------------------------------ Python API
@pytest.fixture(scope="module")
def predictor(tiny_checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(tiny_checkpoint, detector="opencv")


def _people() -> list[PersonDetection]:
    return [
        PersonDetection(
            (306.0, 234.0, 730.0, 886.0), "test", (447.0, 270.0, 588.0, 411.0), "test", 1.0
        ),
        PersonDetection(
            (994.0, 246.0, 1280.0, 876.0), "test", (1114.0, 276.0, 1234.0, 396.0), "test", 1.0
        ),
    ]


def test_predictor_is_deterministic_and_batch_independent(predictor: Predictor) -> None:
    image = Image.open(T1).convert("RGB")
    both = predictor.predict_image(image, persons=_people())
    again = predictor.predict_image(np.asarray(image), persons=_people())
    assert both.to_json()["persons"] == again.to_json()["persons"]
    alone = predictor.predict_image(image, persons=_people()[1:])
    a, b = both.persons[1], alone.persons[0]
    for name in predictor.class_names:
        assert a.final.scores[name] == pytest.approx(b.final.scores[name], abs=1e-5)
    assert a.exclusion_sequence == b.exclusion_sequence
    assert predictor.image_size == 32
    assert both.seconds["model"] > 0 and both.detectors["face"] == "given"


def test_predictor_accepts_path_and_handles_no_person(predictor: Predictor, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (96, 64), (128, 128, 128)).save(blank)
    result = predictor.predict_image(blank)
    assert result.persons == [] and result.source == str(blank)
    assert result.to_json()["num_persons"] == 0


def test_cuda_request_without_gpu_is_clear() -> None:
    from cocoer.infer import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")

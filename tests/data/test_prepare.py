"""cocoer-prepare on generated EMOTIC and CAER-S datasets: every person cached with a source,
re-runs skip done persons, interrupted runs resume, corrupt images are reported (or fatal with
--strict). Stub detectors keep most tests deterministic; one test runs the real OpenCV ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cocoer.cli.prepare import main
from cocoer.data.box_cache import SOURCES, cache_path, load_box_cache
from cocoer.data.caer_s import list_caer_s
from cocoer.data.emotic import read_emotic_mat
from cocoer.data.heuristics import head_from_body
from cocoer.data.records import BadSampleError, PersonRecord
from cocoer.data.synthetic import generate_caer_s, generate_emotic
from cocoer.detect import Detection
from cocoer.detect.boxes import containment
from cocoer.detect.prepare import prepare_dataset


class StubFace:
    """Finds one face in the upper middle of whatever it is shown; can interrupt a run."""

    source = "opencv"

    def __init__(self, interrupt_after: int | None = None, found: bool = True) -> None:
        self.calls = 0
        self.interrupt_after = interrupt_after
        self.found = found

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        if self.interrupt_after is not None and self.calls >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls += 1
        if not self.found:
            return []
        h, w = image_rgb.shape[:2]
        return [Detection((0.3 * w, 0.05 * h, 0.7 * w, 0.05 * h + 0.4 * w), 0.9, self.source)]


class StubPerson:
    """Finds one person box covering the middle of the image."""

    source = "opencv"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        self.calls += 1
        h, w = image_rgb.shape[:2]
        return [Detection((0.1 * w, 0.0, 0.9 * w, float(h)), 1.0, self.source)]


def emotic_records(root: Path) -> list[PersonRecord]:
    mat = root / "Annotations" / "Annotations.mat"
    return [r for s in ("train", "val", "test") for r in read_emotic_mat(mat, s)]


def cache_lines(root: Path) -> list[dict]:
    return [json.loads(x) for x in cache_path(root).read_text().splitlines() if x.strip()]


@pytest.fixture()
def emotic(tmp_path: Path) -> Path:
    root = tmp_path / "emotic"
    generate_emotic(root, n_train=4, n_val=2, n_test=2, seed=3, head_box_fraction=0.3)
    return root


def test_emotic_every_person_gets_boxes_and_reruns_skip(emotic: Path) -> None:
    records = emotic_records(emotic)
    need = [r for r in records if r.head_box is None]
    assert 0 < len(need) < len(records)  # some annotated heads, some to detect

    face = StubFace()
    summary = prepare_dataset("emotic", emotic, face_detector=face, progress=False)
    assert face.calls == len(need) == summary.detector_calls
    assert summary.written == len(records) and summary.skipped == 0
    cache = load_box_cache(emotic)
    assert set(cache) == {r.key for r in records}
    for rec in records:
        entry = cache[rec.key]
        assert entry["head_source"] in SOURCES and entry["body_source"] == "annotation"
        assert tuple(entry["body_box"]) == pytest.approx(rec.body_box)
        if rec.head_box is not None:
            assert entry["head_source"] == "annotation"
            assert tuple(entry["head_box"]) == pytest.approx(rec.head_box)
        else:
            assert entry["head_source"] == "opencv"
            assert containment(tuple(entry["head_box"]), rec.body_box) > 0.99
    assert sum(s.head_sources["annotation"] for s in summary.splits.values()) == len(records) - len(
        need
    )
    table = summary.table()
    assert "train" in table and "annotation" in table and "heuristic" in table

    before = cache_path(emotic).read_bytes()
    again = StubFace()
    summary2 = prepare_dataset("emotic", emotic, face_detector=again, progress=False)
    assert again.calls == 0 and summary2.detector_calls == 0 and summary2.written == 0
    assert summary2.face_detector is None  # nothing to do: no detector was even set up
    assert sum(s.done_before for s in summary2.splits.values()) == len(records)
    assert cache_path(emotic).read_bytes() == before
    # the cache content is still summarised on a re-run
    assert summary2.splits["train"].head_sources == summary.splits["train"].head_sources


def test_emotic_interrupted_run_resumes(emotic: Path) -> None:
    records = emotic_records(emotic)
    need = [r for r in records if r.head_box is None]
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("emotic", emotic, face_detector=StubFace(interrupt_after=2), progress=False)
    partial = cache_lines(emotic)
    assert 2 <= len(partial) < len(records)
    detected_before = sum(1 for e in partial if e["head_source"] == "opencv")
    assert detected_before == 2
    # a run killed mid-write leaves a torn line: it is cut off and reported as fixed
    with cache_path(emotic).open("a") as fh:
        fh.write('{"image": "emodb_small/images/x.jpg", "pers')

    face = StubFace()
    with pytest.warns(UserWarning, match="torn last line"):
        summary = prepare_dataset("emotic", emotic, face_detector=face, progress=False)
    assert face.calls == len(need) - detected_before
    assert summary.written == len(records) - len(partial)
    assert any("torn last line" in reason for _, reason in summary.report.fixed)
    lines = cache_lines(emotic)
    assert len(lines) == len(records)  # no duplicates
    assert {(e["image"], e["person"]) for e in lines} == {r.key for r in records}


def test_emotic_corrupt_image_reported_not_fatal(emotic: Path, capsys) -> None:
    records = emotic_records(emotic)
    victim = next(r for r in records if r.head_box is None)
    (emotic / victim.image).write_bytes(b"\xff\xd8 definitely not a jpeg")
    lost = [r for r in records if r.image == victim.image and r.head_box is None]

    face = StubFace()
    summary = prepare_dataset("emotic", emotic, face_detector=face, progress=False)
    assert summary.skipped == len(lost)
    assert summary.written == len(records) - len(lost)
    (where, reason), *_ = summary.report.skipped
    assert where.endswith(victim.image) and "unreadable" in reason
    assert victim.key not in load_box_cache(emotic)

    # a second run retries the corrupt image (and reports it again), nothing else
    again = StubFace()
    summary2 = prepare_dataset("emotic", emotic, face_detector=again, progress=False)
    assert again.calls == 0 and summary2.skipped == len(lost)

    # --strict turns it into an error naming the file
    with pytest.raises(BadSampleError, match=victim.image.rsplit("/", 1)[-1]):
        prepare_dataset("emotic", emotic, face_detector=StubFace(), progress=False, strict=True)
    code = main(["--dataset", "emotic", "--root", str(emotic), "--strict", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert victim.image.rsplit("/", 1)[-1] in err and "unreadable" in err


def test_caer_s_faces_bodies_and_fallbacks(tmp_path: Path) -> None:
    generate_caer_s(tmp_path, n_per_class_train=2, n_per_class_test=1, box_cache=False)
    base = tmp_path / "CAER-S"
    train_all = list_caer_s(tmp_path, "train", val_fraction=0.0)
    test = list_caer_s(tmp_path, "test")
    face, person = StubFace(), StubPerson()
    summary = prepare_dataset(
        "caer_s", tmp_path, face_detector=face, person_detector=person, progress=False
    )
    n = len(train_all) + len(test)
    assert summary.cache_path == base / "cocoer_boxes.jsonl"
    assert face.calls == person.calls == n == summary.written == 7 * 2 + 7 * 1
    assert summary.detector_calls == 2 * n
    cache = load_box_cache(base)
    # the datamodule's splits (val carved from train) are all covered
    for split in ("train", "val", "test"):
        for rec in list_caer_s(tmp_path, split):
            entry = cache[rec.key]
            assert entry["head_source"] == "opencv" and entry["body_source"] == "opencv"
            assert containment(tuple(entry["head_box"]), tuple(entry["body_box"])) > 0.99

    # no face and no person: the whole image is the body, the head is the heuristic
    other = tmp_path / "other"
    generate_caer_s(other, n_per_class_train=1, n_per_class_test=0, box_cache=False)
    nothing = StubFace(found=False)

    class NoPerson(StubPerson):
        def detect(self, image_rgb: np.ndarray) -> list[Detection]:
            return []

    prepare_dataset(
        "caer_s", other, splits=["train"], face_detector=nothing, person_detector=NoPerson(),
        progress=False,
    )  # fmt: skip
    for key, entry in load_box_cache(other / "CAER-S").items():
        assert entry["body_source"] == "heuristic" and entry["head_source"] == "heuristic"
        x1, y1, x2, y2 = entry["body_box"]
        assert (x1, y1) == (0.0, 0.0) and x2 > 0 and y2 > 0, key
        assert tuple(entry["head_box"]) == pytest.approx(head_from_body((x1, y1, x2, y2)))


def test_cli_with_real_opencv_detectors(tmp_path: Path, capsys) -> None:
    root = tmp_path / "emotic"
    generate_emotic(root, n_train=2, n_val=1, n_test=1, seed=1, head_box_fraction=0.0)
    records = emotic_records(root)
    report = tmp_path / "report.json"
    args = ["--dataset", "emotic", "--root", str(root), "--detector", "opencv"]
    code = main([*args, "--annotations", "csv", "--no-progress", "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert "OpenCVFaceDetector" in out and "boxes in the cache by source" in out
    assert json.loads(report.read_text())["num_skipped"] == 0
    cache = load_box_cache(root)
    assert set(cache) == {r.key for r in records}
    assert all(e["head_source"] in ("opencv", "heuristic") for e in cache.values())
    assert main([*args, "--no-progress"]) == 0  # the mat annotations: same keys, all done
    assert "calls this run: 0" in capsys.readouterr().out


def test_bad_arguments(tmp_path: Path, capsys) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare_dataset("affectnet", tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        prepare_dataset("emotic", tmp_path, splits=["dev"])
    with pytest.raises(FileNotFoundError, match=r"Annotations\.mat"):
        prepare_dataset("emotic", tmp_path, progress=False)
    missing = tmp_path / "nowhere"
    assert main(["--dataset", "caer_s", "--root", str(missing)]) == 1
    assert str(missing) in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--dataset", "emotic"])  # --root is required


def test_missing_insightface_models_fail_before_any_work(emotic: Path, capsys) -> None:
    models = emotic / "no_models"
    code = main(
        ["--dataset", "emotic", "--root", str(emotic), "--detector", "insightface",
         "--insightface-models", str(models), "--no-progress"]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert str(models) in err and "det_10g.onnx" in err
    assert load_box_cache(emotic) == {}


def test_emotic_bad_cases_all_accounted_for(tmp_path: Path) -> None:
    """The generator's bad inputs: skipped ones are reported and not cached, the rest cached."""
    root = tmp_path / "emotic"
    generate_emotic(root, n_train=2, n_val=1, n_test=1, head_box_fraction=0.0, bad_cases=True)
    bad = json.loads((root / "cocoer_synthetic_meta.json").read_text())["bad_cases"]
    assert bad
    summary = prepare_dataset("emotic", root, face_detector=StubFace(), progress=False)
    cache = load_box_cache(root)
    reported = " | ".join(f"{w}: {r}" for w, r in summary.report.items)
    for case in bad:
        key = (case["image"], case["person"])
        if case["expected"] == "skip":
            assert key not in cache, case
            assert case["image"].rsplit("/", 1)[-1] in reported and case["reason"] in reported
        else:
            assert key in cache, case
            assert cache[key]["head_source"] in SOURCES
    n_skipped = sum(1 for c in bad if c["expected"] == "skip")
    split_skips = sum(s.skipped + s.reader_skipped for s in summary.splits.values())
    assert split_skips == summary.report.num_skipped() == n_skipped

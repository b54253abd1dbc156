"""EMOTIC readers: .mat and CSV round trips, squeeze quirks, bad annotations, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from cocoer.constants import EMOTIC_CATEGORIES
from cocoer.data.emotic import read_emotic_csv, read_emotic_mat
from cocoer.data.records import BadSampleError, SkipReport
from cocoer.data.synthetic import generate_emotic, write_emotic_mat
from tests.support.generated_emotic import read_split

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("emotic")
    generate_emotic(root, n_train=30, n_val=10, n_test=10, seed=3, head_box_fraction=0.3)
    meta = json.loads((root / "cocoer_synthetic_meta.json").read_text())
    return root, meta


def _expected(meta, split):
    return [m for m in meta["persons"] if m["split"] == split]


@pytest.mark.parametrize("fmt", ["mat", "csv"])
@pytest.mark.parametrize("split", SPLITS)
def test_round_trip_gives_back_written_persons(generated, fmt, split):
    root, meta = generated
    rep = SkipReport()
    recs = read_split(root, fmt, split, rep)
    exp = _expected(meta, split)
    assert len(rep) == 0
    assert [(r.image, r.person) for r in recs] == [(m["image"], m["person"]) for m in exp]
    for r, m in zip(recs, exp, strict=True):
        assert r.split == split
        assert list(r.labels) == m["labels"]
        assert list(r.body_box) == [float(v) for v in m["body_box"]]
        assert (r.extra["valence"], r.extra["arousal"], r.extra["dominance"]) == tuple(
            m["continuous"]
        )
        assert r.extra["gender"] in ("Male", "Female")
        if fmt == "mat" and m["head_annotated"]:
            assert list(r.head_box) == [float(v) for v in m["head_box"]]
        else:
            assert r.head_box is None
    assert any(m["person"] == 1 for m in _expected(meta, "train"))  # several persons per image
    if fmt == "mat" and split == "train":
        assert any(r.head_box is not None for r in recs) and any(r.head_box is None for r in recs)


def test_raw_mat_layout_is_official_struct_arrays(generated):
    root, _ = generated
    raw = scipy.io.loadmat(root / "Annotations" / "Annotations.mat")
    train, val = raw["train"], raw["val"]
    assert train.shape == (1, 30) and val.shape == (1, 10)
    assert train.dtype.names == ("filename", "folder", "image_size", "original_database", "person")
    person = train[0, 0]["person"]
    assert person.dtype.names[:3] == (
        "body_bbox",
        "annotations_categories",
        "annotations_continuous",
    )
    assert {"gender", "age"} <= set(person.dtype.names)
    vperson = val[0, 0]["person"]
    assert {"combined_categories", "combined_continuous"} <= set(vperson.dtype.names)
    ann = vperson[0, 0]["annotations_categories"]
    assert ann.shape[1] >= 2  # several annotators in val
    assert set(train[0, 0]["image_size"].dtype.names) == {"n_col", "n_row"}


def _person(cats, box=(1.0, 2.0, 30.0, 40.0), combined=None, head=None):
    p = {
        "body_bbox": list(box),
        "annotators": [{"categories": list(c), "continuous": (5.0, 6.0, 7.0)} for c in cats],
        "combined_categories": list(combined if combined is not None else cats[0]),
        "combined_continuous": (5.0, 6.0, 7.0),
        "gender": "Male",
        "age": "Adult",
    }
    if head is not None:
        p["head_bbox"] = list(head)
    return p


def _entry(name, persons, size=(50, 60)):
    return {"filename": name, "folder": "mscoco/images", "size": size, "persons": persons}


def _write(tmp_path, splits):
    path = tmp_path / "Annotations.mat"
    write_emotic_mat(path, splits)
    return path


def test_squeeze_quirks_single_entry_person_label_annotator(tmp_path):
    path = _write(
        tmp_path,
        {
            "train": [_entry("a.jpg", [_person([["Peace"]], head=(5, 2, 15, 12))])],
            "val": [_entry("b.jpg", [_person([["Fear"]])])],  # one annotator in val
            "test": [_entry("c.jpg", [_person([["Pain", "Fear"], ["Pain"]], combined=[])])],
        },
    )
    (a,) = read_emotic_mat(path, "train")
    assert a.labels == (EMOTIC_CATEGORIES.index("Peace"),) and a.head_box == (5, 2, 15, 12)
    assert a.image == "mscoco/images/a.jpg" and a.image_size == (50, 60)
    (b,) = read_emotic_mat(path, "val")
    assert b.labels == (EMOTIC_CATEGORIES.index("Fear"),)
    (c,) = read_emotic_mat(path, "test")  # empty combined_categories -> union of annotators
    assert c.labels == tuple(sorted(EMOTIC_CATEGORIES.index(n) for n in ("Pain", "Fear")))


def test_bad_annotations_are_reported_not_dropped_silently(tmp_path):
    persons = [
        _person([["Peace"]]),
        _person([["Boredom", "Peace"]]),  # unknown category
        _person([[]]),  # empty label set
        _person([["Peace"]], box=(30, 40, 1, 2)),  # inverted: fixed
        _person([["Peace"]], box=(-10, 5, 80, 90)),  # outside 50x60: clipped, fixed
        _person([["Peace"]], box=(7, 5, 7, 20)),  # zero area
    ]
    path = _write(tmp_path, {"train": [_entry("x.jpg", persons)]})
    rep = SkipReport()
    recs = read_emotic_mat(path, "train", rep)
    assert [r.person for r in recs] == [0, 3, 4]
    assert recs[1].body_box == (1, 2, 30, 40)
    assert recs[2].body_box == (0, 5, 50, 60)
    reasons = dict(rep.items)
    assert (
        "unknown category" in reasons["mscoco/images/x.jpg#1"]
        and "Boredom" in reasons["mscoco/images/x.jpg#1"]
    )
    assert reasons["mscoco/images/x.jpg#2"] == "empty label set"
    assert "zero-area box" in reasons["mscoco/images/x.jpg#5"]
    assert rep.num_skipped() == 3 and rep.num_fixed() == 2
    with pytest.raises(BadSampleError, match=r"x\.jpg#1: unknown category"):
        read_emotic_mat(path, "train", SkipReport(), strict=True)


def test_case_insensitive_category_names(tmp_path):
    path = _write(
        tmp_path, {"train": [_entry("x.jpg", [_person([["doubt/confusion", " Peace"]])])]}
    )
    (r,) = read_emotic_mat(path, "train")
    assert r.labels == (
        EMOTIC_CATEGORIES.index("Doubt/Confusion"),
        EMOTIC_CATEGORIES.index("Peace"),
    )


def test_missing_split_raises_naming_the_file(tmp_path):
    path = _write(tmp_path, {"train": [_entry("x.jpg", [_person([["Peace"]])])]})
    with pytest.raises(ValueError, match=r"Annotations\.mat: split 'test' missing"):
        read_emotic_mat(path, "test")


def test_corrupt_mat_raises_naming_the_file(tmp_path):
    bad = tmp_path / "Annotations.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match=r"Annotations\.mat: corrupt or unreadable \.mat"):
        read_emotic_mat(bad, "train")
    good = _write(tmp_path / "g", {"train": [_entry("x.jpg", [_person([["Peace"]])])]})
    cut = tmp_path / "cut.mat"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut\.mat: corrupt or unreadable"):
        read_emotic_mat(cut, "train")
    with pytest.raises(FileNotFoundError, match="not found"):
        read_emotic_mat(tmp_path / "nope.mat", "train")


def test_csv_bad_rows_and_missing_columns(tmp_path):
    good = "Filename,Folder,Image Size,BBox,Categorical_Labels,Continuous_Labels,Gender,Age\n"
    rows = [
        'a.jpg,f,"[50, 60]","[1, 2, 30, 40]","[\'Peace\']","[5, 6, 7]",Male,Adult',
        'a.jpg,f,"[50, 60]","[1, 2, 30, 40]","[\'Nope\']","[5, 6, 7]",Male,Adult',
        'b.jpg,f,"[50, 60]","[1, 2, 30, 40]","[]","[5, 6, 7]",Male,Adult',
        'c.jpg,f,"[50, 60]","not a list(","[\'Peace\']","[5, 6, 7]",Male,Adult',
    ]
    path = tmp_path / "train.csv"
    path.write_text(good + "\n".join(rows) + "\n")
    rep = SkipReport()
    recs = read_emotic_csv(path, "train", rep)
    assert [(r.image, r.person) for r in recs] == [("f/a.jpg", 0)]
    reasons = dict(rep.items)
    assert "unknown category" in reasons["f/a.jpg#1"]
    assert reasons["f/b.jpg#0"] == "empty label set"
    assert "BBox" in reasons["f/c.jpg#0"]
    (tmp_path / "bad.csv").write_text("Filename,Folder\nx,y\n")
    with pytest.raises(ValueError, match=r"bad\.csv: missing CSV column"):
        read_emotic_csv(tmp_path / "bad.csv", "train")

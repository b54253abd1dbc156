"""SkipReport, BadSampleError and the box cache (format, resume, torn last line)."""

from __future__ import annotations

import json

import pytest

from cocoer.data.box_cache import CACHE_NAME, BoxCacheWriter, load_box_cache
from cocoer.data.records import BadSampleError, PersonRecord, SkipReport, skip_or_raise


def test_skip_report_counts_summary_and_json(tmp_path):
    rep = SkipReport()
    rep.add("a.jpg#0", "zero-area box (body_bbox): (1, 1, 1, 5)")
    rep.add("b.jpg#0", "zero-area box (body_bbox): (2, 2, 2, 2)")
    rep.add("c.jpg#1", "missing file: no such file [/x/c.jpg]")
    rep.add_fixed("d.jpg#0", "inverted box re-ordered (body_bbox): (5, 5, 1, 1)")
    assert len(rep) == 4
    assert rep.num_skipped() == 3 and rep.num_fixed() == 1
    assert rep.counts() == {
        "zero-area box (body_bbox)": 2,
        "missing file": 1,
        "fixed: inverted box re-ordered (body_bbox)": 1,
    }
    text = rep.summary()
    assert "3 skipped, 1 fixed" in text and "c.jpg#1" in text
    path = rep.write(tmp_path / "r.json")
    data = json.loads(path.read_text())
    assert data["num_skipped"] == 3 and len(data["items"]) == 4
    assert SkipReport.read(path).items == rep.items


def test_bad_sample_error_and_strict_switch():
    err = BadSampleError("x/y.jpg", "truncated image: cut")
    assert str(err) == "x/y.jpg: truncated image: cut" and isinstance(err, ValueError)
    # one-argument form survives DataLoader worker re-raising (type(msg))
    assert str(BadSampleError(str(err))) == str(err)
    rep = SkipReport()
    skip_or_raise(rep, False, "f.jpg", "why")
    assert rep.items == [("f.jpg", "why")]
    with pytest.raises(BadSampleError, match=r"f\.jpg: why"):
        skip_or_raise(rep, True, "f.jpg", "why")


def test_person_record_key():
    r = PersonRecord("a/b.jpg", 2, "train", (1,), (0, 0, 1, 1), None)
    assert r.key == ("a/b.jpg", 2) and r.record_id == "a/b.jpg#2"


def _entry(i: int, head=(1.0, 2.0, 3.0, 4.0)):
    return {
        "image": f"imgs/{i}.jpg",
        "person": i % 2,
        "head_box": list(head) if head else None,
        "head_source": "opencv" if head else None,
        "body_box": [0, 0, 10, 20],
        "body_source": "annotation",
    }


def test_box_cache_round_trip_resume_and_last_wins(tmp_path):
    assert load_box_cache(tmp_path) == {}
    with BoxCacheWriter(tmp_path) as w:
        w.append(_entry(0))
        w.append(_entry(1, head=None))
        assert w.done_keys() == {("imgs/0.jpg", 0), ("imgs/1.jpg", 1)}
    # a second run resumes: it sees the done keys and appends
    with BoxCacheWriter(tmp_path) as w:
        assert w.done_keys() == {("imgs/0.jpg", 0), ("imgs/1.jpg", 1)}
        w.append({**_entry(0), "head_box": [5, 5, 9, 9], "head_source": "insightface"})
    cache = load_box_cache(tmp_path)
    assert len(cache) == 2
    assert cache[("imgs/0.jpg", 0)]["head_box"] == [5.0, 5.0, 9.0, 9.0]  # last line wins
    assert cache[("imgs/0.jpg", 0)]["head_source"] == "insightface"
    assert cache[("imgs/1.jpg", 1)]["head_box"] is None
    lines = (tmp_path / CACHE_NAME).read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(ln) for ln in lines)


def test_box_cache_torn_last_line_is_reported_and_repaired(tmp_path):
    with BoxCacheWriter(tmp_path) as w:
        w.append(_entry(0))
        w.append(_entry(1))
    path = tmp_path / CACHE_NAME
    with path.open("a") as fh:
        fh.write('{"image": "imgs/2.jpg", "person": 0, "head_b')  # killed mid-write
    rep = SkipReport()
    cache = load_box_cache(tmp_path, rep)
    assert len(cache) == 2
    assert len(rep) == 1 and "torn last line" in rep.items[0][1] and CACHE_NAME in rep.items[0][0]
    with pytest.warns(UserWarning, match="torn last line"), BoxCacheWriter(tmp_path) as w:
        assert w.torn_lines == 1
        assert ("imgs/2.jpg", 0) not in w.done_keys()
        w.append(_entry(2))
    rep2 = SkipReport()
    assert len(load_box_cache(tmp_path, rep2)) == 3 and len(rep2) == 0


def test_box_cache_malformed_middle_line_and_bad_values_raise(tmp_path):
    path = tmp_path / CACHE_NAME
    path.write_text(json.dumps(_entry(0)) + "\nnot json\n" + json.dumps(_entry(1)) + "\n")
    with pytest.raises(ValueError, match=rf"{CACHE_NAME}:2: malformed JSON"):
        load_box_cache(tmp_path)
    with BoxCacheWriter(tmp_path / "b") as w:
        with pytest.raises(ValueError, match="4 finite numbers"):
            w.append({**_entry(0), "head_box": [1, 2, 3]})
        with pytest.raises(ValueError, match="head_source"):
            w.append({**_entry(0), "head_source": "guess"})

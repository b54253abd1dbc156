"""Generated datasets: determinism, class coverage, conflicts, labels visible in every level."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from cocoer.data.heuristics import head_from_body
from cocoer.data.synthetic import PALETTE, generate_caer_s, generate_emotic


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_palette_has_26_distinct_colours():
    assert len(PALETTE) == 26 == len(set(PALETTE))
    assert (128, 128, 128) not in PALETTE


def test_emotic_generation_is_deterministic(tmp_path):
    a = generate_emotic(tmp_path / "a", 12, 4, 4, seed=5, bad_cases=True)
    b = generate_emotic(tmp_path / "b", 12, 4, 4, seed=5, bad_cases=True)
    generate_emotic(tmp_path / "c", 12, 4, 4, seed=6, bad_cases=True)
    assert a["persons"] == b["persons"]
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_emotic_coverage_and_conflicts(tmp_path):
    summary = generate_emotic(tmp_path, 400, 100, 100, seed=0, conflict_rate=0.25)
    assert summary["images"] == {"train": 400, "val": 100, "test": 100}
    meta = json.loads((tmp_path / "cocoer_synthetic_meta.json").read_text())
    persons = meta["persons"]
    for split in ("train", "val", "test"):
        counts = Counter(c for m in persons if m["split"] == split for c in m["labels"])
        assert set(counts) == set(range(26)) and min(counts.values()) >= 3, (split, counts)
    sizes = Counter(len(m["labels"]) for m in persons)
    assert set(sizes) == {1, 2, 3}
    images = Counter(m["image"] for m in persons)
    assert 0.15 < sum(1 for n in images.values() if n == 2) / len(images) < 0.45
    conflicted = {m["image"] for m in persons if m["conflict_level"]}
    assert 0.17 < len(conflicted) / len(images) < 0.33
    assert (
        set(summary["conflicts"]) == {"context", "body", "head"}
        and min(summary["conflicts"].values()) > 30
    )
    for m in persons:
        if m["conflict_level"]:
            assert m["conflict_true_class"] in m["labels"]
            assert m["conflict_wrong_class"] not in m["labels"]


def _colour_fraction(arr, colour, tol=25):
    return float((np.abs(arr.astype(int) - colour).max(-1) < tol).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_are_painted_in_head_body_and_context(tmp_path, seed):
    """Oracle from pixels: each shown class colour is present where the meta says."""
    generate_emotic(tmp_path, 30, 2, 2, seed=seed, multi_person_rate=0.0)
    meta = json.loads((tmp_path / "cocoer_synthetic_meta.json").read_text())
    for m in meta["persons"]:
        arr = np.asarray(Image.open(tmp_path / m["image"]).convert("RGB"))
        shown = {lv: set(m["labels"]) for lv in ("head", "body", "context")}
        if m["conflict_level"]:
            lv = m["conflict_level"]
            shown[lv] = (shown[lv] - {m["conflict_true_class"]}) | {m["conflict_wrong_class"]}
        # the head region found by the documented heuristic (no annotation needed)
        hx1, hy1, hx2, hy2 = (round(v) for v in head_from_body(m["body_box"]))
        head = arr[hy1:hy2, hx1:hx2]
        tx1, ty1, tx2, ty2 = m["head_box"]
        true_head = arr[ty1:ty2, tx1:tx2]
        bx1, by1, bx2, by2 = m["body_box"]
        torso = arr[m["head_box"][3] : by2, bx1:bx2]
        outside = arr.copy()
        outside[by1:by2, bx1:bx2] = 128
        for c in range(26):
            col = PALETTE[c]
            if c in shown["head"]:  # visible in the heuristic head window
                assert _colour_fraction(head, col) > 0.06, (m["image"], "head", c)
            else:  # and absent from the true head box (the heuristic one may touch the torso)
                assert _colour_fraction(true_head, col) < 0.02, (m["image"], "head", c)
            f_torso = _colour_fraction(torso, col)
            assert (f_torso > 0.2) if c in shown["body"] else (f_torso < 0.05), (m["image"], c)
            if c in shown["context"]:
                assert _colour_fraction(outside, col) > 0.005, (m["image"], "context", c)


def test_caer_s_generation_layout_and_box_cache(tmp_path):
    summary = generate_caer_s(tmp_path, 6, 2, seed=0)
    base = tmp_path / "CAER-S"
    assert summary["images"] == {"train": 42, "test": 14}
    assert len(list((base / "train" / "Happy").glob("*.png"))) == 6
    lines = (base / "cocoer_boxes.jsonl").read_text().splitlines()
    assert len(lines) == 56 and json.loads(lines[0])["head_source"] == "annotation"
    again = generate_caer_s(tmp_path / "again", 6, 2, seed=0)
    assert again["images"] == summary["images"]
    assert _digest(base) == _digest(tmp_path / "again" / "CAER-S")


@pytest.mark.parametrize("level", ["body", "context"])
def test_conflict_area_shrinks_the_wrong_class_only(level):
    """Pixel oracle: with ``conflict_area`` 1/3 the wrong class covers about a third of its
    stripe (body) or one blob of three (context); the true classes are drawn as before."""
    from scipy import ndimage

    from cocoer.data.synthetic.render import NEUTRAL, layout_persons, render

    labels, wrong = [0, 1], 5
    layout = layout_persons(np.random.default_rng(0), 160, 160, 1)
    body_shown = [0, wrong] if level == "body" else labels
    context = [0, wrong] if level == "context" else labels
    (bx1, by1, bx2, by2), _ = layout[0]

    def draw(area):
        img = render(
            np.random.default_rng(3),
            160,
            160,
            layout,
            context,
            [(labels, body_shown)],
            list(PALETTE),
            wrong=wrong,
            conflict_area=area,
        )
        arr = np.asarray(img)
        is_w = (arr == PALETTE[wrong]).all(-1)
        body = np.zeros_like(is_w)
        body[by1:by2, bx1:bx2] = True
        return arr, is_w, body

    full, w_full, body = draw(1.0)
    third, w_third, _ = draw(1 / 3)
    assert (full == NEUTRAL).all(-1).sum() == 0
    if level == "body":
        ratio = (w_third & body).sum() / (w_full & body).sum()
        assert 0.25 < ratio < 0.42, ratio
        assert (third == NEUTRAL).all(-1).sum() > 0
        assert ((full == PALETTE[0]).all(-1) & body).sum() == (
            (third == PALETTE[0]).all(-1) & body
        ).sum()
    else:
        assert (w_full & body).sum() == 0 == (w_third & body).sum()
        assert ndimage.label(w_full)[1] == 3 and ndimage.label(w_third)[1] == 1

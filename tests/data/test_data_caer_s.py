"""CAER-S listing: root resolution, deterministic stratified validation split."""

from __future__ import annotations

import pytest

from cocoer.constants import CAER_S_CLASSES
from cocoer.data.caer_s import list_caer_s, resolve_caer_s_root, split_train_val


@pytest.fixture()
def caer_root(tmp_path):
    counts = {c: 10 + 3 * i for i, c in enumerate(CAER_S_CLASSES)}
    for split in ("train", "test"):
        for c, n in counts.items():
            d = tmp_path / "CAER-S" / split / c
            d.mkdir(parents=True)
            for j in range(n if split == "train" else 2):
                (d / f"{j:04d}.png").write_bytes(b"x")  # listing does not decode
    return tmp_path, counts


def test_root_resolution(caer_root, tmp_path):
    root, _ = caer_root
    assert resolve_caer_s_root(root) == root / "CAER-S"
    assert resolve_caer_s_root(root / "CAER-S") == root / "CAER-S"
    a = list_caer_s(root, "test")
    b = list_caer_s(root / "CAER-S", "test")
    assert a == b and len(a) == 14
    assert a[0].image == "test/Anger/0000.png" and a[0].labels == (0,) and a[0].person == 0


def test_split_is_deterministic_stratified_and_disjoint(caer_root):
    root, counts = caer_root
    train = list_caer_s(root, "train", val_fraction=0.2, split_seed=7)
    val = list_caer_s(root, "val", val_fraction=0.2, split_seed=7)
    assert list_caer_s(root, "val", val_fraction=0.2, split_seed=7) == val
    other = list_caer_s(root, "val", val_fraction=0.2, split_seed=8)
    assert {r.image for r in other} != {r.image for r in val}
    assert not {r.image for r in train} & {r.image for r in val}
    assert len(train) + len(val) == sum(counts.values())
    for i, c in enumerate(CAER_S_CLASSES):
        n_val = sum(1 for r in val if r.labels == (i,))
        assert n_val == round(0.2 * counts[c])  # stratified: the fraction of every class
        assert all(r.image.split("/")[1] == c for r in val if r.labels == (i,))
    assert all(r.split == "val" for r in val)


def test_split_independent_of_listing_order():
    files = [f"train/Fear/{j}.png" for j in range(20)]
    a = split_train_val(files, 0.25, 3, 2)
    b = split_train_val(list(reversed(files)), 0.25, 3, 2)
    assert a == b and len(a[1]) == 5
    with pytest.raises(ValueError, match="val_fraction"):
        split_train_val(files, 1.5, 0, 0)


def test_missing_split_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="CAER-S split folder not found"):
        list_caer_s(tmp_path, "train")

"""Every generated bad case is reported with its reason; no valid sample is lost; strict mode."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader

from cocoer.data import CaerSDataModule, EmoticDataModule
from cocoer.data.records import BadSampleError
from cocoer.data.synthetic import generate_caer_s, generate_emotic


@pytest.fixture(scope="module")
def bad_emotic(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_emotic")
    generate_emotic(root, n_train=10, n_val=4, n_test=4, seed=2, bad_cases=True)
    return root, json.loads((root / "cocoer_synthetic_meta.json").read_text())


@pytest.mark.parametrize("annotations", ["mat", "csv"])
def test_emotic_bad_cases_reported_and_no_valid_sample_lost(bad_emotic, annotations):
    root, meta = bad_emotic
    dm = EmoticDataModule(root, annotations=annotations, image_size=16, batch_size=4)
    dm.setup(None)
    kinds = {b["kind"] for b in meta["bad_cases"]}
    assert {
        "unreadable",
        "truncated",
        "missing",
        "grayscale",
        "rgba",
        "cmyk",
        "gray16",
        "exif_rotated",
        "box_outside",
        "inverted_box",
        "zero_area_box",
        "box_fully_outside",
        "unknown_category",
        "empty_labels",
    } <= kinds
    for split in ("train", "val", "test"):
        got = {(r.image, r.person) for r in dm.datasets[split].records}
        valid = {(m["image"], m["person"]) for m in meta["persons"] if m["split"] == split}
        assert got == valid, split  # nothing valid lost, nothing bad kept
    reports = {s: dict(r.items) for s, r in dm.skip_reports.items()}
    for b in meta["bad_cases"]:
        rid = f"{b['image']}#{b['person']}"
        rep = reports[b["split"]]
        if b["expected"] == "load":
            assert rid not in rep or rep[rid].startswith("fixed:"), (b, rep.get(rid))
        elif b["expected"] == "fixed":
            assert rep[rid].startswith("fixed:") and b["reason"] in rep[rid], (b, rep.get(rid))
        else:
            assert b["reason"] in rep[rid] and not rep[rid].startswith("fixed:"), (b, rep.get(rid))
    n_skip = sum(1 for b in meta["bad_cases"] if b["expected"] == "skip")
    assert sum(r.num_skipped() for r in dm.skip_reports.values()) == n_skip
    on_disk = json.loads((root / "cocoer_skipped_train.json").read_text())
    assert on_disk["num_skipped"] == dm.skip_reports["train"].num_skipped()


def test_emotic_special_images_load_with_sensible_values(bad_emotic):
    root, meta = bad_emotic
    dm = EmoticDataModule(root, image_size=16, batch_size=4)
    dm.setup("fit")
    ds = dm.datasets["train"]
    index = {(r.image, r.person): i for i, r in enumerate(ds.records)}
    for kind in ("grayscale", "rgba", "cmyk", "gray16", "exif_rotated"):
        (b,) = [b for b in meta["bad_cases"] if b["kind"] == kind]
        i = index[(b["image"], b["person"])]
        sample = ds[i]
        assert torch.isfinite(sample["context"]).all()
        assert sample["context"].std() > 0.1, kind  # not a flat/blank image
        if kind == "exif_rotated":
            assert ds.records[i].extra["loaded_size"] == (120, 100)  # displayed frame


def test_strict_mode_turns_the_first_skip_into_an_error(bad_emotic):
    root, _ = bad_emotic
    dm = EmoticDataModule(root, image_size=16, batch_size=4, strict=True)
    with pytest.raises(BadSampleError, match=r"bad_\w+\.jpg"):
        dm.setup("fit")


def test_load_time_failure_raises_naming_the_file(tmp_path):
    root = tmp_path / "e"
    generate_emotic(root, n_train=4, n_val=2, n_test=2, seed=0)
    dm = EmoticDataModule(root, image_size=16, batch_size=2)
    dm.setup("validate")
    ds = dm.datasets["val"]
    victim = root / ds.records[0].image
    victim.write_bytes(victim.read_bytes()[:300])  # damaged after setup
    with pytest.raises(BadSampleError, match=rf"{victim.name}: (truncated|unreadable) image"):
        ds[0]
    loader = DataLoader(ds, batch_size=2, num_workers=1)
    batches = iter(loader)
    try:
        with pytest.raises(BadSampleError, match=rf"{victim.name}: (truncated|unreadable) image"):
            next(batches)  # re-raised in the main process with its type and message
    finally:
        batches._shutdown_workers()  # now, rather than in a later test's garbage collection


def test_caer_s_bad_cases(tmp_path):
    generate_caer_s(tmp_path, 4, 2, seed=0, bad_cases=True)
    meta = json.loads((tmp_path / "CAER-S" / "cocoer_synthetic_meta.json").read_text())
    dm = CaerSDataModule(tmp_path, image_size=16, batch_size=4, val_fraction=0.25)
    dm.setup(None)
    got = {r.image for s in ("train", "val") for r in dm.datasets[s].records}
    valid = {m["image"] for m in meta["persons"] if m["split"] == "train"}
    assert got == valid
    reasons = {w: r for rep in dm.skip_reports.values() for w, r in rep.items}
    for b in meta["bad_cases"]:
        if b["expected"] == "skip":
            hits = [r for w, r in reasons.items() if w.startswith(b["image"])]
            assert len(hits) == 1 and b["reason"] in hits[0], b
    for kind in ("grayscale", "gray16", "rgba"):
        (b,) = [b for b in meta["bad_cases"] if b["kind"] == kind]
        split = (
            "train" if any(r.image == b["image"] for r in dm.datasets["train"].records) else "val"
        )
        ds = dm.datasets[split]
        i = [r.image for r in ds.records].index(b["image"])
        assert ds[i]["context"].std() > 0.1
    with pytest.raises(BadSampleError):
        CaerSDataModule(tmp_path, strict=True).setup("fit")

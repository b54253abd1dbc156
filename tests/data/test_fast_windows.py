"""The windows cache (cocoer.data.fast_windows) against today's PIL path (PersonWindowsDataset).

Stated tolerances (docs/performance.md):
- no augmentation (val / test, train with augment off): identical bytes, identical boxes;
- colour jitter + normalisation + flip: within 1e-4 of transforms.color_jitter / normalize /
  hflip_sample given the same factors (float32 arithmetic in another order);
- the random context crop taken from the stored M x M context: mean |difference| <= 4 / 255
  and 99th percentile <= 32 / 255 at S = 224 against the crop resized from the full image
  (t1.jpg, a 1280 x 886 photo, and the generated images); boxes within 1e-5.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cocoer.data import EmoticDataModule, generate_emotic
from cocoer.data.dataset import PersonWindowsDataset, resolve_records
from cocoer.data.fast_windows import cached_dataset, context_side
from cocoer.data.records import BadSampleError, PersonRecord, SkipReport
from cocoer.data.tensor_augment import (
    AugmentParams,
    crop_batch,
    finish_batch,
    jitter_normalize,
)
from cocoer.data.transforms import AugmentConfig, WindowTransform, color_jitter, hflip_sample
from cocoer.data.windows import crop_windows, load_image, normalize

insightface = pytest.importorskip("insightface")
IMAGES = Path(os.path.dirname(insightface.__file__)) / "data" / "images"
S = 64
AUG = AugmentConfig(crop_min_scale=0.6)


@pytest.fixture(scope="module")
def photo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with t1.jpg (six people at a table) and a few generated EMOTIC images."""
    root = tmp_path_factory.mktemp("fast")
    generate_emotic(root, n_train=6, n_val=2, n_test=2, seed=3, image_size=(120, 220))
    (root / "t1.jpg").write_bytes((IMAGES / "t1.jpg").read_bytes())
    return root


def _records(root: Path) -> list[PersonRecord]:
    """Three persons of t1.jpg (hand-placed boxes) and every generated train person."""
    dm = EmoticDataModule(root, image_size=S, box_cache=False)
    generated = dm.read_split("train", SkipReport())
    t1 = [
        PersonRecord("t1.jpg", i, "train", (i,), body, None)
        for i, body in enumerate([(60, 200, 360, 880), (380, 150, 620, 880), (900, 180, 1270, 880)])
    ]
    report = SkipReport()
    return resolve_records(t1 + generated, root, {}, report)


def _todays(records: list[PersonRecord], root: Path) -> list[dict[str, torch.Tensor]]:
    ds = PersonWindowsDataset(records, root, 26, WindowTransform(S))
    return [ds[i] for i in range(len(ds))]


def test_cache_without_augmentation_is_todays_windows(photo_root: Path, tmp_path: Path) -> None:
    records = _records(photo_root)
    report = SkipReport()
    off = AugmentConfig(enabled=False)
    ds = cached_dataset(records, photo_root, tmp_path, "val", 26, S, off, report)
    assert len(ds) == len(records) and report.num_skipped() == 0
    batch = finish_batch(ds.__getitems__(list(range(len(ds)))))
    for i, ref in enumerate(_todays(records, photo_root)):
        for key in ("context", "body", "head", "body_box", "head_box", "labels"):
            assert torch.equal(batch[key][i], ref[key]), (i, key)


def test_jitter_normalize_flip_match_transforms() -> None:
    gen = torch.Generator().manual_seed(0)
    wins = torch.randint(0, 256, (4, 3, 3, 8, 8), dtype=torch.uint8, generator=gen)
    jitter = torch.tensor([[1.2, 0.8, 1.1], [1.0, 1.0, 1.0], [0.85, 1.15, 0.9], [1.1, 1.2, 0.8]])
    got = jitter_normalize(wins, jitter)
    for i in range(4):
        ref = color_jitter([w.float() / 255.0 for w in wins[i]], *jitter[i].tolist())
        for level in range(3):
            torch.testing.assert_close(got[i, level], normalize(ref[level]), atol=1e-4, rtol=0)
    batch = {n: wins[:, j] for j, n in enumerate(("context", "body", "head"))}
    box = torch.tensor([[0.1, 0.2, 0.4, 0.9]]).repeat(4, 1)
    params = AugmentParams(
        crop=torch.tensor([[0.0, 0.0, 8.0, 8.0]]).repeat(4, 1),
        jitter=torch.ones(4, 3),
        flip=torch.tensor([True, False, True, False]),
    )
    ctx8 = wins[:, 0]
    cut = crop_batch(ctx8, torch.full((4, 2), 8.0), box * 8, box * 8, params, 8)
    done = finish_batch({**batch, **cut})
    for i in range(4):
        plain = {n: normalize(batch[n][i]) for n in ("context", "body", "head")}
        plain |= {"body_box": box[i], "head_box": box[i]}
        ref = hflip_sample(plain) if params.flip[i] else plain
        for key, value in ref.items():
            torch.testing.assert_close(done[key][i], value, atol=1e-5, rtol=0)


def test_cropped_context_within_tolerance(photo_root: Path, tmp_path: Path) -> None:
    S = 224  # the paper's window: the tolerance is stated at this size
    records = _records(photo_root)
    ds = cached_dataset(records, photo_root, tmp_path, "train", 26, S, AUG, SkipReport())
    assert ds.arrays()["context"].shape[-1] == context_side(S, AUG) == 290
    arr = ds.arrays()
    for i, rec in enumerate(records[:6]):
        w, h = rec.extra["loaded_size"]
        bx = rec.body_box
        assert bx is not None
        crop = (max(0.0, bx[0] - 0.1 * w), 0.1 * h, min(float(w), bx[2] + 0.05 * w), float(h))
        crop = (min(crop[0], bx[0]), min(crop[1], bx[1]), crop[2], crop[3])
        image = load_image(photo_root / rec.image)
        ref = crop_windows(image, bx, rec.head_box, S, crop)  # type: ignore[arg-type]
        img = int(arr["image_index"][i])
        params = AugmentParams(torch.tensor([crop]), torch.ones(1, 3), torch.tensor([False]))
        cut = crop_batch(
            torch.from_numpy(np.array(arr["context"][img : img + 1])),
            torch.tensor([[w, h]], dtype=torch.float32),
            torch.tensor([bx], dtype=torch.float32),
            torch.tensor([rec.head_box], dtype=torch.float32),
            params,
            S,
        )
        diff = (cut["context"][0].float() - ref["context"].float()).abs() / 255.0
        assert diff.mean() <= 4 / 255 and diff.quantile(0.99) <= 32 / 255, (rec.image, diff.mean())
        assert diff.mean() > 0  # resampled twice: not the same bytes (the test can fail)
        for key in ("body_box", "head_box"):
            torch.testing.assert_close(cut[key][0], ref[key], atol=1e-5, rtol=0)


def test_undecodable_image_is_a_counted_skip(photo_root: Path, tmp_path: Path) -> None:
    records = _records(photo_root)
    broken = tmp_path / "data"
    broken.mkdir()
    for name in {r.image for r in records}:
        (broken / name).parent.mkdir(parents=True, exist_ok=True)
        (broken / name).write_bytes((photo_root / name).read_bytes())
    victim = records[-1].image
    data = (broken / victim).read_bytes()
    (broken / victim).write_bytes(data[:200] + b"\0" * 64 + data[-64:])  # header, garbage, EOI
    report = SkipReport()
    off = AugmentConfig(enabled=False)
    ds = cached_dataset(records, broken, tmp_path / "c", "val", 26, S, off, report)
    lost = [r.record_id for r in records if r.image == victim]
    assert len(ds) == len(records) - len(lost)
    assert [w for w, _ in report.skipped] == lost
    assert all(victim in reason for _, reason in report.skipped)
    with pytest.raises(BadSampleError, match=victim):
        cached_dataset(records, broken, tmp_path / "c", "val", 26, S, off, SkipReport(), True)


def test_cache_reused_then_rebuilt_when_records_change(photo_root: Path, tmp_path: Path) -> None:
    records = _records(photo_root)
    off = AugmentConfig(enabled=False)
    ds = cached_dataset(records, photo_root, tmp_path, "val", 26, S, off, SkipReport())
    stamp = (ds.folder / "body.npy").stat().st_mtime_ns
    again = cached_dataset(records, photo_root, tmp_path, "val", 26, S, off, SkipReport())
    assert (again.folder / "body.npy").stat().st_mtime_ns == stamp
    moved = [dataclasses.replace(records[0], body_box=(70.0, 210.0, 350.0, 870.0)), *records[1:]]
    new = cached_dataset(moved, photo_root, tmp_path, "val", 26, S, off, SkipReport())
    ref = _todays(moved[:1], photo_root)[0]
    assert torch.equal(finish_batch(new.__getitems__([0]))["body"][0], ref["body"])


def test_datamodule_loader_with_cache(photo_root: Path, tmp_path: Path) -> None:
    kwargs = {"image_size": S, "batch_size": 4, "augment": True, "box_cache": False}
    plain = EmoticDataModule(photo_root, **kwargs)
    fast = EmoticDataModule(photo_root, windows_cache=True, windows_cache_dir=tmp_path, **kwargs)
    batches = []
    for dm in (plain, fast):
        dm.setup("fit")
        torch.manual_seed(0)
        batches.append(dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0))
    a, b = batches
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape and a[key].dtype == b[key].dtype, key
    assert len(fast.datasets["train"]) == len(plain.datasets["train"])
    assert (tmp_path / f"train_S{S}_M83" / "meta.json").is_file()

"""DataModules: batch contract, generated-on-first-use data, reports, config files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cocoer.constants import CAER_S_CLASSES, EMOTIC_CATEGORIES, IMAGENET_MEAN, IMAGENET_STD
from cocoer.data import CaerSDataModule, EmoticDataModule
from cocoer.data.synthetic import generate_emotic

CONF_DATA = Path(__file__).resolve().parents[2] / "conf" / "data"
SMALL = {"n_train": 16, "n_val": 6, "n_test": 6, "seed": 0, "image_size": [64, 96]}


@pytest.fixture(scope="module")
def emotic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("emotic_dm")
    generate_emotic(root, **SMALL)
    return root


def _check_batch(batch, bs, k, size, multi_label):
    for name in ("context", "body", "head"):
        x = batch[name]
        assert x.shape == (bs, 3, size, size) and x.dtype == torch.float32
        # ImageNet-normalised values of [0, 1] pixels
        lo = (0 - max(IMAGENET_MEAN)) / min(IMAGENET_STD)
        hi = (1 - min(IMAGENET_MEAN)) / min(IMAGENET_STD)
        assert x.min() >= lo - 1e-4 and x.max() <= hi + 1e-4
    for name in ("body_box", "head_box"):
        b = batch[name]
        assert b.shape == (bs, 4) and b.dtype == torch.float32
        assert (b >= 0).all() and (b <= 1).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    y = batch["labels"]
    assert y.shape == (bs, k) and y.dtype == torch.float32
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    if multi_label:
        assert (y.sum(1) >= 1).all()
    else:
        assert (y.sum(1) == 1).all()
    assert batch["index"].dtype == torch.int64 and batch["index"].shape == (bs,)


def test_emotic_batch_contract_and_labels_match_records(emotic_root):
    dm = EmoticDataModule(
        emotic_root, image_size=32, batch_size=5, num_classes=26, multi_label=True
    )
    dm.setup("fit")
    assert dm.num_classes == 26 and dm.multi_label and dm.class_names == EMOTIC_CATEGORIES
    batch = next(iter(dm.train_dataloader()))
    _check_batch(batch, 5, 26, 32, True)
    ds = dm.datasets["train"]
    for i, idx in enumerate(batch["index"].tolist()):
        rec = ds.records[idx]
        assert torch.nonzero(batch["labels"][i]).flatten().tolist() == list(rec.labels)
    val = next(iter(dm.val_dataloader()))
    _check_batch(val, 5, 26, 32, True)
    # val is deterministic (no augmentation) and in order
    again = next(iter(dm.val_dataloader()))
    assert torch.equal(val["context"], again["context"]) and val["index"].tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_records_have_resolved_boxes_with_sources(emotic_root):
    dm = EmoticDataModule(emotic_root, image_size=16, batch_size=4, annotations="csv")
    dm.setup("test")
    recs = dm.datasets["test"].records
    meta = json.loads((emotic_root / "cocoer_synthetic_meta.json").read_text())
    assert len(recs) == sum(1 for m in meta["persons"] if m["split"] == "test")
    for r in recs:
        assert r.body_box is not None and r.head_box is not None
        assert r.extra["body_source"] == "annotation" and r.extra["head_source"] == "heuristic"


def test_box_cache_fills_heads(tmp_path):
    from cocoer.data.box_cache import BoxCacheWriter

    root = tmp_path / "e"
    generate_emotic(root, **{**SMALL, "n_train": 4, "head_box_fraction": 0.0})
    dm0 = EmoticDataModule(root, image_size=16, batch_size=2)
    dm0.setup("validate")
    first = dm0.datasets["val"].records[0]
    with BoxCacheWriter(root) as w:
        w.append(
            {
                "image": first.image,
                "person": first.person,
                "head_box": [1, 2, 11, 12],
                "head_source": "insightface",
                "body_box": None,
                "body_source": None,
            }
        )
    dm = EmoticDataModule(root, image_size=16, batch_size=2)
    dm.setup("validate")
    rec = dm.datasets["val"].records[0]
    assert rec.head_box == (1, 2, 11, 12) and rec.extra["head_source"] == "insightface"
    assert dm.datasets["val"].records[1].extra["head_source"] == "heuristic"


def test_synthetic_generated_on_first_use_and_reports_written(tmp_path):
    root = tmp_path / "syn"
    dm = EmoticDataModule(root, image_size=16, batch_size=4, synthetic=SMALL, num_workers=0)
    dm.prepare_data()
    assert (root / "Annotations" / "Annotations.mat").is_file()
    dm.setup(None)
    assert set(dm.skip_reports) == {"train", "val", "test"}
    for split in ("train", "val", "test"):
        data = json.loads((root / f"cocoer_skipped_{split}.json").read_text())
        assert data["num_skipped"] == 0
    stamp = (root / "Annotations" / "Annotations.mat").stat().st_mtime_ns
    EmoticDataModule(root, synthetic=SMALL).prepare_data()  # not regenerated
    assert (root / "Annotations" / "Annotations.mat").stat().st_mtime_ns == stamp


def test_two_workers_loader(emotic_root):
    dm = EmoticDataModule(emotic_root, image_size=16, batch_size=8, num_workers=2)
    dm.setup("validate")
    loader = dm.val_dataloader()
    assert loader.persistent_workers
    n = sum(len(b["index"]) for b in loader)
    assert n == len(dm.datasets["val"])


def test_constructor_checks(tmp_path):
    with pytest.raises(ValueError, match="num_classes=7 but the dataset has 26"):
        EmoticDataModule(tmp_path, num_classes=7)
    with pytest.raises(ValueError, match="multi_label=True"):
        CaerSDataModule(tmp_path, multi_label=True)
    with pytest.raises(ValueError, match="unknown annotations"):
        EmoticDataModule(tmp_path, annotations="xml")
    with pytest.raises(
        FileNotFoundError, match=r"EMOTIC annotations not found: .*Annotations\.mat"
    ):
        EmoticDataModule(tmp_path / "none").setup("fit")
    with pytest.raises(ValueError, match="root is empty"):
        EmoticDataModule("")
    with pytest.raises(FileNotFoundError, match="CAER-S not found"):
        CaerSDataModule(tmp_path / "none").setup("fit")


def test_caer_s_datamodule_one_hot(tmp_path):
    dm = CaerSDataModule(
        tmp_path,
        image_size=24,
        batch_size=6,
        val_fraction=0.2,
        num_classes=7,
        multi_label=False,
        synthetic={"n_per_class_train": 5, "n_per_class_test": 2, "seed": 1},
    )
    dm.prepare_data()
    dm.setup(None)
    assert dm.class_names == CAER_S_CLASSES and not dm.multi_label
    assert len(dm.datasets["train"]) == 28 and len(dm.datasets["val"]) == 7
    assert len(dm.datasets["test"]) == 14
    _check_batch(next(iter(dm.train_dataloader())), 6, 7, 24, False)
    assert (tmp_path / "CAER-S" / "cocoer_skipped_val.json").is_file()
    assert dm.datasets["test"].records[0].extra["head_source"] == "annotation"


def test_caer_s_without_box_cache_uses_documented_fallbacks(tmp_path):
    from cocoer.data.heuristics import head_from_body
    from cocoer.data.synthetic import generate_caer_s

    generate_caer_s(tmp_path, 2, 1, seed=0, box_cache=False)
    dm = CaerSDataModule(tmp_path / "CAER-S", image_size=16, batch_size=2, val_fraction=0.0)
    dm.setup("test")
    r = dm.datasets["test"].records[0]
    w, h = r.extra["loaded_size"]
    assert r.body_box == (0.0, 0.0, w, h) and r.extra["body_source"] == "full_image"
    assert r.head_box == head_from_body(r.body_box) and r.extra["head_source"] == "heuristic"


def test_config_files_compose_and_instantiate(tmp_path, monkeypatch):
    import hydra
    from hydra import compose, initialize_config_dir

    monkeypatch.delenv("EMOTIC_ROOT", raising=False)
    monkeypatch.delenv("CAER_S_ROOT", raising=False)
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DATA, conf / "data")
    (conf / "config.yaml").write_text(
        f"defaults:\n  - data: emotic\n  - _self_\npaths:\n  data_dir: {tmp_path / 'd'}\n"
    )
    expect = {
        "emotic": (EmoticDataModule, tmp_path / "d" / "emotic", 26, True),
        "emotic_synthetic": (EmoticDataModule, tmp_path / "d" / "synthetic_emotic", 26, True),
        "caer_s": (CaerSDataModule, tmp_path / "d" / "CAER-S", 7, False),
        "caer_s_synthetic": (CaerSDataModule, tmp_path / "d" / "synthetic_caer_s", 7, False),
    }
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for name, (cls, root, k, multi) in expect.items():
            cfg = compose("config", overrides=[f"data={name}"])
            assert cfg.data.num_classes == k and cfg.data.multi_label == multi
            assert cfg.data.image_size == 224
            dm = hydra.utils.instantiate(cfg.data)
            assert isinstance(dm, cls) and dm.root == root and dm.augment.enabled
            assert (dm.synthetic is not None) == name.endswith("synthetic")


def test_generation_is_atomic_and_refuses_non_empty_folders(tmp_path):
    root = tmp_path / "syn"
    EmoticDataModule(root, synthetic=SMALL).prepare_data()
    assert (root / "Annotations" / "Annotations.mat").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["syn"]  # no scratch folder left behind
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty but without annotations"):
        EmoticDataModule(other, synthetic=SMALL).prepare_data()
    empty = tmp_path / "empty"
    empty.mkdir()
    CaerSDataModule(empty, synthetic={"n_per_class_train": 1, "n_per_class_test": 1}).prepare_data()
    assert (empty / "CAER-S" / "train" / "Sad" / "0000.png").is_file()


def test_stale_generated_data_is_made_again_and_real_data_never(tmp_path, capsys):
    """A generated dataset made with other settings (or by another generator version) is
    replaced on the next prepare_data; a folder without the generator's meta file is not."""
    from cocoer.data.synthetic.meta import is_stale
    from cocoer.data.synthetic.render import GENERATOR_VERSION, META_NAME

    root = tmp_path / "syn"
    EmoticDataModule(root, synthetic=SMALL).prepare_data()
    meta = json.loads((root / META_NAME).read_text())
    assert meta["version"] == GENERATOR_VERSION and meta["config"]["n_train"] == SMALL["n_train"]
    assert is_stale(root, SMALL) is None
    assert "n_train=16" in str(is_stale(root, {**SMALL, "n_train": 12}))

    capsys.readouterr()
    from omegaconf import OmegaConf  # as Hydra passes it: a DictConfig with a ListConfig inside

    EmoticDataModule(root, synthetic=OmegaConf.create({**SMALL, "n_train": 12})).prepare_data()
    assert "made with n_train=16, asked for 12; remaking it" in capsys.readouterr().out
    assert json.loads((root / META_NAME).read_text())["summary"]["images"]["train"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn"]  # the old copy is gone

    meta = json.loads((root / META_NAME).read_text())
    meta["version"] = GENERATOR_VERSION - 1
    (root / META_NAME).write_text(json.dumps(meta))
    assert "version" in str(is_stale(root, {**SMALL, "n_train": 12}))
    EmoticDataModule(root, synthetic={**SMALL, "n_train": 12}).prepare_data()
    assert json.loads((root / META_NAME).read_text())["version"] == GENERATOR_VERSION

    real = tmp_path / "real"
    shutil.copytree(root, real)
    (real / META_NAME).unlink()  # a dataset not made by the generator
    stamp = (real / "Annotations" / "Annotations.mat").stat().st_mtime_ns
    EmoticDataModule(real, synthetic={**SMALL, "n_train": 5}).prepare_data()
    assert (real / "Annotations" / "Annotations.mat").stat().st_mtime_ns == stamp

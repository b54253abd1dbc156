"""`cocoer-train data=emotic` / `data=caer_s` on datasets laid out as distributed.

The datasets are generated in the exact official layouts (EMOTIC: JPEGs + MATLAB
Annotations.mat, or the CSV export; CAER-S: CAER-S/{train,test}/<Emotion>/*.png with head
and body boxes from cocoer-prepare), then trained through the real data groups.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cocoer.train import train
from tests.support.helpers import TINY_OVERRIDES, compose_config


def tiny(data: str) -> list[str]:
    """TINY_OVERRIDES for another data group (the smoke experiment selects emotic_synthetic)."""
    return [*TINY_OVERRIDES, f"data={data}", "data.synthetic=null"]


def test_train_on_emotic_csv_export(tmp_path: Path, tiny_emotic_root: Path) -> None:
    over = [*tiny("emotic"), "data.annotations=csv"]
    metrics = train(compose_config("train", tmp_path, tiny_emotic_root, over))
    assert 0.0 <= metrics["test/mAP"] <= 100.0
    assert metrics["test/chance"] > 0


@pytest.fixture(scope="module")
def caer_s_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated CAER-S (no box cache), then boxes from cocoer-prepare's OpenCV detectors."""
    from cocoer.cli.prepare import main as prepare_main
    from cocoer.data import generate_caer_s

    root = tmp_path_factory.mktemp("caer")
    generate_caer_s(root, n_per_class_train=4, n_per_class_test=2, seed=1, box_cache=False)
    code = prepare_main(
        ["--dataset", "caer_s", "--root", str(root), "--detector", "opencv", "--no-progress"]
    )
    assert code == 0
    return root


def test_train_on_caer_s_layout_after_prepare(tmp_path: Path, caer_s_root: Path) -> None:
    from cocoer.data.box_cache import load_box_cache

    cache = load_box_cache(caer_s_root / "CAER-S")
    assert len(cache) == 7 * (4 + 2)  # every image got a head and a body box
    assert all(v["head_box"] and v["body_box"] for v in cache.values())
    over = [*tiny("caer_s"), "model.net.vi.tau=0.3"]
    cfg = compose_config("train", tmp_path, caer_s_root, over)
    assert cfg.callbacks.model_checkpoint.monitor == "val/acc"
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 100.0
    shares = [metrics[f"test/first_excluded/{m}"] for m in ("context", "body", "head")]
    assert sum(shares) == pytest.approx(100.0, abs=1e-3)

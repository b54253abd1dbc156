"""The mechanism on generated data: planted conflicts in the batch, the conflict statistics,
competition finding the planted level (and failing when the exclusion order is random), the
synthetic CLIP pre-training cache, the report, and the smoke run (slow)."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

import cocoer.data.synthetic.clip_pretrain
import cocoer.training.calibration
import cocoer.workspace.core
from cocoer.constants import LEVELS
from cocoer.data.synthetic import generate_emotic
from cocoer.models.heads import LevelMappings
from cocoer.training.epoch_metrics import ConflictExclusion, MaskedMeanAP, workspace_switched_off
from cocoer.workspace import Workspace
from cocoer.workspace.level_losses import LevelLoss


@pytest.mark.parametrize(
    ("module", "examples"),
    [(cocoer.training.calibration, 3), (cocoer.data.synthetic.clip_pretrain, 4)],
)
def test_doctests_run(module: ModuleType, examples: int) -> None:
    """The calibration policy and the caption drawing are documented by examples that run."""
    result = doctest.testmod(module, raise_on_error=False)
    assert result.attempted >= examples and result.failed == 0


def test_conflict_exclusion_counts_against_a_hand_count() -> None:
    order = torch.tensor([[2, 0, 1], [1, 2, 0], [0, 1, 2], [2, 1, 0], [0, 2, 1], [1, 0, 2]])
    planted = torch.tensor([2, 2, -1, 1, 0, -1])
    metric = ConflictExclusion()
    metric.update(order[:3], planted[:3])
    metric.update(order[3:], planted[3:])
    res = metric.compute()
    # conflicting persons: rows 0 (hit), 1 (miss), 3 (miss), 4 (hit) -> 2 of 4
    assert float(res["all"]) == pytest.approx(50.0) and float(res["n"]) == 4
    assert float(res["head"]) == pytest.approx(50.0)
    assert float(res["body"]) == 0.0 and float(res["context"]) == 100.0
    # chance: P(planted) = (1/4, 1/4, 2/4), P(first) over all 6 persons = (2/6, 2/6, 2/6)
    assert float(res["chance"]) == pytest.approx(100.0 / 3)


def test_masked_map_matches_the_subset_computed_alone() -> None:
    g = torch.Generator().manual_seed(0)
    scores, labels = torch.rand(40, 5, generator=g), (torch.rand(40, 5, generator=g) > 0.6)
    mask = torch.arange(40) % 3 == 0
    whole, sub = MaskedMeanAP(5), MaskedMeanAP(5)
    whole.update(scores, labels.float(), mask)
    sub.update(scores[mask], labels[mask].float(), torch.ones(int(mask.sum()), dtype=torch.bool))
    assert float(whole.compute()) == pytest.approx(float(sub.compute()))


def _planted_batch(B: int = 60, k: int = 8, d: int = 6) -> tuple:
    """Level logits that agree with y_t except at one planted level per sample."""
    g = torch.Generator().manual_seed(1)
    y_t = torch.zeros(B, k)
    y_t[torch.arange(B), torch.randint(k, (B,), generator=g)] = 1.0
    l = 4.0 * (2 * y_t - 1).unsqueeze(1).repeat(1, 3, 1) + 0.3 * torch.randn(B, 3, k, generator=g)
    planted = torch.arange(B) % 3
    wrong = (y_t.argmax(-1) + 1) % k
    l[torch.arange(B), planted] = -4.0
    l[torch.arange(B), planted, wrong] = 4.0
    maps = LevelMappings(3, 10, d, k)
    z, _, cache = maps(torch.randn(B, 3, 10, generator=g))
    return maps, z, l, cache, y_t, planted


def _found_share(ws: Workspace) -> float:
    maps, z, l, cache, y_t, planted = _planted_batch()
    metric = ConflictExclusion()
    metric.update(ws(maps, z, l, cache, y_t).order, planted)
    return float(metric.compute()["all"])


def test_competition_finds_the_planted_level() -> None:
    assert _found_share(Workspace(LevelLoss("bce"))) == 100.0


def test_random_exclusion_order_fails_to_find_it(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    monkeypatch.setattr(
        cocoer.workspace.core,
        "exclusion_order",
        lambda f, *_: torch.argsort(torch.rand(f.shape, generator=g), -1),
    )
    assert _found_share(Workspace(LevelLoss("bce"))) < 70.0


def test_workspace_switched_off_keeps_the_level_representations() -> None:
    maps, z, l, cache, y_t, _ = _planted_batch()
    ws = Workspace(LevelLoss("bce"))
    with workspace_switched_off(ws):
        out = ws(maps, z, l, cache, y_t)
    assert (ws.delta_scale, ws.inner_lr) == (1.0, 1.0)  # restored
    torch.testing.assert_close(out.z_hat, z)
    assert not torch.allclose(ws(maps, z, l, cache, y_t).z_hat, z)


def test_batches_carry_the_planted_level(tmp_path: Path) -> None:
    from cocoer.data import EmoticDataModule

    generate_emotic(tmp_path, 16, 4, 12, seed=2, image_size=[48, 64], conflict_rate=0.5)
    meta = json.loads((tmp_path / "cocoer_synthetic_meta.json").read_text())
    want = {
        (m["image"], m["person"]): -1
        if m["conflict_level"] is None
        else LEVELS.index(m["conflict_level"])
        for m in meta["persons"]
    }
    dm = EmoticDataModule(tmp_path, image_size=32, batch_size=64)
    dm.setup("test")
    ds = dm.datasets["test"]
    batch = next(iter(dm.test_dataloader()))
    got = [int(v) for v in batch["conflict_level"]]
    assert got == [want[ds.records[int(i)].key] for i in batch["index"]]
    assert any(v >= 0 for v in got) and any(v < 0 for v in got)


def test_synthetic_clip_is_cached_and_remade_on_change(tmp_path: Path) -> None:
    from cocoer.data.synthetic.clip_pretrain import pretrain_synthetic_clip
    from cocoer.models.vi import build_clip

    generate_emotic(tmp_path, 10, 2, 2, seed=0, image_size=[48, 64])
    path = pretrain_synthetic_clip(tmp_path, epochs=1, batch_size=8)
    info = json.loads((path.parent / "config.json").read_text())
    assert info["images"] == 10 and info["config"]["epochs"] == 1
    stamp = path.stat().st_mtime_ns
    assert pretrain_synthetic_clip(tmp_path, epochs=1, batch_size=8) == path
    assert path.stat().st_mtime_ns == stamp  # reused
    pretrain_synthetic_clip(tmp_path, epochs=1, batch_size=8, lr=1e-3)  # other config
    assert json.loads((path.parent / "config.json").read_text())["key"] != info["key"]
    trained = build_clip("cocoer-tiny-RN", weights_path=str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(trained.state_dict()["text_projection"], state["text_projection"])


def test_report_writes_table_and_plot(tmp_path: Path) -> None:
    from cocoer.cli.report import main

    metrics = {"test/mAP": 50.0, "test/mAP_ws_off": 49.0, "test/conflict_first_excluded": 80.0}
    metrics.update({f"test/first_excluded/{lvl}": 30.0 + i for i, lvl in enumerate(LEVELS)})
    metrics.update(
        {f"test/conflict_first_excluded/{lvl}": 70.0 + i for i, lvl in enumerate(LEVELS)}
    )
    metrics.update({"test/mAP/conflict_persons": 40.0, "test/mAP_ws_off/conflict_persons": 38.5})
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert main([str(tmp_path)]) == 0
    table = (tmp_path / "mechanism.md").read_text()
    assert "| planted at head | 72.00 |" in table and "| workspace off | 38.50 |" in table
    assert (tmp_path / "mechanism.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "metrics.json").write_text(json.dumps({"test/mAP": 1.0}))
    assert main([str(tmp_path)]) == 2  # real data: no conflict metrics -> a clear error


@pytest.mark.slow
def test_smoke_run_finds_the_planted_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's smoke run: V-I at least twice chance, the planted level found first in at
    least 70 % of the conflicting test persons; with a random exclusion order, not."""
    from cocoer.train import prepare
    from tests.support.helpers import compose_config

    cfg = compose_config("train", tmp_path, overrides=["experiment=smoke", "logger=csv"])
    datamodule, model, trainer = prepare(cfg)
    trainer.fit(model, datamodule=datamodule)
    found = trainer.test(model, datamodule=datamodule)[0]
    assert found["test/mAP_t"] >= 2 * 7.9
    assert found["test/conflict_first_excluded"] >= 70.0
    g = torch.Generator().manual_seed(0)
    monkeypatch.setattr(
        cocoer.workspace.core,
        "exclusion_order",
        lambda f, *_: torch.argsort(torch.rand(f.shape, generator=g), -1),
    )
    shuffled = trainer.test(model, datamodule=datamodule)[0]
    assert shuffled["test/conflict_first_excluded"] < 70.0

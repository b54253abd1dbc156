"""`cocoer-aggregate` on hand-made job directories (fast); the real multirun is in
tests/training/test_experiments_multirun.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cocoer.runs.aggregate import aggregate, collect
from cocoer.runs.paper import paper_value


def _job(sweep: Path, name: str, ablation: dict, seed: int, metrics: dict | None) -> None:
    job = sweep / name
    job.mkdir(parents=True)
    cfg = {"ablation": ablation, "seed": seed, "data": {"multi_label": True}}
    (job / "config.yaml").write_text(yaml.safe_dump(cfg))
    (job / "overrides.txt").write_text(f"{name}\n")
    if metrics is None:
        (job / "failed.json").write_text(json.dumps({"message": "boom", "traceback": "..."}))
        return
    shares = {"test/first_excluded/context": 10.0, "test/first_excluded/body": 30.0,
              "test/first_excluded/head": 60.0}  # fmt: skip
    (job / "metrics.json").write_text(json.dumps({**metrics, **shares}))
    (job / "done").write_text("{}")


def test_tables_average_seeds_and_put_the_paper_beside(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for seed, (a, b) in enumerate([(30.0, 20.0), (32.0, 22.0)]):
        _job(sweep, f"alpha=0.1,seed={seed}", {"name": "alpha", "row": 0.1}, seed, {"test/mAP": a})
        _job(sweep, f"alpha=0.8,seed={seed}", {"name": "alpha", "row": 0.8}, seed, {"test/mAP": b})
    _job(sweep, "alpha=0.4,seed=0", {"name": "alpha", "row": 0.4}, 0, None)
    _job(sweep, "w=vi", {"name": "beta", "row": "vi"}, 0, {"test/mAP": 25.0})

    jobs = collect(sweep)
    assert sorted(jobs["status"]) == ["done"] * 5 + ["failed"]
    text = aggregate(sweep)
    alpha = pd.read_csv(sweep / "summary" / "alpha.csv")
    assert list(alpha["alpha"]) == [0.1, 0.8]  # the failed row has no finished job
    assert list(alpha["ours mAP"]) == ["31.00 ± 1.41", "21.00 ± 1.41"]
    assert list(alpha["paper mAP"]) == [37.32, 36.16]
    beta = pd.read_csv(sweep / "summary" / "beta.csv")
    assert beta.iloc[0].tolist()[:4] == ["vi", 25.0, 1, 34.93]
    fe = pd.read_csv(sweep / "summary" / "first_excluded.csv")
    assert fe.iloc[-1].tolist() == ["EMOTIC", "paper", 10.73, 25.5, 63.77]
    assert (fe[fe["source"] != "paper"]["head"] == 60.0).all()
    assert (sweep / "summary" / "alpha.png").stat().st_size > 1000
    assert "Table 4b" in text and "Table 4c" in text and "boom" in text


def test_paper_values_match_numbers_not_strings() -> None:
    assert paper_value("alpha", 0) == 34.81
    assert paper_value("alpha", "1") == 35.87
    assert paper_value("patch", 4) == 36.77
    assert paper_value("dims", "1024x256") == 37.32
    assert paper_value("update", "all") is None
    assert paper_value("nope", 1) is None


def test_empty_or_missing_sweep_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such sweep"):
        aggregate(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no jobs"):
        aggregate(tmp_path / "empty")

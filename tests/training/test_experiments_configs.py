"""Every experiment and sweep config composes, validates, and sweeps what it says."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from cocoer import config_dir
from cocoer.configs import validate_config
from cocoer.runs.paper import ABLATIONS
from tests.support.helpers import compose_config

SEARCHES = sorted(p.stem for p in (config_dir() / "hparams_search").glob("*.yaml"))


def _grid(cfg) -> dict[str, list[str]]:
    params = cfg.hydra.sweeper.params
    parser = OverridesParser.create()
    out = {}
    for key, spec in params.items():
        override = parser.parse_override(f"{key}={spec}")
        out[key] = [str(v) for v in override.sweep_string_iterator()]
    return out


@pytest.mark.parametrize("search", SEARCHES)
def test_every_sweep_composes_and_each_grid_point_validates(tmp_path: Path, search: str) -> None:
    exp = "emotic_smoke" if search.startswith("smoke_") else "emotic_paper"
    cfg = compose_config(
        "train", tmp_path, overrides=[f"experiment={exp}", f"hparams_search={search}"]
    )
    assert cfg.ablation.name in ABLATIONS
    grid = _grid(cfg)
    assert grid, "a sweep without parameters"
    (key, values), *_ = grid.items()
    rows = set()
    for v in values:
        point = compose_config(
            "train",
            tmp_path,
            overrides=[f"experiment={exp}", f"hparams_search={search}", f"{key}={v}"],
        )
        validate_config(point)
        rows.add(str(point.ablation.row))
    if search != "seeds":  # seeds repeat one row; every other grid point is its own row
        assert len(rows) == len(values)


def test_paper_sweeps_cover_the_paper_rows(tmp_path: Path) -> None:
    for name in ("alpha", "dims", "beta", "patch", "losses", "backbone", "clip"):
        cfg = compose_config(
            "train", tmp_path, overrides=["experiment=emotic_paper", f"hparams_search={name}"]
        )
        values = next(iter(_grid(cfg).values()))
        assert {float(v) if name == "alpha" else v for v in values} == {
            float(k) if name == "alpha" else k for k in ABLATIONS[name].paper
        }, name


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("ablation.dims=4096x1024", {"model.net.hfe.d_h": 4096, "model.net.d": 1024}),
        ("ablation.dims=512x128", {"model.net.hfe.d_h": 512, "model.net.d": 128}),
    ],
)
def test_dims_presets_set_both_widths(tmp_path: Path, override: str, expect: dict) -> None:
    cfg = compose_config("train", tmp_path, overrides=["hparams_search=dims", override])
    for key, value in expect.items():
        assert OmegaConf.select(cfg, key) == value


def test_loss_presets(tmp_path: Path) -> None:
    g = compose_config(
        "train", tmp_path, overrides=["hparams_search=losses", "ablation.losses=G_only"]
    )
    assert [g.model.loss[k] for k in ("beta_c", "beta_b", "beta_h", "beta_t", "beta_G")] == [
        0.0, 0.0, 0.0, 0.0, 1.0
    ]  # fmt: skip
    b = compose_config(
        "train", tmp_path, overrides=["hparams_search=beta", "ablation.weighting=body_only"]
    )
    assert (b.model.loss.beta_c, b.model.loss.beta_b, b.model.loss.beta_h) == (0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("experiment", "expect"),
    [
        ("emotic_paper", (64, 9, 6e-5, 3, 0.01, "main")),
        ("caer_s_paper", (96, 70, 8e-5, 20, 0.5, "main")),
        ("emotic_prealign", (64, 3, 1e-4, 3, 0.1, "prealign")),
        ("caer_s_prealign", (96, 3, 1e-4, 3, 0.1, "prealign")),
    ],
)
def test_paper_experiments_follow_section_6(tmp_path: Path, experiment: str, expect: tuple) -> None:
    cfg = compose_config("train", tmp_path, overrides=[f"experiment={experiment}"])
    m = cfg.model
    got = (
        cfg.data.batch_size,
        cfg.trainer.max_epochs,
        m.optimizer.lr,
        m.scheduler.step_size,
        m.scheduler.gamma,
        m.stage,
    )
    assert got == expect
    assert m.optimizer.weight_decay == 5e-4
    assert m.net.hfe.backbone == "resnet50" and m.net.vi.clip_name == "RN50"


def test_run_and_sweep_directories_are_stable(tmp_path: Path) -> None:
    cfg = compose_config("train", tmp_path, overrides=["run_name=my_run", "sweep_name=my_sweep"])
    assert cfg.hydra.run.dir.endswith("train/runs/my_run")
    assert cfg.hydra.sweep.dir.endswith("train/multiruns/my_sweep")
    assert cfg.hydra.sweep.subdir == "${hydra.job.override_dirname}" or "override_dirname" in str(
        OmegaConf.to_container(cfg.hydra.sweep)["subdir"]
    )
    excluded = set(cfg.hydra.job.config.override_dirname.exclude_keys)
    assert {"resume", "ckpt_path", "sweep_name", "run_name"} <= excluded

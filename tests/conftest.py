"""Shared fixtures: a tiny generated dataset and a tiny trained checkpoint (trained once per
test session). Helpers that test files import are in ``tests/support/helpers.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict

from tests.support.helpers import TINY_DATA, TINY_OVERRIDES, compose_config


@pytest.fixture
def float64() -> Iterator[None]:
    """float64 as torch's default dtype for one test (restored afterwards: other tests share
    the process). Modules whose oracles need it say ``pytest.mark.usefixtures("float64")``."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(scope="session")
def tiny_emotic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset in the EMOTIC layout (generated once per session)."""
    from cocoer.data import generate_emotic

    root = tmp_path_factory.mktemp("emotic_tiny")
    generate_emotic(root, **TINY_DATA)
    return root


@pytest.fixture
def tiny_train_cfg(tmp_path: Path, tiny_emotic_root: Path) -> DictConfig:
    """The smoke experiment shrunk to seconds, on the tiny generated dataset."""
    return compose_config("train", tmp_path, tiny_emotic_root, TINY_OVERRIDES)


@pytest.fixture
def fast_dev_run_cfg(tmp_path: Path, tiny_emotic_root: Path) -> Callable[..., DictConfig]:
    """``make(*overrides)``: the tiny run as a fast dev run (``debug=fdr``: one batch per
    stage), with no checkpoint monitor (a fast dev run logs no validation metric)."""

    def make(*overrides: str) -> DictConfig:
        over = [*TINY_OVERRIDES, "debug=fdr", *overrides]
        cfg = compose_config("train", tmp_path, tiny_emotic_root, over)
        with open_dict(cfg):
            cfg.callbacks.model_checkpoint.monitor = None
        return cfg

    return make


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_emotic_root: Path) -> Path:
    """A checkpoint of the tiny model trained for one epoch (once per session)."""
    from cocoer.train import train

    out = tmp_path_factory.mktemp("tiny_ckpt")
    cfg = compose_config("train", out, tiny_emotic_root, [*TINY_OVERRIDES, "logger=csv"])
    metrics = train(cfg)
    path = Path(metrics["best_ckpt"])
    assert path.is_file()
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fuzz suite's counts (inputs tried per reader, outcomes), if it ran."""
    import json

    counts_file = Path(__file__).resolve().parents[1] / ".pytest_cache" / "cocoer_fuzz_counts.json"
    if not counts_file.is_file():
        return
    counts = json.loads(counts_file.read_text())
    tr = terminalreporter
    tr.section("fuzz counts (tests/safety/test_fuzz.py)")
    tr.write_line(f"{'reader':<18}{'inputs':>8}{'ok':>6}{'error':>7}{'(of ok) skip':>14}")
    for reader, c in sorted(counts.items()):
        tried = c.get("ok", 0) + c.get("error", 0)
        line = f"{reader:<18}{tried:>8}{c.get('ok', 0):>6}{c.get('error', 0):>7}"
        tr.write_line(line + f"{c.get('skip', 0):>14}")

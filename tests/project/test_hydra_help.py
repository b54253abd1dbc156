"""``cocoer-train --help`` / ``cocoer-eval --help``: the config groups and options Hydra
itself finds, listed without composing the config (and without importing torch)."""

from __future__ import annotations

import subprocess
import sys

from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra

from cocoer import config_dir
from cocoer.cli.hydra_help import config_groups
from cocoer.configs import register_configs


def _structured(group: str) -> set[str]:
    """Options of ``group`` that the schema registers in the ConfigStore (not files)."""
    try:
        return {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    except OSError:  # no such group in the store
        return set()


def test_the_groups_are_hydras_own() -> None:
    """The oracle: Hydra's config loader lists the same groups and options (less the
    schema nodes that cocoer.configs registers in the ConfigStore)."""
    register_configs()
    conf = config_dir()
    ours = config_groups(conf)
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        assert "model" in ours and "cocoer_paper" in ours["model"]
        for group, options in ours.items():
            found = set(loader.get_group_options(group)) - _structured(group)
            assert sorted(found) == options, group


def test_help_imports_no_torch_and_lists_the_groups() -> None:
    for module in ("cocoer.cli.train", "cocoer.cli.evaluate"):
        code = (
            f"import sys; sys.argv = ['x', '--help']; import {module} as m; m.main(); "
            "assert 'torch' not in sys.modules, 'torch imported'"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "model: cocoer_authors_demo, cocoer_authors_eval, cocoer_paper" in proc.stdout
        assert "--cfg job" in proc.stdout

"""Configuration does not load the training stack: ``import cocoer.configs`` (the Hydra
schema and its checks) leaves Lightning and torchmetrics unimported (a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("lightning", "pytorch_lightning", "torchmetrics")


def test_importing_the_configs_loads_no_lightning():
    code = (
        "import json, sys; import cocoer.configs, cocoer.training.config; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_probe_sees_lightning_when_it_is_imported():
    """The same probe after importing the LightningModule finds Lightning (it can fail)."""
    code = (
        "import json, sys; import cocoer.training.module; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert {"lightning", "torchmetrics"} <= set(json.loads(out.stdout.strip().splitlines()[-1]))

"""What importing a part of the package drags in: inference (PyTorch and ONNX engines, the
model loader) without Lightning, and the argparse console scripts answering ``--help``
without torch. Each check runs in a fresh interpreter (``sys.modules`` of this one already
holds everything). Speed itself is measured by ``benchmarks/cli_help.py``, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIGHTNING = ("lightning", "pytorch_lightning", "torchmetrics")
HEAVY = ("torch", *LIGHTNING)

#: console script -> the module of its ``main`` (pyproject.toml [project.scripts])
ARGPARSE_SCRIPTS = {
    "cocoer-prepare": "cocoer.cli.prepare",
    "cocoer-infer": "cocoer.cli.infer",
    "cocoer-params": "cocoer.cli.params",
    "cocoer-convert": "cocoer.cli.convert",
    "cocoer-export": "cocoer.cli.export",
    "cocoer-aggregate": "cocoer.cli.aggregate",
    "cocoer-report": "cocoer.cli.report",
    "cocoer-demo": "cocoer.demo.cli",
}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )


def _loaded_after(code: str) -> list[str]:
    """The top-level packages of :data:`HEAVY` imported once ``code`` has run."""
    listing = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\nimport json, sys\n{listing}"
    proc = _python(probe)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    return [m for m in HEAVY if m in loaded]


def test_the_probe_sees_an_import_of_lightning():
    """The oracle: the same probe reports Lightning when it is imported."""
    assert "lightning" in _loaded_after("import lightning")


def test_inference_imports_no_lightning():
    """The snippet of issue 28, on the package and on both engines and the model loader."""
    proc = _python(
        "import cocoer.infer, sys; assert not any(m.startswith(('lightning',"
        "'pytorch_lightning','torchmetrics')) for m in sys.modules)"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = (
        "import cocoer.infer, cocoer.infer.predictor, cocoer.infer.onnx_engine\n"
        "import cocoer.checkpoint.model, cocoer.cli.infer\n"
        "cocoer.infer.Predictor, cocoer.infer.OnnxPredictor"
    )
    assert not [m for m in _loaded_after(code) if m in LIGHTNING]


def test_the_onnx_path_imports_no_torch():
    """The ONNX Runtime engine and what cocoer-infer --onnx runs import neither torch nor
    Lightning (cocoer.models.preprocess, which it reads, is torch-free)."""
    code = (
        "import cocoer.infer.onnx_engine, cocoer.cli.infer, cocoer.infer.runner\n"
        "import cocoer.infer.video, cocoer.infer.inputs, cocoer.models.preprocess"
    )
    assert _loaded_after(code) == []


@pytest.mark.parametrize("script", sorted(ARGPARSE_SCRIPTS))
def test_argparse_scripts_answer_help_without_torch(script: str):
    """``SCRIPT --help`` prints its usage and exits 0 having imported neither torch nor
    Lightning (the heavy imports come after the arguments are parsed)."""
    module = ARGPARSE_SCRIPTS[script]
    code = (
        f"import sys\nsys.argv = [{script!r}, '--help']\nfrom {module} import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    )
    proc = _python(code + "import json\nprint(json.dumps(sorted(sys.modules)))")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout and script in proc.stdout
    loaded = {m.split(".")[0] for m in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert not loaded & set(HEAVY), f"{script} --help imported {sorted(loaded & set(HEAVY))}"


def test_every_argparse_console_script_is_checked():
    """A console script added to pyproject.toml must be listed here (or be a Hydra one)."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    hydra = {"cocoer-train", "cocoer-eval"}
    assert set(scripts) == set(ARGPARSE_SCRIPTS) | hydra
    for name, module in ARGPARSE_SCRIPTS.items():
        assert scripts[name] == f"{module}:main"

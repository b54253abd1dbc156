"""``cocoer.checkpoint.model.load_model``, the one way a model is rebuilt from a file: the
model it returns computes what the saved one did (checkpoint and safetensors export), its
thresholds and window size are the file's, a file that does not fit is refused in one line,
and inference through it imports no Lightning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cocoer.checkpoint.model import load_model
from cocoer.errors import CheckpointError
from cocoer.models import create_model
from tests.support.tiny_models import TINY_NET

ROOT = Path(__file__).resolve().parents[2]
TINY = TINY_NET
THRESHOLDS = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.55])


def _batch(n: int = 3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    batch = {k: torch.randn(n, 3, 32, 32, generator=gen) for k in ("context", "body", "head")}
    batch["body_box"] = torch.tensor([[0.1, 0.1, 0.7, 0.9]]).repeat(n, 1)
    batch["head_box"] = torch.tensor([[0.3, 0.1, 0.5, 0.3]]).repeat(n, 1)
    return batch


def _write(path: Path, state: dict[str, torch.Tensor], net: dict | None = None) -> Path:
    """A checkpoint as the LightningModule writes it (plain containers)."""
    torch.save({"state_dict": state, "hyper_parameters": {"net": net or TINY}}, path)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, dict, Path]:
    torch.manual_seed(0)
    net = create_model(TINY, pretrained=False).eval()
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    state["thresholds"] = THRESHOLDS.clone()
    path = _write(tmp_path_factory.mktemp("load_model") / "m.ckpt", state)
    return net, state, path


def test_a_checkpoint_comes_back_as_the_model_it_was(saved) -> None:
    net, _, path = saved
    loaded = load_model(path)
    batch = _batch()
    with torch.no_grad():
        want, got = net(batch), loaded.net(batch)
    for key in ("logits_G", "logits_t", "logits_levels"):
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    assert not loaded.net.training
    assert torch.equal(loaded.thresholds, THRESHOLDS)
    assert loaded.kind == "checkpoint" and loaded.image_size == 32
    assert loaded.class_names == list(net.class_names) and loaded.multi_label
    assert loaded.hparams["init_from"] is None  # portable: nothing to follow again
    assert loaded.state_dict().keys() == saved[1].keys()


def test_a_safetensors_export_comes_back_the_same(saved, tmp_path: Path) -> None:
    from cocoer.export.safetensors import write_export

    net, _, path = saved
    weights, _ = write_export(path, tmp_path / "export")
    loaded = load_model(weights)
    assert loaded.kind == "safetensors" and torch.equal(loaded.thresholds, THRESHOLDS)
    with torch.no_grad():
        got, want = loaded.net(_batch())["logits_G"], net(_batch())["logits_G"]
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), r"unexpected \['extra\.weight'\]"),
        (lambda s: s.pop("thresholds"), "no thresholds"),
        (lambda s: s.update({"thresholds": torch.zeros(4)}), r"thresholds are \[4\]"),
        (lambda s: s.pop(next(k for k in s if k.startswith("net."))), "does not fit"),
    ],
)
def test_a_file_that_does_not_fit_is_refused_in_one_line(
    saved, tmp_path: Path, change, reason: str
) -> None:
    state = dict(saved[1])
    change(state)
    path = _write(tmp_path / "bad.ckpt", state)
    with pytest.raises(CheckpointError, match=reason) as err:
        load_model(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_inference_through_the_loader_imports_no_lightning(saved) -> None:
    """A fresh interpreter loads the checkpoint with ``Predictor.from_checkpoint`` and runs
    a batch: no Lightning (nor torchmetrics) module is imported on the way."""
    code = (
        "import sys, torch\n"
        "from cocoer.infer import Predictor\n"
        f"p = Predictor.from_checkpoint({str(saved[2])!r})\n"
        "gen = torch.Generator().manual_seed(1)\n"
        "b = {k: torch.randn(2, 3, 32, 32, generator=gen) for k in ('context', 'body', 'head')}\n"
        "b['body_box'] = torch.tensor([[0.1, 0.1, 0.7, 0.9]]).repeat(2, 1)\n"
        "b['head_box'] = torch.tensor([[0.3, 0.1, 0.5, 0.3]]).repeat(2, 1)\n"
        "assert p.forward(b)['logits_G'].shape == (2, 5)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'torchmetrics'))\n"
        "assert not bad, bad[:5]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]

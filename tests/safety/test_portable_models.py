"""Portable model files: every artefact of a training run (checkpoint, safetensors export as a
folder and as a file, ONNX export, hub folder) loads on "another machine" (every local
weight file moved away, another working directory) and gives the same outputs on t1.jpg;
files are written with the mode the umask gives."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cocoer.detect import PersonDetection
from tests.support.helpers import TINY_OVERRIDES, compose_config

T1 = Path(__import__("insightface").__file__).parent / "data" / "images" / "t1.jpg"
#: two hand-placed persons of t1.jpg (body box, head box), so no detector is involved
PERSONS = [
    PersonDetection(
        (80.0, 150.0, 420.0, 880.0), "given", (180.0, 160.0, 320.0, 330.0), "given", 1.0
    ),
    PersonDetection(
        (520.0, 120.0, 820.0, 880.0), "given", (600.0, 140.0, 730.0, 300.0), "given", 1.0
    ),
]


@pytest.fixture(scope="module")
def trained_with_local_clip(
    tmp_path_factory: pytest.TempPathFactory, tiny_emotic_root: Path
) -> dict:
    """A tiny run whose CLIP is initialised from a local weight file, and its exports."""
    import open_clip

    from cocoer.export.hub import write_hub_folder
    from cocoer.export.onnx import export_onnx
    from cocoer.export.safetensors import write_export
    from cocoer.models.vi import register_tiny_clip_configs
    from cocoer.train import train

    old = os.umask(0o022)
    try:
        root = tmp_path_factory.mktemp("portable")
        weights = root / "machine_a_weights"
        weights.mkdir()
        register_tiny_clip_configs()
        clip = open_clip.create_model("cocoer-tiny-RN")
        torch.save(clip.state_dict(), weights / "clip.pt")
        over = [*TINY_OVERRIDES, f"model.net.vi.clip_weights_path={weights / 'clip.pt'}"]
        metrics = train(compose_config("train", root / "run", tiny_emotic_root, over))
        ckpt = Path(metrics["best_ckpt"])
        folder = root / "export_dir"
        write_export(ckpt, folder)
        single = root / "single" / "model.safetensors"
        write_export(ckpt, single)
        onnx = root / "model.onnx"
        export_onnx(ckpt, onnx)
        hub = root / "hub"
        write_hub_folder(ckpt, hub)
    finally:
        os.umask(old)
    art = {"weights": weights, "ckpt": ckpt, "folder": folder, "single": single, "onnx": onnx}
    return {**art, "hub": hub}


def _outputs_torch(path: Path, hub: bool = False) -> dict[str, np.ndarray]:
    from cocoer.infer.predictor import Predictor

    load = Predictor.from_pretrained if hub else Predictor.from_checkpoint
    pred = load(path, detector="opencv")
    out = pred.model_outputs(Image.open(T1).convert("RGB"), PERSONS)
    return {k: v.numpy() for k, v in out.items()}


def _outputs_onnx(path: Path) -> dict[str, np.ndarray]:
    from cocoer.infer.onnx_engine import OnnxPredictor

    pred = OnnxPredictor(path, device="cpu", detector="opencv")
    return dict(pred.model_outputs(Image.open(T1).convert("RGB"), PERSONS))


@pytest.mark.slow
def test_every_artefact_loads_elsewhere_without_local_weight_files(
    trained_with_local_clip: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = trained_with_local_clip
    files = [art["ckpt"], art["folder"] / "model.safetensors", art["folder"] / "config.json"]
    files += [art["single"], art["single"].with_suffix(".json"), art["onnx"]]
    files += [art["hub"] / "model.safetensors", art["hub"] / "config.json"]
    for f in files:  # written as the umask (022) says, not 0600
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
        assert str(art["weights"]).encode() not in f.read_bytes(), f"{f} names a local file"
    before = _outputs_torch(art["ckpt"])
    moved = tmp_path / "elsewhere"
    shutil.move(str(art["weights"]), moved)  # what another machine looks like
    try:
        monkeypatch.chdir(tmp_path)
        loads = [(p, False) for p in (art["ckpt"], art["folder"], art["single"])]
        for path, hub in [*loads, (art["hub"], True)]:
            after = _outputs_torch(path, hub)
            for k, v in before.items():
                np.testing.assert_array_equal(after[k], v, err_msg=f"{path}: {k}")
        onnx = _outputs_onnx(art["onnx"])
        for k in ("logits_G", "logits_t", "logits_levels", "f"):
            np.testing.assert_allclose(onnx[k], before[k], rtol=1e-4, atol=1e-4, err_msg=k)
        np.testing.assert_array_equal(onnx["order"], before["order"])
    finally:
        shutil.move(str(moved), art["weights"])


@pytest.mark.slow
def test_eval_and_rebuild_do_not_open_the_stored_weight_paths(
    trained_with_local_clip: dict,
) -> None:
    """A checkpoint written before portable configs (a local CLIP path stored) still loads
    when the path is gone: the path is never opened on rebuild."""
    from cocoer.checkpoint.model import load_model
    from cocoer.checkpoint.safe_load import load_checkpoint
    from cocoer.training.checkpoint_io import atomic_save

    art = trained_with_local_clip
    ckpt = load_checkpoint(art["ckpt"])
    ckpt["hyper_parameters"]["net"]["vi"]["clip_weights_path"] = "/nonexistent/machine_a/clip.pt"
    ckpt["hyper_parameters"]["net"]["hfe"]["weights_path"] = "/nonexistent/machine_a/rn50.pth"
    old = art["ckpt"].with_name("old_style.ckpt")
    atomic_save(ckpt, old)
    module = load_model(old)
    assert module.hparams["net"]["vi"]["clip_weights_path"] is None
    assert module.hparams["net"]["hfe"]["weights_path"] is None

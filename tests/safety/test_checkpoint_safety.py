"""Checkpoints are untrusted input: loaded with weights_only=True and an empty allow-list,
hostile files refused with one line that names the file, and the embedded code never runs.
The safetensors export round-trips to the same outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cocoer.checkpoint.model import LoadedModel, load_model
from cocoer.checkpoint.safe_load import ALLOWED_GLOBALS, load_checkpoint, load_cocoer_checkpoint
from cocoer.errors import CheckpointError
from tests.support.checkpoint_payloads import write_bad_files, write_payload_checkpoint


def test_payload_is_refused_and_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = write_payload_checkpoint(tmp_path / "evil.ckpt", marker)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(evil)
    msg = str(info.value)
    assert str(evil) in msg and "refused type exec" in msg and "\n" not in msg
    assert not marker.exists()
    # the file really is hostile: the unsafe loader runs the payload
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_allow_list_is_empty_and_registered_globals_are_switched_off(tmp_path: Path) -> None:
    """A class that another library registered as safe (here ValueError) is still refused,
    and the global registry is restored afterwards."""
    assert ALLOWED_GLOBALS == ()
    path = tmp_path / "exc.ckpt"
    torch.save({"x": ValueError("boo")}, path)
    torch.serialization.add_safe_globals([ValueError])
    with pytest.raises(CheckpointError, match="refused type ValueError"):
        load_checkpoint(path)
    assert ValueError in torch.serialization.get_safe_globals()


@pytest.mark.parametrize("kind", ["random", "empty", "truncated", "missing", "folder"])
def test_corrupt_files_get_one_line(kind: str, tmp_path: Path) -> None:
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.arange(10000.0)}}, good)
    files = write_bad_files(tmp_path / "bad", good)
    files["missing"] = tmp_path / "missing.ckpt"
    files["folder"] = tmp_path
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(files[kind])
    msg = str(info.value)
    assert msg.startswith(f"cannot load checkpoint {files[kind]}: ") and "\n" not in msg


def test_plain_data_cannot_name_a_callable(tmp_path: Path) -> None:
    """No pickle trick needed: a config whose _target_ names another callable is refused
    before Hydra would call it."""
    path = tmp_path / "target.ckpt"
    hp = {"net": {"_target_": "os.system", "_args_": ["touch marker"]}}
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": hp}, path)
    with pytest.raises(CheckpointError, match=r"refused net\._target_ 'os\.system'"):
        load_cocoer_checkpoint(path)
    hp = {"net": {"_target_": "cocoer.models.cocoer.CocoER", "hfe": {"_target_": "os.system"}}}
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": hp}, path)
    with pytest.raises(CheckpointError, match=r"refused config key net\.hfe\._target_"):
        load_cocoer_checkpoint(path)


def _windows(module: LoadedModel) -> dict[str, torch.Tensor]:
    from cocoer.data.windows import make_windows

    size = int(module.net_config["hfe"]["image_size"])
    g = torch.Generator().manual_seed(0)
    pix = (torch.rand(60, 80, 3, generator=g) * 255).to(torch.uint8).numpy()
    img = Image.fromarray(pix)
    items = [make_windows(img, (5, 5, 40, 55), (10, 6, 25, 20), size) for _ in range(2)]
    items.append(make_windows(img, (30, 2, 78, 58), (40, 4, 60, 22), size))
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_real_checkpoint_needs_no_allow_list_and_exports_to_safetensors(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    ckpt = load_cocoer_checkpoint(tiny_checkpoint)  # the Lightning file, as written
    assert json.loads(json.dumps(ckpt["hyper_parameters"])) == ckpt["hyper_parameters"]
    ref = load_model(tiny_checkpoint)
    from cocoer.export.safetensors import write_export

    for out in (tmp_path / "folder", tmp_path / "model.safetensors"):
        weights, config_json = write_export(tiny_checkpoint, out)
        config = json.loads(config_json.read_text())
        assert config["class_names"] == list(ref.net.class_names)
        assert config["thresholds"] == pytest.approx(ref.thresholds.tolist())
        assert config["preprocessing"]["image_size"] == ref.image_size
        got = load_model(out)
        batch = _windows(ref)
        with torch.no_grad():
            a, b = ref.net(batch), got.net(batch)
        for key in ("logits_G", "logits_t", "logits_levels"):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
        assert weights.is_file()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(bad)

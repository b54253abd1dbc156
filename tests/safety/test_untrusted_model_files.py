"""Model files as untrusted data: no interpolation (``${oc.env:SECRET}`` in any field never
resolved), sizes within bounds before anything is built, weight readers that never
materialise more than the file holds (stride-0 / overlapping views, zip bombs, legacy
files), JSON with a depth limit; each a one-line error, peak memory under 1 GB."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from cocoer.checkpoint.safe_load import load_model_file
from cocoer.errors import CheckpointError, CocoerError, InputError
from cocoer.utils.files import loads_json

SECRET = "s3cr3t-value-of-the-environment"
PAYLOAD = "${oc.env:COCOER_TEST_SECRET}"


@pytest.fixture(scope="module")
def tiny_ckpt_dict() -> dict[str, Any]:
    """A real checkpoint dict of the tiny model (no training: random weights)."""
    from cocoer.models.factory import _preset
    from cocoer.training.module import CocoERLitModule, to_plain

    net = _preset("cocoer_tiny", "emotic_synthetic")
    net["hfe"].update(image_size=32, tiny_width=8, d_h=16)
    net["d"] = 16
    module = CocoERLitModule(net=net)
    return {"state_dict": module.state_dict(), "hyper_parameters": to_plain(module.hparams)}


def _leaves(node: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def _set(node: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@pytest.fixture
def secret_hp(tiny_ckpt_dict: dict, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A copy of the tiny checkpoint's hyper-parameters, SECRET in the environment (what an
    interpolation such as ``${oc.env:COCOER_TEST_SECRET}`` would leak if resolved)."""
    monkeypatch.setenv("COCOER_TEST_SECRET", SECRET)
    return copy.deepcopy(tiny_ckpt_dict["hyper_parameters"])


def test_interpolation_in_any_field_is_refused_never_resolved(
    tiny_ckpt_dict: dict, secret_hp: dict, tmp_path: Path
) -> None:
    hp = secret_hp
    hp["net"]["class_names"] = [f"c{i}" for i in range(hp["net"]["num_classes"])]
    fields = _leaves(hp)
    assert len(fields) > 40
    for i, field in enumerate(fields):
        bad = copy.deepcopy(hp)
        _set(bad, field, PAYLOAD)
        path = tmp_path / f"f{i}.ckpt"
        torch.save({"state_dict": tiny_ckpt_dict["state_dict"], "hyper_parameters": bad}, path)
        with pytest.raises(CheckpointError) as err:
            load_model_file(path)
        msg = str(err.value)
        assert SECRET not in msg and "\n" not in msg, field
    # as a key, too
    bad = copy.deepcopy(hp)
    bad["net"]["vi"][PAYLOAD] = 1
    torch.save({"state_dict": tiny_ckpt_dict["state_dict"], "hyper_parameters": bad}, path)
    with pytest.raises(CheckpointError, match="interpolation"):
        load_model_file(path)


def test_interpolation_in_a_safetensors_export_is_refused(
    tiny_ckpt_dict: dict, secret_hp: dict, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    from cocoer.checkpoint.export_format import FORMAT, META_KEY

    hp = secret_hp
    hp["net"]["class_names"] = [PAYLOAD] + [f"c{i}" for i in range(hp["net"]["num_classes"] - 1)]
    meta = json.dumps({"format": FORMAT, "version": 1, "hyper_parameters": hp})
    path = tmp_path / "x.safetensors"
    tensors = {k: v.contiguous() for k, v in tiny_ckpt_dict["state_dict"].items()}
    save_file(tensors, str(path), metadata={META_KEY: meta})
    with pytest.raises(CheckpointError, match="interpolation") as err:
        load_model_file(path)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        (("num_classes",), int("9" * 30), "digits"),
        (("num_classes",), 10**6, "outside"),
        (("d",), 10**7, "outside"),
        (("hfe", "image_size"), 60000, "outside"),
        (("hfe", "d_h"), -3, "outside"),
        (("vi", "clip_name"), "NotAClip-XL", "unknown CLIP"),
        (("vi", "hidden_ratio"), 1e9, "outside"),
        (("class_names",), ["\x1b]0;pwned\x07"] * 26, "control characters"),
        (("num_classes",), "26", "not a number"),
    ],
)
def test_out_of_bounds_config_is_refused_in_one_line(
    tiny_ckpt_dict: dict, tmp_path: Path, field: tuple, value: Any, reason: str
) -> None:
    hp = copy.deepcopy(tiny_ckpt_dict["hyper_parameters"])
    _set(hp["net"], field, value)
    path = tmp_path / "big.ckpt"
    torch.save({"state_dict": tiny_ckpt_dict["state_dict"], "hyper_parameters": hp}, path)
    with pytest.raises(CheckpointError, match=reason) as err:
        load_model_file(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_config_that_disagrees_with_the_weights_is_refused_before_building(
    tiny_ckpt_dict: dict, tmp_path: Path
) -> None:
    hp = copy.deepcopy(tiny_ckpt_dict["hyper_parameters"])
    hp["net"]["num_classes"] = 900  # within bounds, but the weights hold 26 classes
    hp["net"]["class_names"] = None
    path = tmp_path / "k.ckpt"
    torch.save({"state_dict": tiny_ckpt_dict["state_dict"], "hyper_parameters": hp}, path)
    with pytest.raises(CheckpointError, match=r"ffn1_out.weight is \[26, 16\]"):
        load_model_file(path)


#: a script run in a subprocess: load FILE with READER, print the error line and the peak RSS
#: (VmHWM of the new process image: ru_maxrss would carry over the parent's peak across exec,
#: which a large pytest process makes exceed 1 GB on its own)
_PEAK = """
import sys
from cocoer.errors import CocoerError
from cocoer.checkpoint.weight_files import WeightFileError
reader, path = sys.argv[1], sys.argv[2]
try:
    if reader == "checkpoint":
        from cocoer.checkpoint.safe_load import load_checkpoint
        load_checkpoint(path)
    else:
        from cocoer.checkpoint.weight_files import read_state_dict
        read_state_dict(path)
    print("LOADED")
except (CocoerError, WeightFileError) as exc:
    print("ERROR", str(exc).replace(chr(10), " "))
with open("/proc/self/status") as status:
    print("PEAK_KB", next(ln.split()[1] for ln in status if ln.startswith("VmHWM:")))
"""


def _peak(reader: str, path: Path) -> tuple[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, reader, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_kb = float(next(ln for ln in lines if ln.startswith("PEAK_KB")).split()[1])
    return next(ln for ln in lines if ln.startswith(("ERROR", "LOADED"))), peak_kb / 2**20


def _stride0_file(path: Path, numel: int) -> Path:
    """A tiny file whose one tensor is a stride-0 view of 4 bytes expanded to ``numel``."""
    torch.save({"state_dict": {"w": torch.zeros(1).expand(numel)}}, path)
    return path


def _overlap_file(path: Path) -> Path:
    base = torch.zeros(2**20 + 256)  # 4 MB, viewed as 1 GB of overlapping rows
    torch.save({"state_dict": {"w": base.as_strided((2**20, 256), (1, 1))}}, path)
    return path


def _zip_bomb(path: Path, good: Path) -> Path:
    """``good`` re-zipped with one extra deflated entry of 512 MB of zeros (0.5 MB)."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        with dst.open(zipfile.ZipInfo("archive/data/bomb"), "w", force_zip64=True) as f:
            f.write(b"")  # the header declares nothing: the size is checked on the whole
        zi = zipfile.ZipInfo("archive/data/zeros")
        zi.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(zi, "w", force_zip64=True) as f:
            chunk = bytes(2**24)
            for _ in range(32):
                f.write(chunk)
    return path


def _legacy_file(path: Path) -> Path:
    torch.save({"w": torch.zeros(4)}, path, _use_new_zipfile_serialization=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["checkpoint", "weights"])
def test_tiny_hostile_weight_files_end_in_one_line_under_1_gb(reader: str, tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"state_dict": {"w": torch.zeros(4)}}, good)
    files = {
        "stride0": _stride0_file(tmp_path / "s0.pt", 10**10),
        "stride0_small": _stride0_file(tmp_path / "s1.pt", 3 * 10**8),
        "overlap": _overlap_file(tmp_path / "ov.pt"),
        "zip_bomb": _zip_bomb(tmp_path / "bomb.pt", good),
        "legacy": _legacy_file(tmp_path / "legacy.pt"),
    }
    for name, path in files.items():
        assert path.stat().st_size < 10 * 2**20, name
        line, peak_gb = _peak(reader, path)
        assert line.startswith("ERROR") and str(path) in line, (name, line)
        assert peak_gb < 1.0, (name, peak_gb)


def test_json_depth_is_limited() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InputError, match="nested 100000 deep"):
        loads_json(deep, "meta.json")
    assert loads_json('{"a": [[1], {"b": "[[[["}]}', "ok.json") == {"a": [[1], {"b": "[[[["}]}


def test_export_metadata_nested_deeply_is_one_line(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from cocoer.checkpoint.export_format import META_KEY

    path = tmp_path / "deep.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={META_KEY: "[" * 100_000})
    with pytest.raises(CocoerError, match=r"deep\.safetensors \(metadata cocoer_config\).*nested"):
        load_model_file(path)


def test_onnx_metadata_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrongly typed, out-of-bounds, interpolating or deep metadata: one line each."""
    from cocoer.infer.onnx_engine import read_metadata

    monkeypatch.setenv("COCOER_TEST_SECRET", SECRET)
    good = {
        "cocoer.class_names": json.dumps(["a", "b"]),
        "cocoer.multi_label": "true",
        "cocoer.preprocessing": json.dumps({"image_size": 32}),
        "cocoer.infer.thresholds": json.dumps({"calibrated": [0.5, 0.4]}),
    }
    assert read_metadata(good, "m.onnx")["cocoer.class_names"] == ["a", "b"]
    bad = {
        "cocoer.class_names": [json.dumps("ab"), json.dumps([PAYLOAD, "b"]), json.dumps([1, 2])],
        "cocoer.multi_label": ['"yes"'],
        "cocoer.preprocessing": [json.dumps({"image_size": 60000}), "[]", "[" * 100_000],
        "cocoer.infer.thresholds": [
            json.dumps({"calibrated": ["x", 1]}),
            json.dumps({"calibrated": [1]}),
        ],
    }
    for key, values in bad.items():
        for value in values:
            with pytest.raises(ValueError) as err:
                read_metadata({**good, key: value}, "m.onnx")
            msg = str(err.value)
            assert "m.onnx" in msg and "\n" not in msg and SECRET not in msg, (key, value)


def test_weight_file_buffer_roundtrip_still_loads(tmp_path: Path) -> None:
    """Ordinary files (views into one storage, non-contiguous transposes) still load."""
    from cocoer.checkpoint.weight_files import read_state_dict

    base = torch.arange(12.0)
    state = {"a": base[:6].view(2, 3), "b": base[6:].view(3, 2).t(), "c": torch.ones(3)}
    buf = io.BytesIO()
    torch.save(state, buf)
    path = tmp_path / "views.pt"
    path.write_bytes(buf.getvalue())
    out = read_state_dict(path)
    for k, v in state.items():
        torch.testing.assert_close(out[k], v)

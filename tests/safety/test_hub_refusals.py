"""Every way a hub folder can be refused, each as one line naming the file, and nothing
built from it: ``config.json`` with executable or unknown keys, interpolations, local
weight paths, a newer cocoer, disagreeing mirrors, bad JSON; ``model.safetensors`` whose
header does not match the config or is itself inconsistent; missing files.

"Nothing is built": every CocoER constructed while a refused folder is read must be on
torch's ``meta`` device (the shape check of :mod:`cocoer.hub.weights`), none with memory.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

import cocoer
from cocoer.errors import InputError
from cocoer.models.cocoer import CocoER
from tests.support.hub_helpers import copy_folder, hub_folder, hub_source

__all__ = ["hub_folder", "hub_source"]  # fixtures

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def folder(hub_folder: Path, tmp_path: Path) -> Path:
    return copy_folder(hub_folder, tmp_path / "model")


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The device of every CocoER constructed during the test."""
    devices: list[str] = []
    init = CocoER.__init__

    def recording(self: CocoER, *args: Any, **kwargs: Any) -> None:
        devices.append(torch.get_default_device().type)
        init(self, *args, **kwargs)

    monkeypatch.setattr(CocoER, "__init__", recording)
    return devices


def refusal(folder: Path, builds: list[str]) -> str:
    """The one-line message of loading ``folder``; checks that no real model was built."""
    with pytest.raises(InputError) as err:
        cocoer.from_pretrained(folder)
    message = str(err.value)
    assert "\n" not in message, message
    assert all(device == "meta" for device in builds), builds
    return message


def edit_config(folder: Path, edit: Edit) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def _set(*keys: str, value: Any) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        node = config
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


CONFIG_CASES: dict[str, tuple[Edit, str]] = {
    "target_top": (_set("_target_", value="os.system"), "refused key _target_"),
    "target_net": (
        _set("net", "_target_", value="cocoer.models.cocoer.CocoER"),
        "refused key net._target_",
    ),
    "partial_deep": (
        _set("training", "loss", "_partial_", value=True),
        "refused key training.loss._partial_",
    ),
    "interpolation": (
        _set("class_names", value=["${oc.env:HUB_TEST_SECRET}"] * 26),
        "refused interpolation in class_names[0]",
    ),
    "unknown_top": (_set("pipeline", value="x"), "unknown key(s) pipeline"),
    "unknown_section": (
        _set("preprocessing", "resize", value=1),
        "unknown key(s) preprocessing.resize",
    ),
    "unknown_net": (_set("net", "hfe", "layers", value=3), "net: invalid model config"),
    "newer_cocoer": (
        _set("cocoer_version", value="99.0.0"),
        "written by cocoer 99.0.0 (format 1), newer than this cocoer",
    ),
    "newer_format": (_set("format_version", value=2), "(format 2), newer than this cocoer"),
    "bad_version": (_set("cocoer_version", value="next"), "cocoer_version 'next' is not a version"),
    "other_format": (
        _set("format", value="cocoer-safetensors"),
        "format 'cocoer-safetensors' is not",
    ),
    "clip_path": (
        _set("net", "vi", "clip_weights_path", value="/etc/passwd"),
        "net.vi.clip_weights_path must be null (weights come from model.safetensors)",
    ),
    "backbone_path": (
        _set("net", "hfe", "weights_path", value="../../weights.pth"),
        "net.hfe.weights_path must be null",
    ),
    "download": (
        _set("net", "vi", "clip_pretrained", value="openai"),
        "net.vi.clip_pretrained must be null",
    ),
    "mirror_names": (
        _set("class_names", value=[f"c{i}" for i in range(26)]),
        "class_names ['c0'",
    ),
    "mirror_size": (
        _set("preprocessing", "image_size", value=224),
        "preprocessing.image_size 224 disagrees",
    ),
    "thresholds_len": (
        _set("thresholds", "values", value=[0.5]),
        "thresholds.values must be 26 numbers",
    ),
    "rule": (_set("thresholds", "rule", value="magic"), "unknown thresholds.rule 'magic'"),
    "normalisation": (
        _set("preprocessing", "mean", value=[0, 0, 0]),
        "preprocessing.mean [0, 0, 0]",
    ),
    "detector": (_set("preprocessing", "detector", value="yolo"), "preprocessing.detector 'yolo'"),
    "missing_key": (lambda c: c.pop("net"), "missing key(s) net"),
    "net_width": (_set("net", "d", value=32), "model.safetensors: does not match config.json"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_config_json_refusals(
    case: str, folder: Path, builds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_TEST_SECRET", "s3cr3t-value")
    edit, expected = CONFIG_CASES[case]
    edit_config(folder, edit)
    message = refusal(folder, builds)
    assert expected in message, message
    assert str(folder / ("model.safetensors" if case == "net_width" else "config.json")) in message
    assert "s3cr3t-value" not in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b'{"format": NaN}', "not valid JSON (NaN is not allowed"),
        (b" " * (1 << 20) + b"{}", "larger than 1048576 bytes"),
        (b"[1, 2]", "not a JSON object"),
    ],
    ids=["garbage", "deep", "nan", "huge", "list"],
)
def test_unreadable_config_json(
    folder: Path, builds: list[str], content: bytes, expected: str
) -> None:
    (folder / "config.json").write_bytes(content)
    assert expected in refusal(folder, builds)


def _rewrite(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    path = folder / "model.safetensors"
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata={"format": "pt"})


def _first(state: dict[str, torch.Tensor]) -> str:
    return sorted(k for k in state if state[k].is_floating_point())[0]


WEIGHT_CASES: dict[str, tuple[Callable[[dict[str, torch.Tensor]], None], str]] = {
    "missing": (lambda s: s.pop(sorted(s)[-1]), "missing tensor(s)"),
    "extra": (lambda s: s.update(backdoor=torch.zeros(3)), "unexpected tensor(s) backdoor"),
    "shape": (lambda s: s.update({_first(s): torch.zeros(7)}), "the config's model has float32"),
    "dtype": (lambda s: s.update({_first(s): s[_first(s)].double()}), "is float64"),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_CASES))
def test_weights_that_do_not_match_the_config(case: str, folder: Path, builds: list[str]) -> None:
    change, expected = WEIGHT_CASES[case]
    _rewrite(folder, change)
    message = refusal(folder, builds)
    assert str(folder / "model.safetensors") in message
    assert "does not match config.json" in message and expected in message, message


def _header(entries: dict[str, Any], data: bytes) -> bytes:
    head = json.dumps(entries).encode()
    return struct.pack("<Q", len(head)) + head + data


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "bad header length"),
        (struct.pack("<Q", 10**12) + b"{}", "bad header length"),
        (
            _header(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                },
                b"\0" * 8,
            ),
            "overlap or leave gaps",
        ),
        (
            _header(
                {"a": {"dtype": "F32", "shape": [10**9], "data_offsets": [0, 4 * 10**9]}}, b"\0" * 8
            ),
            "tensors end at byte 4000000000 of a 8-byte data section",
        ),
        (
            _header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
            "byte range does not fit its shape",
        ),
        (
            _header({"a": {"dtype": "PICKLE", "shape": [], "data_offsets": [0, 0]}}, b""),
            "malformed",
        ),
    ],
    ids=["empty", "huge_header", "overlap", "past_end", "shape_bytes", "dtype"],
)
def test_inconsistent_safetensors_files(
    folder: Path, builds: list[str], content: bytes, expected: str
) -> None:
    (folder / "model.safetensors").write_bytes(content)
    message = refusal(folder, builds)
    assert expected in message and str(folder / "model.safetensors") in message, message
    assert builds == []  # refused before even the shape build


def test_truncated_weights(folder: Path, builds: list[str]) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    assert "tensors end at byte" in refusal(folder, builds)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_missing_files(folder: Path, builds: list[str], name: str) -> None:
    (folder / name).unlink()
    message = refusal(folder, builds)
    assert name in message and ("no such file" in message or "not a hub model folder" in message)


def test_infer_cli_refusal_is_one_line_with_status_2(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cocoer.cli.infer import main
    from tests.support.hub_helpers import T1

    edit_config(folder, _set("_target_", value="builtins.exec"))
    assert main([str(T1), "--model", str(folder), "--out", str(folder / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"cocoer-infer: error: {folder / 'config.json'}: refused key _target_ "
        "(nothing in a model file is called)"
    ]
    assert not (folder / "out").exists()

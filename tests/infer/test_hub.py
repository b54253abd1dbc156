"""Hub folders: written from a checkpoint (and a converted model, and a safetensors export),
loaded back with identical outputs on t1.jpg from another working directory once the
training machine's weight files are gone, by folder or by repo id from a Hugging Face
cache laid out as huggingface_hub lays it out (``HF_HUB_OFFLINE=1``); the model card.
No network anywhere (``--push`` runs against a stand-in for ``HfApi``)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import cocoer
from cocoer.detect import PersonDetection
from cocoer.errors import InputError
from cocoer.infer import Predictor
from cocoer.infer.decisions import OUTPUT_KEYS
from tests.support.hub_helpers import (
    COMMIT,
    T1,
    Source,
    assert_same_result,
    copy_folder,
    hub_folder,
    hub_source,
    offline_cache,
    populate_cache,
    without_timing,
)

__all__ = ["hub_folder", "hub_source"]  # fixtures

PEOPLE = [
    PersonDetection((306.0, 234.0, 730.0, 886.0), "t", (447.0, 270.0, 588.0, 411.0), "t", 1.0),
    PersonDetection((994.0, 246.0, 1280.0, 876.0), "t", (1114.0, 276.0, 1234.0, 396.0), "t", 1.0),
]


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_folder_holds_weights_config_and_card_and_no_local_path(
    hub_source: Source, hub_folder: Path
) -> None:
    assert sorted(p.name for p in hub_folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((hub_folder / "config.json").read_text())
    assert config["net"]["vi"]["clip_weights_path"] is None
    assert config["net"]["hfe"]["weights_path"] is None
    text = (hub_folder / "config.json").read_text()
    assert str(hub_source.clip.parent) not in text and "/tmp" not in text
    assert not [s for s in _strings(config) if s.startswith("/") or "${" in s]
    ckpt = torch.load(hub_source.ckpt, map_location="cpu", weights_only=True)
    thresholds = ckpt["state_dict"]["thresholds"].tolist()
    assert config["thresholds"] == {"values": thresholds, "rule": "f1"}
    assert config["cocoer_version"] == cocoer.__version__
    assert (
        config["preprocessing"]["image_size"]
        == ckpt["hyper_parameters"]["net"]["hfe"]["image_size"]
    )
    assert config["class_names"] == list(cocoer.constants.EMOTIC_CATEGORIES)
    from safetensors.torch import load_file

    weights = load_file(str(hub_folder / "model.safetensors"))
    net_state = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    assert weights.keys() == net_state.keys()
    assert all(torch.equal(weights[k], net_state[k]) for k in weights)
    for f in hub_folder.iterdir():  # readable by others as the umask allows (022 here)
        assert f.stat().st_mode & 0o044 == 0o044


def test_infer_model_gives_the_checkpoints_json_elsewhere_without_local_weights(
    hub_source: Source, hub_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done when #1: cocoer-infer --model DIR == --ckpt on t1.jpg, from another working
    directory, with the CLIP file the checkpoint names moved away."""
    from cocoer.cli.infer import main
    from cocoer.models import create_model

    common = [str(T1), "--detector", "opencv", "--no-progress", "--quiet"]
    assert main([*common, "--ckpt", str(hub_source.ckpt), "--out", str(tmp_path / "ckpt")]) == 0
    moved = hub_source.clip.rename(tmp_path / "moved_away.pt")
    try:
        hp = torch.load(hub_source.ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
        with pytest.raises(FileNotFoundError):  # the oracle: this config needs the local file
            create_model(hp["net"])
        elsewhere = tmp_path / "another_machine"
        elsewhere.mkdir()
        copy_folder(hub_folder, elsewhere / "model")
        monkeypatch.chdir(elsewhere)
        assert main([*common, "--model", "model", "--out", "out"]) == 0
    finally:
        moved.rename(hub_source.clip)
    a = json.loads((tmp_path / "ckpt" / "t1.json").read_text())
    b = json.loads((elsewhere / "out" / "t1.json").read_text())
    assert len(a["persons"]) >= 3
    assert [p["exclusion_sequence"] for p in a["persons"]] == [
        p["exclusion_sequence"] for p in b["persons"]
    ]
    assert_same_result(without_timing(a), without_timing(b))
    assert b["checkpoint"] == "model"


def test_from_pretrained_outputs_equal_the_checkpoints(
    hub_source: Source, hub_folder: Path
) -> None:
    ref = Predictor.from_checkpoint(hub_source.ckpt)
    model = cocoer.from_pretrained(hub_folder)
    assert isinstance(model, Predictor) and model.hub_config is not None
    assert model.image_size == ref.image_size and model.class_names == ref.class_names
    assert (model.policy.final == ref.policy.final).all()
    image = Image.open(T1).convert("RGB")
    a, b = ref.model_outputs(image, PEOPLE), model.model_outputs(image, PEOPLE)
    for key in OUTPUT_KEYS:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
        else:
            assert torch.equal(a[key], b[key]), key


def test_repo_id_loads_offline_from_the_cache_and_pins_revisions(
    hub_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf_cache"
    snapshot = populate_cache(cache, "org/tiny", hub_folder)
    offline_cache(monkeypatch, cache)
    from cocoer.hub.load import resolve_model

    assert resolve_model("org/tiny") == snapshot
    assert resolve_model(f"org/tiny@{COMMIT}") == snapshot
    assert resolve_model("org/tiny", revision=COMMIT) == snapshot
    by_id, by_dir = cocoer.from_pretrained("org/tiny"), cocoer.from_pretrained(hub_folder)
    state_id, state_dir = by_id.net.state_dict(), by_dir.net.state_dict()
    assert all(torch.equal(state_id[k], state_dir[k]) for k in state_dir)
    for name, expected in (
        ("org/tiny@v2", "revision 'v2' is not in the Hugging Face cache (HF_HUB_OFFLINE is set)"),
        ("org/absent", "it is not in the Hugging Face cache (HF_HUB_OFFLINE is set)"),
        ("not a repo id!", "no such folder, and not a Hub repo id"),
    ):
        with pytest.raises(InputError) as err:
            cocoer.from_pretrained(name)
        assert expected in str(err.value) and "\n" not in str(err.value)


def test_infer_cli_fails_in_one_line_when_the_repo_is_not_cached(tmp_path: Path) -> None:
    """A user's process: HF_HUB_OFFLINE and HF_HUB_CACHE from the environment."""
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "cocoer.cli.infer", str(T1), "--model", "org/absent"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "cocoer-infer: error: org/absent: no such folder, and it is not in the Hugging Face "
        "cache (HF_HUB_OFFLINE is set); download it where the Hub is reachable, or pass a folder"
    ]


def test_eval_and_ckpt_paths_read_a_hub_folder(hub_source: Source, hub_folder: Path) -> None:
    """``cocoer-eval --model NAME`` becomes ``ckpt_path=<folder>``, which rebuilds the
    LightningModule with the checkpoint's weights and thresholds."""
    from cocoer.checkpoint.model import load_model
    from cocoer.cli.evaluate import model_override
    from cocoer.train import lit_module_of

    argv = model_override(["data=emotic", "--model", str(hub_folder)])
    assert argv == ["data=emotic", f"ckpt_path='{hub_folder.resolve()}'"]
    assert model_override(["ckpt_path=x.ckpt"]) == ["ckpt_path=x.ckpt"]
    from_hub, from_ckpt = (
        lit_module_of(load_model(hub_folder)),
        lit_module_of(load_model(hub_source.ckpt)),
    )
    a, b = from_hub.state_dict(), from_ckpt.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_card_renders_metrics_licences_and_uses(hub_source: Source, hub_folder: Path) -> None:
    card = (hub_folder / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "cocoer" and meta["license"] == "mit"  # generated data
    assert {"emotion-recognition", "safetensors"} <= set(meta["tags"])
    assert meta["datasets"] == ["synthetic"] and meta["metrics"] == ["map"]
    metrics = json.loads((hub_source.ckpt.parents[1] / "metrics.json").read_text())
    value = meta["model-index"][0]["results"][0]["metrics"][0]["value"]
    assert value == round(metrics["test/mAP"], 2)
    assert f"| mAP (%), final prediction | {metrics['test/mAP']:.2f} | 37.32 ± 0.05 |" in body
    assert f"| mAP (%), V-I head | {metrics['test/mAP_t']:.2f} | not reported |" in body
    share = metrics["test/first_excluded/head"]
    assert f"| persons whose head is excluded first (%) | {share:.2f} | 63.77 |" in body
    for needed in (
        "## Intended use",
        "## Out-of-scope and prohibited uses",
        "EMOTIC is licensed for non-commercial research only",
        "InsightFace's released detector weights",
        "Art. 5(1)(f)",
        "workplace",
        "education",
        "except for medical or safety reasons",
        "outside the training distribution",
        "## Limitations",
        "## Licences",
        'cocoer.from_pretrained("org/tiny")',
        "not comparable",
    ):
        assert needed in body, needed
    import hashlib

    sha = hashlib.sha256((hub_folder / "model.safetensors").read_bytes()).hexdigest()
    assert sha in body


def test_converted_and_exported_sources_give_the_same_weights_file(
    hub_source: Source, hub_folder: Path, tmp_path: Path
) -> None:
    """A converted checkpoint (marked by cocoer_conversion) gets the authors' threshold rule
    and a card without metrics; a safetensors export gives the same model.safetensors."""
    from cocoer.export.hub import write_hub_folder
    from cocoer.export.safetensors import write_export

    ckpt = torch.load(hub_source.ckpt, map_location="cpu", weights_only=True)
    ckpt["cocoer_conversion"] = None
    torch.save(ckpt, tmp_path / "converted.ckpt")
    converted = write_hub_folder(tmp_path / "converted.ckpt", tmp_path / "conv")
    config = json.loads((converted.folder / "config.json").read_text())
    assert config["thresholds"]["rule"] == "authors_demo"
    assert config["source"] == {"kind": "converted", "file": "converted.ckpt"}
    card = (converted.folder / "README.md").read_text()
    assert "| mAP (%), final prediction | not measured | 37.32 ± 0.05 |" in card
    assert "license: other" in card and "authors' released weights" in card
    write_export(hub_source.ckpt, tmp_path / "export")
    exported = write_hub_folder(tmp_path / "export", tmp_path / "from_export")
    assert exported.sha256 == converted.sha256
    assert (tmp_path / "from_export/model.safetensors").read_bytes() == (
        hub_folder / "model.safetensors"
    ).read_bytes()


def test_export_cli_writes_refuses_a_used_folder_and_pushes_privately(
    hub_source: Source,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import huggingface_hub

    from cocoer.cli.export import main

    calls: list[tuple[str, dict]] = []

    class FakeApi:  # stands in for the Hub: records what would be sent
        def create_repo(self, repo_id: str, **kw: object) -> str:
            calls.append(("create_repo", {"repo_id": repo_id, **kw}))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kw: object) -> None:
            calls.append(("upload_folder", dict(kw)))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "hub"
    args = ["--format", "hub", "--ckpt", str(hub_source.ckpt), "--out", str(out)]
    assert main([*args, "--push", "org/tiny"]) == 0
    assert calls[0] == ("create_repo", {"repo_id": "org/tiny", "private": True, "exist_ok": True})
    assert calls[1][1]["folder_path"] == str(out) and calls[1][1]["repo_id"] == "org/tiny"
    assert "SHA-256" in capsys.readouterr().out
    before = (out / "config.json").read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"cocoer-export: error: {out}: exists and is not an empty folder (choose a new --out)"
    )
    assert (out / "config.json").read_bytes() == before


def test_import_cocoer_stays_light() -> None:
    """``cocoer.from_pretrained`` is imported lazily: ``import cocoer`` loads no torch."""
    code = "import sys, cocoer; assert callable(cocoer.from_pretrained); print(sorted(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = {m.split(".")[0] for m in ast.literal_eval(proc.stdout)}
    assert not loaded & {"torch", "numpy", "huggingface_hub", "omegaconf", "safetensors"}


def test_a_hub_folder_exports_again_to_the_same_folder(hub_folder: Path, tmp_path: Path) -> None:
    """``load_model`` reads hub folders, so the hub writer takes one as its source: the
    weights come back byte for byte and the config is the same (its source included)."""
    from cocoer.export.hub import write_hub_folder

    again = write_hub_folder(hub_folder, tmp_path / "again", repo_id="org/tiny").folder
    assert (again / "model.safetensors").read_bytes() == (
        hub_folder / "model.safetensors"
    ).read_bytes()
    assert json.loads((again / "config.json").read_text()) == json.loads(
        (hub_folder / "config.json").read_text()
    )

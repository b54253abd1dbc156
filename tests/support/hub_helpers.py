"""Fixtures and helpers of the hub tests (``test_hub.py``, ``test_hub_refusals.py``): a tiny
checkpoint that, like a real run's, names a local CLIP weights file of "the training
machine", its hub folder, and huggingface_hub's cache layout built by hand."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

T1 = Path(__import__("insightface").__file__).parent / "data" / "images" / "t1.jpg"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class Source:
    ckpt: Path  # <run>/checkpoints/model.ckpt, with metrics.json and config.yaml in <run>
    clip: Path  # the local CLIP weights file the checkpoint's config names


@pytest.fixture(scope="session")
def hub_source(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Source:
    """The tiny checkpoint with ``net.vi.clip_weights_path`` pointing at a local file (the
    CLIP weights it holds anyway), in a run directory with the run's metrics and config."""
    root = tmp_path_factory.mktemp("hub_source")
    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    clip = root / "machine" / "clip_weights.pt"
    clip.parent.mkdir()
    prefix = "net.vi.clip."
    torch.save(
        {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}, clip
    )
    ckpt["hyper_parameters"]["net"]["vi"]["clip_weights_path"] = str(clip)
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("metrics.json", "config.yaml"):
        shutil.copy(tiny_checkpoint.parents[1] / name, run / name)
    torch.save(ckpt, run / "checkpoints" / "model.ckpt")
    return Source(run / "checkpoints" / "model.ckpt", clip)


@pytest.fixture(scope="session")
def hub_folder(hub_source: Source, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cocoer-export --format hub`` of :func:`hub_source`."""
    from cocoer.export.hub import write_hub_folder

    out = tmp_path_factory.mktemp("hub_export") / "model"
    write_hub_folder(hub_source.ckpt, out, repo_id="org/tiny")
    return out


def populate_cache(cache: Path, repo_id: str, folder: Path, commit: str = COMMIT) -> Path:
    """Put ``folder``'s files into a Hugging Face cache as huggingface_hub lays it out:
    ``models--ORG--NAME/blobs/<hash>``, ``snapshots/<commit>/<file>`` (relative symlinks to
    the blobs) and ``refs/main`` (the commit); returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for f in sorted(folder.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, blob)
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def offline_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE=cache``, for this process (huggingface_hub
    reads both when it is imported) and for child processes."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))


def copy_folder(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def without_timing(result: dict) -> dict:
    """An inference JSON without what differs between two runs of one model (the model's
    name as given, wall times)."""
    return {k: v for k, v in result.items() if k not in ("checkpoint", "seconds")}


def assert_same_result(a: object, b: object, tol: float = 1e-6, at: str = "") -> None:
    """Equal JSON values; numbers within ``tol`` (strings, lists and keys exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), at
        for k in a:
            assert_same_result(a[k], b[k], tol, f"{at}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), at
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_result(x, y, tol, f"{at}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert abs(float(a) - float(b)) <= tol, f"{at}: {a} != {b}"  # type: ignore[arg-type]
    else:
        assert a == b, f"{at}: {a!r} != {b!r}"

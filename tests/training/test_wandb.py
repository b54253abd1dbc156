"""W&B offline: a tiny run leaves an offline run directory with its metrics and the result
tables (exclusion table included); the run id is kept in the run directory for resume.
Nothing contacts a server (WANDB_MODE=offline)."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cocoer.runs.wandb_run import ID_FILE, attach_wandb_run
from cocoer.train import train
from tests.support.helpers import TINY_OVERRIDES, compose_config


def wandb_records(path: Path) -> Iterator[bytes]:
    """The records of a ``.wandb`` transaction log (LevelDB log format after a 7-byte W&B
    header: 32 KiB blocks of chunks with a 7-byte header crc32/length/type)."""
    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    block, pos, buf = 32768, 7, b""
    while pos + 7 <= len(raw):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        chunk = raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # full
            yield chunk
        elif kind == 2:  # first
            buf = chunk
        elif kind == 3:  # middle
            buf += chunk
        elif kind == 4:  # last
            yield buf + chunk
            buf = b""


def logged_history(path: Path, wait_s: float = 60.0) -> dict[str, str]:
    """Last logged JSON value of every history key in an offline run's ``.wandb`` file.

    ``wandb.finish()`` returns once the run is finished, but wandb-core may still hold the
    file's last records in its write buffer until the stream is torn down (seen once under
    a loaded 2-core test run: the final history row, with the tables, was missing). So the
    file is read until it holds its ``exit`` record, the last one W&B writes."""
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + wait_s
    while True:
        out: dict[str, str] = {}
        kinds: list[str | None] = []
        for data in wandb_records(path):
            rec = pb.Record()
            rec.ParseFromString(data)
            kinds.append(rec.WhichOneof("record_type"))
            if kinds[-1] == "history":
                for item in rec.history.item:
                    out[item.key or "/".join(item.nested_key)] = item.value_json
        if "exit" in kinds:
            return out
        assert time.monotonic() < deadline, f"{path}: no exit record after {wait_s} s: {kinds}"
        time.sleep(0.5)


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path


def test_offline_run_holds_metrics_and_tables(offline_wandb: Path, tiny_emotic_root: Path) -> None:
    cfg = compose_config("train", offline_wandb, tiny_emotic_root, [*TINY_OVERRIDES, "logger=many"])
    assert cfg.logger.wandb.mode == "offline"
    metrics = train(cfg)
    run = Path(cfg.paths.output_dir)
    run_id = (run / ID_FILE).read_text().strip()

    offline = list((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 1, list((run / "wandb").iterdir())
    files = offline[0] / "files"
    history = logged_history(offline[0] / f"run-{run_id}.wandb")
    assert float(history["test/mAP"]) == pytest.approx(metrics["test/mAP"], rel=1e-5)
    assert "val/mAP" in history and "train/loss_G_epoch" in history
    assert any(k.startswith("test/tables/first_excluded") for k in history), sorted(history)
    tables = {p.name for p in (files / "media" / "table" / "test" / "tables").iterdir()}
    for name in ("per_class_ap", "first_excluded", "predictions"):
        assert any(t.startswith(name + "_") and t.endswith(".table.json") for t in tables), name
    excl = next(files.rglob("first_excluded*.table.json"))
    table = json.loads(excl.read_text())
    assert table["columns"] == ["dataset", "source", "context", "body", "head"]
    ours = table["data"][0]
    assert ours[:2] == ["EMOTIC", "ours"]
    assert sum(ours[2:]) == pytest.approx(100.0, abs=0.05)
    preds = json.loads(next(files.rglob("predictions*.table.json")).read_text())
    assert "exclusion_sequence" in preds["columns"]

    # the same tables as files for users without W&B
    for name in ("per_class_ap", "first_excluded", "predictions"):
        assert (run / "tables" / f"{name}.csv").is_file(), name
    rows = json.loads((run / "tables" / "predictions.json").read_text())
    assert rows and all(len(r["exclusion_sequence"].split(" -> ")) == 3 for r in rows)


def test_run_id_is_kept_per_run_directory(tmp_path: Path) -> None:
    cfg = compose_config("train", tmp_path, overrides=["logger=wandb"])
    first = attach_wandb_run(cfg)
    again = compose_config("train", tmp_path, overrides=["logger=wandb"])
    assert attach_wandb_run(again) == first  # a resumed run continues the same W&B run
    assert again.logger.wandb.id == first and again.logger.wandb.resume == "allow"
    other = compose_config("train", tmp_path / "other", overrides=["logger=wandb"])
    assert attach_wandb_run(other) != first
    assert attach_wandb_run(compose_config("train", tmp_path, overrides=["logger=csv"])) is None

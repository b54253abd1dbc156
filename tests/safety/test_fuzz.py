"""Fuzz suite: every reader a user feeds files to, on generated bad inputs (hypothesis).

Readers: images (``load_image``), the EMOTIC CSV export and ``Annotations.mat``, CAER-S
folders, the box cache, checkpoints, and config overrides. Each generated input must end in

- ``ok``: the reader returned, and nothing was dropped silently (every input row is either a
  record or counted in the reader's :class:`SkipReport`);
- ``error``: a *clear* error (:data:`CLEAR_ERRORS`) whose message names the file (or, for
  config overrides, the offending key or value);
- ``skip``: the reader returned and reported the bad part in its ``SkipReport``.

Anything else (another exception type, a message without the file, a hang past the
deadline) fails the test with the input that caused it. The number of inputs tried per
reader and their outcomes are written to ``.pytest_cache/cocoer_fuzz_counts.json``;
``conftest.py`` prints them as a table at the end of the run. Profiles: ``ci`` (default,
fixed small example counts, derandomised) and ``slow`` (``HYPOTHESIS_PROFILE=slow``, used by
``make test-slow``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException
from PIL import Image

from cocoer.checkpoint.safe_load import load_checkpoint
from cocoer.configs.schema import validate_config
from cocoer.data.box_cache import cache_path, load_box_cache
from cocoer.data.caer_s import list_caer_s
from cocoer.data.emotic import CSV_COLUMNS, read_emotic_csv, read_emotic_mat
from cocoer.data.image_io import load_image
from cocoer.data.records import SkipReport
from cocoer.errors import CocoerError
from tests.support.helpers import compose_config

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,  # no replay of examples saved by earlier runs: the same inputs every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "slow",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
#: a test's own ``max_examples`` overrides the profile's, so the long profile scales them
SCALE = {"ci": 1, "slow": 8}.get(PROFILE, 1)


def examples(n: int) -> int:
    """``n`` examples under the ``ci`` profile, ``8 n`` under ``slow``."""
    return n * SCALE


#: what counts as a clear error (the message must also name the file)
CLEAR_ERRORS: tuple[type[BaseException], ...] = (CocoerError, ValueError, OSError)
COUNTS: dict[str, Counter[str]] = defaultdict(Counter)
COUNTS_FILE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "cocoer_fuzz_counts.json"


def outcome(reader: str, where: str, call: Callable[[], Any]) -> Any:
    """Run ``call``; record ``ok`` / ``error`` and fail on an unclear exception."""
    try:
        result = call()
    except CLEAR_ERRORS as exc:
        assert where in str(exc), f"{reader}: error does not name {where!r}: {exc!r}"
        assert "Traceback" not in str(exc)
        COUNTS[reader]["error"] += 1
        return None
    COUNTS[reader]["ok"] += 1
    return result


def _save_counts() -> None:
    old = json.loads(COUNTS_FILE.read_text()) if COUNTS_FILE.is_file() else {}
    old.update({k: dict(v) for k, v in COUNTS.items()})
    COUNTS_FILE.parent.mkdir(exist_ok=True)
    COUNTS_FILE.write_text(json.dumps(old, indent=1, sort_keys=True))


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    if COUNTS_FILE.is_file():
        COUNTS_FILE.unlink()
    yield
    _save_counts()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _fresh(workdir: Path, name: str) -> Path:
    d = workdir / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


# --------------------------------------------------------------------------------- images
def _valid_jpeg(path: Path, size: tuple[int, int]) -> bytes:
    Image.new("RGB", size, (200, 40, 90)).save(path, "JPEG")
    return path.read_bytes()


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


@given(
    kind=st.sampled_from(["random", "truncated", "empty", "huge_png", "valid"]),
    data=st.binary(max_size=256),
    cut=st.floats(0.0, 1.0),
    dims=st.tuples(st.integers(1, 200_000), st.integers(1, 200_000)),
)
@example(kind="huge_png", data=b"", cut=0.0, dims=(100_000, 100_000))
@settings(max_examples=examples(40))
def test_fuzz_images(workdir: Path, kind: str, data: bytes, cut: float, dims: tuple) -> None:
    d = _fresh(workdir, "img")
    path = d / "photo.jpg"
    if kind == "valid":
        _valid_jpeg(path, (dims[0] % 64 + 1, dims[1] % 64 + 1))
    elif kind == "truncated":
        full = _valid_jpeg(path, (40, 30))
        path.write_bytes(full[: int(len(full) * cut)])
    elif kind == "huge_png":
        path = d / "photo.png"
        path.write_bytes(_png_header(*dims) + data)
    else:
        path.write_bytes(b"" if kind == "empty" else data)
    img = outcome("images", path.name, lambda: load_image(path))
    if img is not None:
        assert img.mode == "RGB" and img.width * img.height > 0


# --------------------------------------------------------------------------- EMOTIC CSV
BOX_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-10_000, 10_000),
    st.text(max_size=4),
)
LABEL_CELLS = ["['Anger']", "['Nope']", "[]", "['Fear', 'Pain']"]
CELL = st.one_of(st.text(max_size=12), st.sampled_from(["[]", "[1, 2]", "nan", "None", "{}"]))


@st.composite
def csv_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    rows = []
    for i in range(draw(st.integers(0, 4))):
        box = draw(st.lists(BOX_VALUES, min_size=0, max_size=5))
        row = {
            "Filename": draw(st.sampled_from([f"img{i}.jpg", "", "../x.jpg", "a\udcff.jpg"])),
            "Folder": draw(st.sampled_from(["mscoco/images", "", "ade20k/images"])),
            "Image Size": draw(st.sampled_from(["[100, 80]", "[0, 0]", "x", "[-5, 3]"])),
            "BBox": draw(st.one_of(st.just(str(box)), CELL)),
            "Categorical_Labels": draw(
                st.one_of(
                    st.sampled_from(["['Anger']", "['Nope']", "[]", "['Fear', 'Pain']"]), CELL
                )
            ),
            "Continuous_Labels": draw(st.one_of(st.just("[5.0, 5.0, 5.0]"), CELL)),
            "Gender": "Female",
            "Age": "Adult",
        }
        rows.append(row)
    return rows


@given(rows=csv_rows(), drop_column=st.booleans(), raw=st.binary(max_size=64))
@settings(max_examples=examples(40))
def test_fuzz_emotic_csv(workdir: Path, rows: list, drop_column: bool, raw: bytes) -> None:
    d = _fresh(workdir, "csv")
    path = d / "train.csv"
    cols = list(CSV_COLUMNS)[:-1] if drop_column else list(CSV_COLUMNS)
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    if raw:
        with path.open("ab") as fh:
            fh.write(raw)  # a broken tail: non-UTF-8 bytes, stray quotes, partial rows
    report = SkipReport()
    records = outcome("emotic_csv", path.name, lambda: read_emotic_csv(path, "train", report))
    if records is not None and not raw:
        assert len(records) + report.num_skipped() >= len(rows), "a row was dropped silently"
        if report.num_skipped():
            COUNTS["emotic_csv"]["skip"] += 1


# --------------------------------------------------------------------------- EMOTIC .mat
@pytest.fixture(scope="module")
def emotic_mat(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from cocoer.data.synthetic import generate_emotic

    root = tmp_path_factory.mktemp("emotic")
    generate_emotic(root, n_train=6, n_val=2, n_test=2, image_size=(40, 48), csv=False)
    return (root / "Annotations" / "Annotations.mat").read_bytes()


@given(
    kind=st.sampled_from(["truncated", "random", "flipped", "empty"]),
    cut=st.floats(0.0, 1.0),
    pos=st.integers(0, 10**6),
    data=st.binary(min_size=1, max_size=64),
)
@settings(max_examples=examples(30))
def test_fuzz_emotic_mat(
    workdir: Path, emotic_mat: bytes, kind: str, cut: float, pos: int, data: bytes
) -> None:
    d = _fresh(workdir, "mat")
    path = d / "Annotations.mat"
    if kind == "truncated":
        blob = emotic_mat[: int(len(emotic_mat) * cut)]
    elif kind == "flipped":  # corrupt bytes inside a valid file
        i = pos % len(emotic_mat)
        blob = emotic_mat[:i] + data + emotic_mat[i + len(data) :]
    else:
        blob = b"" if kind == "empty" else data
    path.write_bytes(blob)
    report = SkipReport()
    outcome("emotic_mat", path.name, lambda: read_emotic_mat(path, "train", report))
    if report.num_skipped():
        COUNTS["emotic_mat"]["skip"] += 1


# ---------------------------------------------------------------------------- CAER-S
NAMES = st.sampled_from(["a.png", "b.jpg", "notes.txt", "x\udcff.png", ".hidden.png", "c.PNG", "d"])


@given(
    files=st.lists(
        st.tuples(st.sampled_from(["Anger", "Happy", "Bogus", "sad"]), NAMES), max_size=6
    ),
    loop=st.booleans(),
    junk=st.binary(max_size=32),
)
@settings(max_examples=examples(25))
def test_fuzz_caer_s_folders(workdir: Path, files: list, loop: bool, junk: bytes) -> None:
    d = _fresh(workdir, "caer")
    root = d / "CAER-S"
    (root / "train").mkdir(parents=True)
    for cls, name in files:
        folder = root / "train" / cls
        folder.mkdir(exist_ok=True)
        try:
            (folder / name).write_bytes(junk)
        except (UnicodeEncodeError, OSError):
            pytest.skip("file system refuses the name")  # not a reader's problem
    if loop:
        (root / "train" / "Fear").mkdir(exist_ok=True)
        os.symlink(root / "train" / "Fear", root / "train" / "Fear" / "loop")
        os.symlink(root / "train" / "l2", root / "train" / "l1")
        os.symlink(root / "train" / "l1", root / "train" / "l2")
    report = SkipReport()
    records = outcome("caer_s", "CAER-S", lambda: list_caer_s(d, "test", report=report))
    records = outcome("caer_s", "CAER-S", lambda: list_caer_s(d, "train", 0.0, report=report))
    if records is not None:
        listed = {r.image for r in records}
        assert len(listed) == len(records)
        if report.num_skipped():
            COUNTS["caer_s"]["skip"] += 1


# ----------------------------------------------------------------------------- box cache
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
ENTRY = st.fixed_dictionaries(
    {"image": st.sampled_from(["a.jpg", "", 3]), "person": st.sampled_from([0, -1, "x", 1.5])},
    optional={
        "head_box": st.one_of(JSON_VALUE, st.lists(st.floats(allow_nan=True), max_size=5)),
        "body_box": st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5),
        "head_source": JSON_VALUE,
    },
)


@given(entries=st.lists(ENTRY, max_size=4), tail=st.binary(max_size=20))
@settings(max_examples=examples(40))
def test_fuzz_box_cache(workdir: Path, entries: list, tail: bytes) -> None:
    d = _fresh(workdir, "boxes")
    path = cache_path(d)
    text = "".join(json.dumps(e) + "\n" for e in entries)
    path.write_bytes(text.encode() + tail)
    report = SkipReport()
    out = outcome("box_cache", path.name, lambda: load_box_cache(d, report))
    if out is not None and report.num_skipped():
        COUNTS["box_cache"]["skip"] += 1


# ---------------------------------------------------------------------------- checkpoints
@given(
    kind=st.sampled_from(["random", "truncated", "pickle_code", "empty"]),
    data=st.binary(max_size=128),
    cut=st.floats(0.0, 1.0),
)
@settings(max_examples=examples(30))
def test_fuzz_checkpoints(workdir: Path, kind: str, data: bytes, cut: float) -> None:
    import pickle

    import torch

    d = _fresh(workdir, "ckpt")
    path = d / "shared.ckpt"
    if kind == "truncated":
        torch.save({"state_dict": {"w": torch.ones(3)}, "hyper_parameters": {}}, path)
        blob = path.read_bytes()
        path.write_bytes(blob[: int(len(blob) * cut)])
    elif kind == "pickle_code":
        marker = d / "ran"

        class Payload:
            def __reduce__(self) -> tuple:
                return (Path.touch, (marker,))

        path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    else:
        path.write_bytes(b"" if kind == "empty" else data)
    outcome("checkpoints", path.name, lambda: load_checkpoint(path))
    assert not (d / "ran").exists(), "code from the checkpoint ran"


# ----------------------------------------------------------------------- config overrides
KEYS = st.sampled_from(
    [
        "model.loss.alpha",
        "model.net.hfe.patch_size",
        "model.net.workspace.qp_method",
        "model.net.vi.tau",
        "data.batch_size",
        "model.net.nope",
        "trainer.max_epochs",
        "seed",
    ]
)
VALUES = st.one_of(
    st.integers(-5, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["abc", "null", "[1,2]", "{a: 1}", "'x", "${oops}", ""]),
)


@given(pairs=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=3))
@settings(max_examples=examples(15))
def test_fuzz_config_overrides(workdir: Path, pairs: list) -> None:
    overrides = [f"{k}={v}" for k, v in pairs]

    def compose_and_validate() -> None:
        cfg = compose_config("train", _fresh(workdir, "cfg"), overrides=overrides)
        validate_config(cfg)

    try:
        compose_and_validate()
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        msg = str(exc)
        assert msg and "Traceback" not in msg
        assert any(k.split(".")[-1] in msg or v in msg for k, v in pairs) or "override" in msg, (
            f"error does not name the override: {exc!r}"
        )
        COUNTS["config_overrides"]["error"] += 1
        return
    COUNTS["config_overrides"]["ok"] += 1


# ------------------------------------------------------- export folder, ONNX metadata, runs
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    meta=st.one_of(
        st.text(max_size=60),
        _JSON.map(json.dumps),
        st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
        _JSON.map(lambda v: json.dumps({"format": "cocoer-safetensors", "hyper_parameters": v})),
    ),
    raw=st.binary(max_size=64),
    use_raw=st.booleans(),
)
@settings(max_examples=examples(25))
def test_fuzz_export_folder(workdir: Path, meta: str, raw: bytes, use_raw: bool) -> None:
    import torch
    from safetensors.torch import save_file

    from cocoer.checkpoint.export_format import META_KEY
    from cocoer.checkpoint.safe_load import load_model_file

    folder = _fresh(workdir, "export")
    if use_raw:
        (folder / "model.safetensors").write_bytes(raw)
    else:
        save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"), {META_KEY: meta})
    outcome("export_folder", str(folder), lambda: load_model_file(folder))


_META_KEYS = ("cocoer.class_names", "cocoer.multi_label", "cocoer.preprocessing")


@given(
    values=st.fixed_dictionaries(
        {k: st.one_of(_JSON.map(json.dumps), st.text(max_size=20)) for k in _META_KEYS},
        optional={"cocoer.infer.thresholds": _JSON.map(json.dumps)},
    ),
)
@example(
    values={
        "cocoer.class_names": '["a", "b"]',
        "cocoer.multi_label": "true",
        "cocoer.preprocessing": '{"image_size": 32}',
    }
)
@settings(max_examples=examples(40))
def test_fuzz_onnx_metadata(values: dict) -> None:
    from cocoer.infer.onnx_engine import read_metadata

    outcome("onnx_metadata", "m.onnx", lambda: read_metadata(values, "m.onnx"))


@given(
    files=st.dictionaries(
        st.sampled_from(["metrics.json", "failed.json", "config.yaml", "done", "overrides.txt"]),
        st.one_of(st.binary(max_size=40), _JSON.map(lambda v: json.dumps(v).encode())),
        min_size=1,
    ),
)
@settings(max_examples=examples(25))
def test_fuzz_run_dir_files(workdir: Path, files: dict) -> None:
    """cocoer-aggregate on a sweep with one fuzzed job and one good job: never raises, the
    good job is aggregated, the fuzzed one is a row (``damaged`` with a reason if unreadable)."""
    from cocoer.runs.aggregate import collect

    sweep = _fresh(workdir, "sweep")
    good = sweep / "good"
    good.mkdir()
    (good / "config.yaml").write_text("seed: 0\n")
    (good / "metrics.json").write_text('{"test/mAP": 1.0}')
    (good / "done").write_text("{}")
    job = sweep / "job"
    job.mkdir()
    (job / "config.yaml").write_text("seed: 1\n")
    for name, data in files.items():
        (job / name).write_bytes(data)
    rows = collect(sweep).set_index("job")
    assert rows.loc["good", "status"] == "done" and rows.loc["good", "test/mAP"] == 1.0
    status = rows.loc["job", "status"]
    assert status in ("done", "failed", "unfinished", "damaged")
    if status == "damaged":
        assert rows.loc["job", "error"]
        COUNTS["run_dir_files"]["skip"] += 1
    COUNTS["run_dir_files"]["ok"] += 1

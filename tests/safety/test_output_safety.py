"""Outputs that never overwrite silently: unique collision-checked stems, a refused --out
that holds an earlier run, exports that never replace existing files (nor their input)
unless asked, skipped inputs (dangling links, FIFOs) counted; printable terminal text."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cocoer.errors import InputError
from cocoer.infer.inputs import OutputNamer, collect_inputs
from cocoer.utils.files import atomic_folder, atomic_save_as, atomic_write_text, printable


def test_stems_are_unique_across_folders_suffixes_and_reserved_names(tmp_path: Path) -> None:
    namer = OutputNamer(tmp_path)
    names = [namer(Path(p)) for p in ("a/x.jpg", "b/x.jpg", "x_2.jpg", "X.png", "run_report.jpg")]
    assert len(set(n.casefold() for n in names)) == len(names)
    assert names[:3] == ["x", "x_2", "x_2_2"]
    assert "run_report" not in names


def test_stems_avoid_files_already_in_out(tmp_path: Path) -> None:
    (tmp_path / "photo.json").write_text("{}")  # e.g. a user's file in --out
    assert OutputNamer(tmp_path)(Path("photo.jpg")) == "photo_2"
    assert OutputNamer(tmp_path, overwrite=True)(Path("photo.jpg")) == "photo"


def test_dangling_links_and_fifos_are_counted_with_a_reason(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ok.jpg").write_bytes(b"x")
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(folder / "pipe.jpg")
    os.mkfifo(tmp_path / "given.jpg")
    inputs = collect_inputs([folder, tmp_path / "given.jpg"])
    assert [p.name for p in inputs.images] == ["ok.jpg"]
    reasons = {Path(f.path).name: f.reason for f in inputs.failures}
    assert "dangling" in reasons["gone.jpg"]
    assert "FIFO" in reasons["pipe.jpg"] and "FIFO" in reasons["given.jpg"]


def test_out_holding_results_or_being_a_file_is_refused(tmp_path: Path) -> None:
    from cocoer.cli.infer import check_out_dir

    out = tmp_path / "out"
    check_out_dir(out, overwrite=False)  # does not exist yet: fine
    out.mkdir()
    (out / "run_report.json").write_text("{}")
    with pytest.raises(InputError, match="earlier run"):
        check_out_dir(out, overwrite=False)
    check_out_dir(out, overwrite=True)
    file_out = tmp_path / "file"
    file_out.write_text("x")
    with pytest.raises(InputError, match="exists as a file"):
        check_out_dir(file_out, overwrite=True)


def test_cli_refusals_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cocoer.cli.infer import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "run_report.json").write_text("{}")
    before = (out / "run_report.json").read_text()
    code = main([str(tmp_path), "--ckpt", "x.ckpt", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "earlier run" in err and len(err.splitlines()) == 1
    assert (out / "run_report.json").read_text() == before


def test_exports_never_overwrite_silently_nor_their_input(tmp_path: Path) -> None:
    from cocoer.cli.export import main

    ckpt = tmp_path / "C.ckpt"
    ckpt.write_bytes(b"precious training checkpoint")
    for argv in (
        ["--format", "onnx", "--ckpt", str(ckpt), "--out", str(ckpt), "--overwrite"],
        ["--format", "safetensors", "--ckpt", str(ckpt), "--out", str(ckpt)],
    ):
        assert main(argv) == 2
    assert ckpt.read_bytes() == b"precious training checkpoint"
    user_json = tmp_path / "X.json"
    user_json.write_text("mine")
    assert main(["--ckpt", str(ckpt), "--out", str(tmp_path / "X.safetensors")]) == 2
    assert user_json.read_text() == "mine"
    onnx = tmp_path / "m.onnx"
    onnx.write_text("old")
    assert main(["--format", "onnx", "--ckpt", str(ckpt), "--out", str(onnx)]) == 2
    assert onnx.read_text() == "old"
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert main(["--ckpt", str(ckpt), "--out", str(a_file / "sub")]) == 2


def test_atomic_writes_use_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = atomic_write_text(tmp_path / "m.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_atomic_save_as_and_atomic_folder_publish_whole_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "w.bin"
    target.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_save_as(target, fail)
    assert target.read_bytes() == b"old"
    atomic_save_as(target, lambda tmp: tmp.write_bytes(b"new"))
    assert target.read_bytes() == b"new"

    folder = tmp_path / "hub"
    with pytest.raises(RuntimeError), atomic_folder(folder) as tmp:
        (tmp / "a").write_text("x")
        raise RuntimeError("the folder does not load back")
    assert not folder.exists()
    old = os.umask(0o027)
    try:
        with atomic_folder(folder) as tmp:
            (tmp / "a").write_text("x")
            assert not folder.exists()  # published when the block ends, whole
    finally:
        os.umask(old)
    assert (folder / "a").read_text() == "x"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE((folder / "a").stat().st_mode) == 0o640
    (folder / "b").write_text("y")
    with pytest.raises(OSError), atomic_folder(folder) as tmp:  # never over a non-empty one
        (tmp / "c").write_text("z")
    assert sorted(p.name for p in folder.iterdir()) == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub", "w.bin"]  # no temporaries


def test_printable_escapes_terminal_controls() -> None:
    forged = "joy\x1b]0;owned\x07\n[ok] fake line\u202e"
    out = printable(forged)
    assert "\x1b" not in out and "\n" not in out and "\u202e" not in out
    assert out.startswith("joy\\x1b]0;owned\\x07\\x0a[ok] fake line\\u202e")


def test_missing_files_under_hydra_tools_end_in_one_line(capsys: pytest.CaptureFixture) -> None:
    from cocoer.cli import exit_on_clear_error

    for exc in (
        FileNotFoundError("/data/emotic/cocoer_meta.json: not a generated dataset (no meta file)"),
        PermissionError(13, "Permission denied", "/ro/out/metrics.json"),
    ):
        with pytest.raises(SystemExit) as code, exit_on_clear_error("cocoer-train"):
            raise RuntimeError("wrapped by Hydra") from exc
        err = capsys.readouterr().err.strip()
        assert code.value.code == 2 and len(err.splitlines()) == 1 and "/" in err


def test_huge_webcam_index_is_a_counted_failure() -> None:
    inputs = collect_inputs(["99999999999999999999999", "0"])
    assert inputs.webcams == [0]
    assert "out of range" in inputs.failures[0].reason


@pytest.mark.parametrize(
    "text",
    ['{"test/conflict_first_excluded": null}', '{"test/mAP": "x"}', "[" * 50_000, "{", "[]"],
)
def test_report_on_odd_metrics_is_one_line(tmp_path: Path, text: str, capsys) -> None:
    from cocoer.cli.report import main

    (tmp_path / "metrics.json").write_text(text)
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "metrics.json" in err

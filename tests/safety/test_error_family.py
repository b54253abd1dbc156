"""One exception family: every error a user can cause is a :class:`cocoer.errors.CocoerError`
(one line, exit status 2 from the command-line tools), and the tools catch only that
family, so a bug (any other exception) still shows its traceback."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from cocoer.errors import (
    CheckpointError,
    CocoerError,
    ConfigError,
    InputError,
    MissingFileError,
    WeightFileError,
)


def test_the_user_errors_belong_to_the_family():
    from cocoer.data.records import BadSampleError
    from cocoer.demo.boxes import BoxError
    from cocoer.demo.models import ModelLoadError

    for cls in (BadSampleError, BoxError, ModelLoadError, WeightFileError, MissingFileError):
        assert issubclass(cls, CocoerError), cls
    assert issubclass(MissingFileError, FileNotFoundError)  # callers catching that still do
    assert issubclass(InputError, ValueError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "exc",
    [
        InputError("photo.jpg", "not an image"),
        InputError("photo.jpg: not an image"),
        MissingFileError("w.pth", "no such file"),
        CheckpointError("m.ckpt", "truncated"),
    ],
)
def test_family_errors_survive_a_process_boundary(exc: InputError):
    """DataLoader workers and DDP ranks rebuild an exception as ``type(exc)(*exc.args)``:
    the message must come back unchanged (it used to gain a ``: None``)."""
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)


# ------------------------------------------------------------------ the backbone loader
def test_backbone_weights_load_through_the_one_reader(tmp_path: Path):
    """A torchvision state dict loads (every tensor equal); a missing, random or pickled
    file is refused with a family error naming it."""
    import torchvision

    from cocoer.models.backbones import load_local_weights

    src = torchvision.models.resnet18(weights=None)
    good = tmp_path / "r18.pth"
    torch.save(src.state_dict(), good)
    dst = torchvision.models.resnet18(weights=None)
    load_local_weights(dst, good)
    a, b = src.state_dict(), dst.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    with pytest.raises(MissingFileError, match="backbone weights file not found"):
        load_local_weights(dst, tmp_path / "absent.pth")
    noise = tmp_path / "noise.pth"
    noise.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match=r"noise\.pth.*cannot read backbone weights"):
        load_local_weights(dst, noise)
    pickled = tmp_path / "object.pth"
    torch.save({"fc.weight": torch.zeros(2), "x": Path("/")}, pickled)  # a non-tensor global
    with pytest.raises(InputError, match=r"object\.pth"):
        load_local_weights(dst, pickled)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, wrong)
    with pytest.raises(InputError, match=r"wrong\.pth: backbone weights do not fit"):
        load_local_weights(dst, wrong)


# ------------------------------------------------------------------ the command-line tools
def _exit_code(run: Callable[[], object]) -> int:
    try:
        code = run()
    except SystemExit as exc:
        code = exc.code
    return int(code or 0)


#: script -> (module of main, attribute that does the work, argv)
CLIS: dict[str, tuple[str, str, list[str]]] = {
    "cocoer-infer": ("cocoer.cli.infer", "cocoer.cli.infer.run_inference", ["--ckpt", "m", "x"]),
    "cocoer-export": (
        "cocoer.cli.export",
        "cocoer.export.safetensors.write_export",
        ["--ckpt", "m.ckpt", "--out", "o"],
    ),
    "cocoer-report": ("cocoer.cli.report", "cocoer.cli.report.write_report", ["run"]),
    "cocoer-prepare": (
        "cocoer.cli.prepare",
        "cocoer.detect.prepare.prepare_dataset",
        ["--dataset", "emotic", "--root", "r"],
    ),
    "cocoer-aggregate": ("cocoer.cli.aggregate", "cocoer.runs.aggregate.aggregate", ["sweep"]),
    "cocoer-params": ("cocoer.cli.params", "cocoer.cli.params.count", []),
    "cocoer-demo": ("cocoer.demo.cli", "cocoer.demo.cli.run", ["--ckpt", "m"]),
}


def _patch(monkeypatch: pytest.MonkeyPatch, target: str, exc: BaseException) -> None:
    import importlib

    module, _, name = target.rpartition(".")

    def fail(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(importlib.import_module(module), name, fail)


@pytest.mark.parametrize("script", sorted(CLIS))
def test_a_cli_reports_bad_input_in_one_line(
    script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import importlib

    module, target, argv = CLIS[script]
    _patch(monkeypatch, target, InputError("given.file", "the reason"))
    main = importlib.import_module(module).main
    code = _exit_code(lambda: main(argv))
    err = capsys.readouterr().err
    assert code in (1, 2)  # cocoer-prepare's documented status is 1
    assert "given.file: the reason" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug"), RuntimeError("a bug")])
@pytest.mark.parametrize("script", sorted(CLIS))
def test_a_bug_in_a_cli_keeps_its_traceback(
    script: str, bug: BaseException, monkeypatch: pytest.MonkeyPatch
):
    """Not a cocoer error: the exception leaves ``main`` (Python prints the traceback)
    instead of being reported as bad input; a ValueError included."""
    import importlib

    module, target, argv = CLIS[script]
    _patch(monkeypatch, target, bug)
    main = importlib.import_module(module).main
    with pytest.raises(type(bug), match="a bug"):
        main(argv)


def test_a_bug_in_convert_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """cocoer-convert: a family error is one line (status 2), anything else propagates."""
    from cocoer.cli import convert

    gwt = tmp_path / "GWT.pth"
    gwt.write_bytes(b"x")
    monkeypatch.setattr(convert, "compose_model_config", lambda preset, overrides: {"net": {}})
    argv = convert.parse_args(
        [str(gwt), "--out", str(tmp_path / "o.ckpt"), "--preset", "authors_demo"]
    )
    _patch(monkeypatch, "cocoer.convert.authors.convert_authors", WeightFileError("w: bad"))
    assert convert.run(argv) == 2
    _patch(monkeypatch, "cocoer.convert.authors.convert_authors", ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        convert.run(argv)

"""The demo's engines without a server: a checkpoint and its ONNX export served side by
side agree (as cocoer-infer's two engines do), Grad-CAM comes with the PyTorch engine
only, and bad settings are messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cocoer.demo.analysis import DemoAnalyser, DemoRequest
from cocoer.demo.models import ONNX, PYTORCH, DemoModels, ModelSource
from tests.support.demo_server import T1


@pytest.fixture(scope="module")
def analyser(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> DemoAnalyser:
    """The tiny checkpoint alone (PyTorch engine)."""
    models = DemoModels(ModelSource(ckpt=str(tiny_checkpoint), device="cpu"))
    return DemoAnalyser(models, out_root=tmp_path_factory.mktemp("demo_engines_out"))


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> DemoAnalyser:
    """The tiny checkpoint and its ONNX export served side by side."""
    from cocoer.export.onnx import export_onnx

    onnx_path = tmp_path_factory.mktemp("demo_onnx") / "tiny.onnx"
    export_onnx(tiny_checkpoint, onnx_path)
    models = DemoModels(ModelSource(ckpt=str(tiny_checkpoint), onnx=str(onnx_path), device="cpu"))
    return DemoAnalyser(models, out_root=tmp_path_factory.mktemp("demo_both_out"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo_small") / "t1_small.png"
    Image.open(T1).convert("RGB").resize((320, 222)).save(path)
    return path


BOXES = "10, 20, 90, 200\n120, 15, 210, 210"


@pytest.mark.slow  # the ONNX export takes tens of seconds on 2 cores
def test_pytorch_and_onnx_engines_agree(both: DemoAnalyser, small: Path) -> None:
    analyser = both
    assert analyser.models.engine_names == [PYTORCH, ONNX]
    out = {
        e: analyser(DemoRequest(str(small), BOXES, True, "demo", "opencv", e))
        for e in (PYTORCH, ONNX)
    }
    a, b = (out[e].result for e in (PYTORCH, ONNX))
    assert a is not None and b is not None and len(a.persons) == len(b.persons) == 2
    for p, q in zip(a.persons, b.persons, strict=True):
        assert p.body_box == q.body_box and p.exclusion_sequence == q.exclusion_sequence
        assert p.final.names == q.final.names and p.vi.names == q.vi.names
        assert {m: v.names for m, v in p.levels.items()} == {
            m: v.names for m, v in q.levels.items()
        }
    assert a.thresholds["mode"] == "demo" and out[ONNX].rows == out[PYTORCH].rows


def test_gradcam_figures_with_the_pytorch_engine_only(analyser: DemoAnalyser, small: Path) -> None:
    one_box = BOXES.splitlines()[0]  # one person: Grad-CAM is 6 backward passes per person
    out = analyser(DemoRequest(str(small), one_box, True, "calibrated", "opencv", PYTORCH, True))
    assert len(out.saliency) == 1 and Path(out.saliency[0]).is_file()
    assert Image.open(out.saliency[0]).size[0] > 300  # the figure of the person
    assert out.result is not None and [p.body_source for p in out.result.persons] == ["hand"]


@pytest.mark.slow
def test_gradcam_is_refused_by_the_onnx_engine(both: DemoAnalyser, small: Path) -> None:
    out = both(DemoRequest(str(small), BOXES, True, "calibrated", "opencv", ONNX, True))
    assert out.saliency == [] and "Grad-CAM needs the PyTorch engine" in out.message


def test_bad_settings_are_messages(analyser: DemoAnalyser, small: Path) -> None:
    out = analyser(DemoRequest(str(small), "", False, "1.5", "opencv", PYTORCH))
    assert out.message == "Settings: threshold value must lie in (0, 1), got 1.5"
    assert out.result is None
    out = analyser(DemoRequest(str(small), "", False, "calibrated", "opencv", "tensorflow"))
    assert out.message.startswith("Settings: engine 'tensorflow' is not loaded")
    assert analyser(DemoRequest(None)).message.startswith("Give a photo")


def test_an_onnx_file_that_is_not_a_model_is_a_load_error(tmp_path: Path) -> None:
    from cocoer.demo.models import ModelLoadError

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelLoadError):
        DemoModels(ModelSource(onnx=str(bad)))

"""The demo's engines without a server: a checkpoint and its ONNX export served side by
side agree (as cocoer-infer's two engines do), Grad-CAM comes with the PyTorch engine
only, and bad settings are messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cocoer.demo.analysis import DemoAnalyser, DemoRequest
from cocoer.demo.models import ONNX, PYTORCH, DemoModels, ModelSource
from tests.demo_server import T1


@pytest.fixture(scope="module")
def analyser(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> DemoAnalyser:
    from cocoer.export.onnx import export_onnx

    onnx_path = tmp_path_factory.mktemp("demo_onnx") / "tiny.onnx"
    export_onnx(tiny_checkpoint, onnx_path)
    models = DemoModels(ModelSource(ckpt=str(tiny_checkpoint), onnx=str(onnx_path), device="cpu"))
    return DemoAnalyser(models, out_root=tmp_path_factory.mktemp("demo_engines_out"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo_small") / "t1_small.png"
    Image.open(T1).convert("RGB").resize((320, 222)).save(path)
    return path


BOXES = "10, 20, 90, 200\n120, 15, 210, 210"


def test_pytorch_and_onnx_engines_agree(analyser: DemoAnalyser, small: Path) -> None:
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
    torch_out = analyser(
        DemoRequest(str(small), BOXES, True, "calibrated", "opencv", PYTORCH, True)
    )
    assert len(torch_out.saliency) == 2 and all(Path(p).is_file() for p in torch_out.saliency)
    assert Image.open(torch_out.saliency[0]).size[0] > 300
    onnx_out = analyser(DemoRequest(str(small), BOXES, True, "calibrated", "opencv", ONNX, True))
    assert onnx_out.saliency == [] and "Grad-CAM needs the PyTorch engine" in onnx_out.message


def test_bad_settings_are_messages(analyser: DemoAnalyser, small: Path) -> None:
    out = analyser(DemoRequest(str(small), "", False, "1.5", "opencv", PYTORCH))
    assert out.message.startswith("Settings: --thresholds must be") and out.result is None
    out = analyser(DemoRequest(str(small), "", False, "calibrated", "opencv", "tensorflow"))
    assert out.message.startswith("Settings: engine 'tensorflow' is not loaded")
    assert analyser(DemoRequest(None)).message.startswith("Give a photo")


def test_an_onnx_file_that_is_not_a_model_is_a_load_error(tmp_path: Path) -> None:
    from cocoer.demo.models import ModelLoadError

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelLoadError):
        DemoModels(ModelSource(onnx=str(bad)))

"""ONNX export of the whole model and the ONNX Runtime engine (cocoer-infer --onnx).

Oracles: the PyTorch model itself (ONNX Runtime outputs against the eager forward on random
inputs, B = 1 and B = 3 through one dynamic batch axis), ``onnx.checker``, torch's stable
sort (for the exportable exclusion order) and the PyTorch engine on a real photo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cocoer.checkpoint.model import load_model
from cocoer.export.onnx import OUTPUTS, check_exportable, export_net, export_onnx
from cocoer.models import create_model
from cocoer.models.cocoer import CocoER
from cocoer.workspace.core import exclusion_order
from tests.support.onnx_parity import assert_parity, run_ort
from tests.support.tiny_models import TINY_PRESET, random_batch, tiny_net

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

T1 = Path(__import__("insightface").__file__).parent / "data" / "images" / "t1.jpg"


# ------------------------------------------------------------------ fast checks
def test_exclusion_order_equals_stable_sort_with_ties() -> None:
    gen = torch.Generator().manual_seed(0)
    f = torch.randint(0, 3, (500, 3), generator=gen).float()  # many exact ties
    f[:50] = torch.rand(50, 3, generator=gen)
    want = torch.sort(f, dim=-1, descending=True, stable=True).indices
    assert torch.equal(exclusion_order(f), want)
    # head_first: ties go to the later level in (c, b, h) order
    want_h = 2 - torch.sort(f.flip(-1), dim=-1, descending=True, stable=True).indices
    assert torch.equal(exclusion_order(f, "head_first"), want_h)


@pytest.mark.parametrize(
    "pre", [None, {"channel_order": "bgr", "box_rounding": "authors"}], ids=["cocoer", "authors"]
)
def test_numpy_windows_equal_the_torch_windows(pre: dict | None) -> None:
    """The ONNX engine's windows (numpy) are bit-for-bit the PyTorch engine's."""
    from PIL import Image

    from cocoer.data.window_arrays import make_windows_array
    from cocoer.data.windows import make_windows
    from cocoer.models.preprocess import PreprocessConfig

    image = Image.open(T1).convert("RGB")
    config = PreprocessConfig.from_any(pre)
    for body, head in (((100.3, 50.7, 400.2, 800.9), (180.5, 60.1, 260.4, 150.8)),
                       ((-20, 700, 90, 2000), (10, 710, 11, 711))):  # fmt: skip
        want = make_windows(image, body, head, 48, config)
        got = make_windows_array(image, body, head, 48, config)
        assert set(got) == set(want)
        for k, v in want.items():
            assert got[k].dtype == v.numpy().dtype
            np.testing.assert_array_equal(got[k], v.numpy(), err_msg=k)


def test_refuses_mlp_mapping_and_iterative_qp(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mlp = tiny_net(mapping="mlp")
    with pytest.raises(ValueError, match=r"mlp.*autograd"):
        check_exportable(mlp)
    pgd = tiny_net(workspace={"qp_method": "pgd"})
    with pytest.raises(ValueError, match="closed_form"):
        export_net(pgd, torch.full((5,), 0.5), 32, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_bad_files_give_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cocoer.cli.infer import main
    from cocoer.export.onnx_cli import add_onnx_arguments, run_onnx_export
    from cocoer.infer.onnx_engine import OnnxPredictor

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"garbage\.onnx"):
        OnnxPredictor(garbage)
    assert main([str(T1), "--onnx", str(tmp_path / "none.onnx"), "--quiet"]) == 2
    assert "ONNX model not found" in capsys.readouterr().err
    parser = add_onnx_arguments(__import__("argparse").ArgumentParser())
    bad_ckpt = tmp_path / "bad.ckpt"
    bad_ckpt.write_bytes(b"junk")
    code = run_onnx_export(parser.parse_args(["--ckpt", str(bad_ckpt), "--out", "x.onnx"]))
    assert code == 2 and "bad.ckpt" in capsys.readouterr().err


# ------------------------------------------------------------------ one export of a checkpoint
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> dict:
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    report = export_onnx(tiny_checkpoint, out)
    loaded = load_model(tiny_checkpoint)
    return {
        "path": out,
        "report": report,
        "net": loaded.net,
        "thresholds": loaded.thresholds,
        "size": loaded.image_size,
    }


def test_export_is_checked_and_matches_pytorch(exported: dict) -> None:
    onnx.checker.check_model(str(exported["path"]))
    assert not exported["report"].external_data
    model = onnx.load(str(exported["path"]))
    assert [o.name for o in model.graph.output] == list(OUTPUTS)
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value, "the batch axis must be dynamic"
    worst = assert_parity(exported["net"], exported["path"], exported["size"])
    print(f"largest |ONNX Runtime - PyTorch| over the outputs: {worst:.2e}")


def test_metadata_makes_the_file_self_contained(exported: dict) -> None:
    sess = ort.InferenceSession(str(exported["path"]), providers=["CPUExecutionProvider"])
    meta = {k: json.loads(v) for k, v in sess.get_modelmeta().custom_metadata_map.items()}
    net = exported["net"]
    assert meta["cocoer.class_names"] == list(net.class_names)
    assert meta["cocoer.multi_label"] is True
    np.testing.assert_allclose(
        meta["cocoer.infer.thresholds"]["calibrated"], exported["thresholds"].numpy(), rtol=1e-6
    )
    pre = meta["cocoer.preprocessing"]
    assert pre["image_size"] == exported["size"] == 32
    assert pre["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert (pre["channel_order"], pre["layout"]) == ("rgb", "NCHW")
    assert set(meta["cocoer.outputs"]) == set(OUTPUTS)


def test_onnx_engine_matches_pytorch_engine_on_t1(exported: dict, tiny_checkpoint: Path) -> None:
    from cocoer.infer.onnx_engine import OnnxPredictor
    from cocoer.infer.predictor import Predictor

    torch_engine = Predictor.from_checkpoint(tiny_checkpoint, detector="opencv")
    onnx_engine = OnnxPredictor(exported["path"], device="cpu", detector="opencv")
    a = torch_engine.predict_image(T1).to_json()  # detection, then the model
    b = onnx_engine.predict_image(T1).to_json()
    assert len(a["persons"]) >= 3
    assert [p["body_box"] for p in a["persons"]] == [p["body_box"] for p in b["persons"]]
    assert a["class_names"] == b["class_names"] and a["thresholds"] == b["thresholds"]
    for p, q in zip(a["persons"], b["persons"], strict=True):
        assert p["exclusion_sequence"] == q["exclusion_sequence"]
        for head in ("final", "vi", *(f"levels.{m}" for m in p["levels"])):
            sp = p["levels"][head[7:]] if head.startswith("levels.") else p[head]
            sq = q["levels"][head[7:]] if head.startswith("levels.") else q[head]
            diff = max(abs(sp["scores"][n] - sq["scores"][n]) for n in sp["scores"])
            assert diff <= 1e-3, (head, diff)
        for m, v in p["level_losses"].items():
            assert abs(v - q["level_losses"][m]) <= 1e-3


def test_cli_onnx_does_not_import_torch(exported: dict, tmp_path: Path) -> None:
    """cocoer-infer --onnx in a fresh interpreter: same files, and torch never imported."""
    out = tmp_path / "out"
    code = (
        "import sys, json\n"
        "from cocoer.cli.infer import main\n"
        f"rc = main([{str(T1)!r}, '--onnx', {str(exported['path'])!r}, '--out', {str(out)!r},"
        " '--detector', 'opencv', '--no-progress', '--quiet'])\n"
        "print(json.dumps({'rc': rc, 'torch': [m for m in sys.modules if m == 'torch'"
        " or m.startswith('torch.')]}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    status = json.loads(res.stdout.strip().splitlines()[-1])
    assert status == {"rc": 0, "torch": []}
    assert sorted(p.name for p in out.iterdir()) == [
        "run_report.json",
        "t1.json",
        "t1_annotated.jpg",
    ]
    data = json.loads((out / "t1.json").read_text())
    assert data["num_persons"] >= 3 and data["checkpoint"].endswith("tiny.onnx")


# ------------------------------------------------------------------ slower variants
def build_tiny(**kwargs: object) -> CocoER:
    torch.manual_seed(0)
    return tiny_net(**kwargs).eval()


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs",
    [
        {"multi_label": False},
        {"loss_kind": "l2", "workspace": {"update": "eliminated", "sample_weights": "uniform"}},
    ],
    ids=["single_label_ce", "l2_eliminated"],
)
def test_other_model_variants_export(tmp_path: Path, kwargs: dict) -> None:
    net = build_tiny(**kwargs)
    path = tmp_path / "m.onnx"
    export_net(net, torch.full((5,), 0.5), 32, path)
    assert_parity(net, path)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cocoer_authors_eval", "cocoer_authors_demo"])
def test_authors_presets_export(tmp_path: Path, preset: str) -> None:
    from tests.support.helpers import compose_config

    cfg = compose_config("train", tmp_path, overrides=[f"model={preset}", *TINY_PRESET])
    torch.manual_seed(0)
    net = create_model(cfg.model.net).eval()
    path = tmp_path / "m.onnx"
    export_net(net, torch.full((net.num_classes,), 0.5), 32, path)
    assert_parity(net, path)
    meta = onnx.load(str(path)).metadata_props
    pre = json.loads(next(p.value for p in meta if p.key == "cocoer.preprocessing"))
    assert pre["box_rounding"] == "authors"
    assert pre["channel_order"] == ("bgr" if preset.endswith("demo") else "rgb")


@pytest.mark.slow
def test_int8_and_fp16_exports(tmp_path: Path) -> None:
    net = build_tiny()
    int8 = tmp_path / "int8.onnx"
    export_net(net, torch.full((5,), 0.5), 32, int8, quantize="int8")
    onnx.checker.check_model(str(int8))
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    sess = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    batch = random_batch(2, 32, seed=5)
    out = run_ort(sess, batch)
    assert all(np.isfinite(v).all() for v in out.values())
    assert sorted(out["order"][0].tolist()) == [0, 1, 2]
    fp16 = tmp_path / "fp16.onnx"
    export_net(net, torch.full((5,), 0.5), 32, fp16, fp16=True)
    onnx.checker.check_model(str(fp16))
    inits = onnx.load(str(fp16)).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in inits)

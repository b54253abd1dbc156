"""Continuous emotions (valence, arousal, dominance): readers, generated values, head, loss,
errors, baseline, inference records and exports.

Oracles: the generator's palette (the values it paints), scikit-learn's
``mean_absolute_error``, a numpy Huber loss, the parameter count of three linear maps, the
head-off model itself (the categories' outputs unchanged) and, for the exports, the eager
PyTorch forward.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mean_absolute_error

from cocoer.constants import LEVELS, VAD_NAMES
from cocoer.data.dataset import vad_targets
from cocoer.data.emotic import CSV_COLUMNS, read_emotic_csv
from cocoer.data.records import BadSampleError, SkipReport
from cocoer.data.synthetic import PALETTE, generate_emotic
from cocoer.models import create_model
from cocoer.training.losses import vad_loss, vad_predictions
from cocoer.training.vad_metrics import vad_baseline, vad_errors, vad_lines
from tests.support.generated_emotic import read_split
from tests.support.tiny_models import TINY_NET


def _net(vad: bool, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model({**TINY_NET, "vad": {"enabled": vad}}, pretrained=False).eval()


def _batch(n: int, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    batch = {k: torch.randn(n, 3, 32, 32, generator=gen) for k in ("context", "body", "head")}
    batch["body_box"] = torch.tensor([[0.1, 0.1, 0.7, 0.9]]).repeat(n, 1)
    batch["head_box"] = torch.tensor([[0.3, 0.1, 0.5, 0.3]]).repeat(n, 1)
    return batch


# ----------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("emotic_vad")
    generate_emotic(root, n_train=12, n_val=6, n_test=6, seed=5)
    meta = json.loads((root / "cocoer_synthetic_meta.json").read_text())
    return root, meta


def _painted_vad(labels: list[int]) -> np.ndarray:
    """What the generator paints: class c in PALETTE[c] = (r, g, b) -> 1 + 9 (r, g, b) / 255."""
    return np.mean([1.0 + 9.0 * np.asarray(PALETTE[c]) / 255.0 for c in labels], axis=0)


@pytest.mark.parametrize("fmt", ["mat", "csv"])
def test_readers_give_values_that_follow_the_painted_classes(generated, fmt):
    root, meta = generated
    written = {(m["image"], m["person"]): m["continuous"] for m in meta["persons"]}
    for split in ("train", "val", "test"):
        rep = SkipReport()
        recs = read_split(root, fmt, split, rep)
        assert len(rep) == 0 and recs
        for r in recs:
            got = [r.extra[d] for d in VAD_NAMES]
            assert got == written[r.key]  # exactly what the generator wrote
            # within the annotators' offset of the painted colours' values (4 decimals kept)
            offset = np.abs(np.asarray(got) - _painted_vad(list(r.labels))).max()
            assert offset <= 0.45 + 1e-4
            if fmt == "mat" and split != "train":  # combined = the annotators' mean
                anns = np.asarray(r.extra["annotator_continuous"])
                assert len(anns) >= 2
                np.testing.assert_allclose(got, anns.mean(0), atol=1e-4)


def _csv(path: Path, conts: list[str]) -> Path:
    rows = [
        ["a.jpg", "mscoco/images", "[100, 80]", "[1.0, 2.0, 50.0, 70.0]", "['Peace']", c, "M", "A"]
        for c in conts
    ]
    import csv

    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        w.writerows(rows)
    return path


def test_bad_continuous_values_drop_the_values_only_or_raise(tmp_path):
    conts = ["[5.0, 6.0, 7.0]", "[11.0, 5.0, 5.0]", "[5.0, NaN, 5.0]", "[]", "[0.5, 5, 5]"]
    path = _csv(tmp_path / "train.csv", conts)
    rep = SkipReport()
    recs = read_emotic_csv(path, "train", rep)
    assert len(recs) == 5  # every person kept for its categories
    assert [r.extra.get("valence") for r in recs] == [5.0, None, None, None, None]
    reasons = dict(rep.items)
    assert rep.num_skipped() == 0 and rep.num_fixed() == 4
    assert "valence=11 outside 1..10" in reasons["mscoco/images/a.jpg#1"]
    assert "arousal is NaN" in reasons["mscoco/images/a.jpg#2"]
    assert "missing" in reasons["mscoco/images/a.jpg#3"]
    assert f"{path}:6" in reasons["mscoco/images/a.jpg#4"]  # file and line
    with pytest.raises(
        BadSampleError, match=r"a\.jpg#1: continuous labels dropped: .*train\.csv:3"
    ):
        read_emotic_csv(path, "train", strict=True)


def test_dataset_targets_mark_dropped_values_nan(tmp_path):
    recs = read_emotic_csv(_csv(tmp_path / "t.csv", ["[2, 3, 4]", "[]"]), "train", SkipReport())
    v = vad_targets(recs)
    assert v is not None and v.shape == (2, 3)
    assert v[0].tolist() == [2.0, 3.0, 4.0] and torch.isnan(v[1]).all()
    assert vad_targets([r.__class__(**{**r.__dict__, "extra": {}}) for r in recs]) is None


# ----------------------------------------------------------------------------- model
def test_head_off_is_the_paper_model_and_on_adds_only_its_maps():
    off, on = _net(False), _net(True)
    d, q = 16, 3
    extra = (4 * d * 3 + 3) + (d * 3 + 3) + q * (d * 3 + 3)  # fused, V-I, per-level maps
    n_off = sum(p.numel() for p in off.parameters())
    assert sum(p.numel() for p in on.parameters()) == n_off + extra
    assert not any("vad" in k for k in off.state_dict())
    batch = _batch(3)
    with torch.no_grad():
        o_off, o_on = off(batch), on(batch)
    assert not any(k.startswith("vad") for k in o_off)
    for k, v in o_off.items():  # the categories' outputs do not change
        torch.testing.assert_close(o_on[k], v, rtol=0, atol=0)
    assert o_on["vad_G"].shape == (3, 3) and o_on["vad_t"].shape == (3, 3)
    assert o_on["vad_levels"].shape == (3, 3, 3)
    assert torch.all(o_on["vad_G"] == 5.5)  # an untrained head predicts the middle of 1..10


def test_errors_match_sklearn_and_skip_persons_without_values():
    gen = torch.Generator().manual_seed(0)
    v = 1 + 9 * torch.rand(7, 3, generator=gen)
    v[2] = float("nan")
    v[5, 1] = float("nan")
    preds = {h: 1 + 9 * torch.rand(7, 3, generator=gen) for h in ("G", "t", "c", "b", "h")}
    errors, n = vad_errors(preds, v)
    keep = [0, 1, 3, 4, 6]
    assert n == len(keep)
    want = mean_absolute_error(v[keep].numpy(), preds["G"][keep].numpy(), multioutput="raw_values")
    for i, dim in enumerate(VAD_NAMES):
        assert float(errors[f"vad_mae/{dim}"]) == pytest.approx(want[i], rel=1e-6)
    assert float(errors["vad_mae"]) == pytest.approx(want.mean(), rel=1e-6)
    for h in ("t", "c", "b", "h"):
        ref = mean_absolute_error(v[keep].numpy(), preds[h][keep].numpy())
        assert float(errors[f"vad_mae_{h}"]) == pytest.approx(ref, rel=1e-6)


def test_loss_is_the_mean_huber_over_predictors_and_valid_persons():
    gen = torch.Generator().manual_seed(1)
    v = 1 + 9 * torch.rand(5, 3, generator=gen)
    v[3] = float("nan")
    out = {
        "vad_G": 1 + 9 * torch.rand(5, 3, generator=gen),
        "vad_t": 1 + 9 * torch.rand(5, 3, generator=gen),
        "vad_levels": 1 + 9 * torch.rand(5, 3, 3, generator=gen),
    }
    preds = vad_predictions(out)
    assert list(preds) == ["G", "t", *("c", "b", "h")]

    def huber(e: np.ndarray) -> np.ndarray:
        a = np.abs(e)
        return np.where(a < 1, 0.5 * e**2, a - 0.5)

    keep = [0, 1, 2, 4]
    ref = np.mean([huber(p[keep].numpy() - v[keep].numpy()).mean() for p in preds.values()])
    assert float(vad_loss(preds, v)) == pytest.approx(ref, rel=1e-6)
    assert float(vad_loss(preds, torch.full_like(v, float("nan")))) == 0.0


def test_baseline_is_the_error_of_the_training_mean():
    gen = np.random.default_rng(0)
    train, test = 1 + 9 * gen.random((20, 3)), 1 + 9 * gen.random((9, 3))
    dm = SimpleNamespace(
        datasets={
            "train": SimpleNamespace(vad=torch.tensor(train, dtype=torch.float64)),
            "test": SimpleNamespace(vad=torch.tensor(test, dtype=torch.float64)),
        }
    )
    got = vad_baseline(dm, "test")
    mean = np.tile(train.mean(0), (9, 1))
    want = mean_absolute_error(test, mean, multioutput="raw_values")
    assert got["test/vad_mae_baseline"] == pytest.approx(want.mean())
    for i, dim in enumerate(VAD_NAMES):
        assert got[f"test/vad_mae_baseline/{dim}"] == pytest.approx(want[i])
    assert vad_baseline(SimpleNamespace(datasets={}), "test") == {}
    line = vad_lines({"test/vad_mae": 0.5, **got, "test/vad_mae/valence": 0.4}, "test")[0]
    assert "test VAD MAE: 0.500" in line and f"{want.mean():.3f}" in line


def test_validation_logs_the_split_mae(tmp_path):
    from cocoer.training.module import CocoERLitModule

    module = CocoERLitModule(net={**TINY_NET, "vad": {"enabled": True}})
    gen = torch.Generator().manual_seed(3)
    batches = []
    for i, n in enumerate((4, 3, 5)):
        b = _batch(n, seed=10 + i)
        b["labels"] = (torch.rand(n, 5, generator=gen) > 0.5).float()
        b["vad"] = 1 + 9 * torch.rand(n, 3, generator=gen)
        batches.append(b)
    batches[1]["vad"][0] = float("nan")
    with torch.no_grad():  # train the head's biases a little away from 5.5
        module.net.vad.fused.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    trainer = L.Trainer(
        logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu"
    )
    loader = torch.utils.data.DataLoader(batches, batch_size=None)  # the batches as they are
    trainer.validate(module, dataloaders=loader, verbose=False)
    module.eval()
    with torch.no_grad():
        pred = torch.cat([module.net(b)["vad_G"] for b in batches]).numpy()
    target = torch.cat([b["vad"] for b in batches]).numpy()
    keep = np.isfinite(target).all(1)
    want = mean_absolute_error(target[keep], pred[keep], multioutput="raw_values")
    got = trainer.callback_metrics
    assert float(got["val/vad_mae"]) == pytest.approx(want.mean(), rel=1e-5)
    assert float(got["val/vad_mae/dominance"]) == pytest.approx(want[2], rel=1e-5)
    assert "val/loss_vad" in got


def test_training_without_targets_is_a_clear_error():
    from cocoer.errors import ConfigError
    from cocoer.training.vad_metrics import vad_step

    out = {
        "vad_G": torch.zeros(2, 3),
        "vad_t": torch.zeros(2, 3),
        "vad_levels": torch.zeros(2, 3, 3),
    }
    with pytest.raises(ConfigError, match="EMOTIC"):
        vad_step(
            SimpleNamespace(),
            out,
            {"labels": torch.zeros(2, 5)},
            {"loss": torch.zeros(())},
            "train",
        )  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- outputs
def test_inference_records_and_drawing_carry_the_values():
    from cocoer.detect.types import PersonDetection
    from cocoer.infer.decisions import person_results
    from cocoer.infer.draw import label_lines
    from cocoer.infer.thresholds import build_policy

    net = _net(True)
    with torch.no_grad():
        out = net(_batch(2))
    out["vad_levels"] = out["vad_levels"] + torch.tensor([0.0, 1.0, 2.0])[None, :, None]
    persons = [
        PersonDetection((0, 0, 10, 10), "person", (2, 0, 6, 4), "face", 0.9) for _ in range(2)
    ]
    policy = build_policy("calibrated", np.full(5, 0.5), True)
    res = person_results(
        persons, {k: v.numpy() for k, v in out.items()}, list("abcde"), True, policy
    )
    js = res[1].to_json()
    assert set(js["vad"]) == {"final", "vi", *LEVELS}
    assert js["vad"]["final"]["valence"] == pytest.approx(float(out["vad_G"][1, 0]), abs=1e-6)
    assert js["vad"]["head"]["dominance"] == pytest.approx(
        float(out["vad_levels"][1, 2, 2]), abs=1e-6
    )
    assert label_lines(res[0])[-1].startswith("V 5.5 A 5.5 D 5.5")
    plain = person_results(
        persons,
        {k: v.numpy() for k, v in out.items() if not k.startswith("vad")},
        list("abcde"),
        True,
        policy,
    )
    assert "vad" not in plain[0].to_json()


def test_ablation_table_shows_the_error_beside_the_baseline():
    from cocoer.runs.aggregate import ablation_table

    jobs = pd.DataFrame(
        [
            {"ablation": "vad", "status": "done", "row": "False", "metric": "mAP",
             "test/mAP": 30.0},
            {"ablation": "vad", "status": "done", "row": "True", "metric": "mAP", "test/mAP": 31.0,
             "test/vad_mae": 0.8, "test/vad_mae_baseline": 2.0},
            {"ablation": "vad", "status": "done", "row": "True", "metric": "mAP", "test/mAP": 33.0,
             "test/vad_mae": 1.0, "test/vad_mae_baseline": 2.0},
        ]
    )  # fmt: skip
    table = ablation_table(jobs, "vad").set_index("VAD head")
    assert table.loc["True", "ours vad_mae"] == "0.90 ± 0.14"
    assert table.loc["True", "training mean"] == "2.00 ± 0.00"
    assert table.loc["False", "ours vad_mae"] == "–"


def test_config_checks(tmp_path):
    from cocoer.configs import validate_config
    from cocoer.errors import ConfigError
    from tests.support.helpers import compose_config

    cfg = compose_config("train", tmp_path, overrides=["experiment=smoke_vad"])
    validate_config(cfg)
    assert cfg.model.net.vad.enabled and cfg.model.loss.beta_vad > 0
    assert not compose_config(
        "train", tmp_path, overrides=["experiment=emotic_paper"]
    ).model.net.vad.enabled
    bad = compose_config(
        "train", tmp_path, overrides=["data=caer_s_synthetic", "model.net.vad.enabled=true"]
    )
    with pytest.raises(ConfigError, match=r"vad\.enabled"):
        validate_config(bad)


# ----------------------------------------------------------------------------- exports
def _trained_like(module: torch.nn.Module) -> None:
    """Random head weights of a trained head's size (values spread over about 1..10; a fresh
    head predicts 5.5 everywhere, which would test nothing)."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if ".vad." in f".{name}":
                fan_in = p.shape[-1] if p.dim() > 1 else 1
                p.copy_(0.5 * torch.randn(p.shape, generator=gen) / fan_in**0.5)


def test_safetensors_export_gives_the_same_values(tmp_path):
    from cocoer.checkpoint.model import load_model
    from cocoer.export.safetensors import write_export
    from cocoer.training.module import CocoERLitModule, to_plain

    module = CocoERLitModule(net={**TINY_NET, "vad": {"enabled": True}}).eval()
    _trained_like(module)
    ckpt = tmp_path / "m.ckpt"
    torch.save(
        {"state_dict": module.state_dict(), "hyper_parameters": to_plain(dict(module.hparams))},
        ckpt,
    )
    weights, _ = write_export(ckpt, tmp_path / "export")
    back = load_model(weights)
    batch = _batch(3, seed=4)
    with torch.no_grad():
        want, got = module.net(batch), back.net(batch)
    assert want["vad_G"].std() > 0.1  # values that differ between persons and dimensions
    for k in ("vad_G", "vad_t", "vad_levels"):
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-4)


@pytest.mark.slow
def test_onnx_export_gives_the_same_values(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from cocoer.export.onnx import VAD_OUTPUTS, export_net, outputs_of

    net = _net(True)
    _trained_like(net)
    path = tmp_path / "m.onnx"
    export_net(net, torch.full((5,), 0.5), 32, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = list(outputs_of(net))
    assert set(VAD_OUTPUTS) <= set(names) == {o.name for o in sess.get_outputs()}
    meta = sess.get_modelmeta().custom_metadata_map
    assert set(VAD_OUTPUTS) <= set(json.loads(meta["cocoer.outputs"]))
    for n in (1, 3):
        batch = _batch(n, seed=20 + n)
        with torch.no_grad():
            want = net(batch)
        got = dict(
            zip(names, sess.run(names, {k: v.numpy() for k, v in batch.items()}), strict=True)
        )
        for k in VAD_OUTPUTS:
            # the project's ONNX parity bound (tests/infer/test_onnx.py): 1e-4
            np.testing.assert_allclose(got[k], want[k].numpy(), rtol=1e-4, atol=1e-4, err_msg=k)
    assert float(want["vad_G"].std()) > 0.1 and want["vad_G"].abs().max() < 15


# ----------------------------------------------------------------------------- the smoke run
@pytest.mark.slow
def test_smoke_run_beats_the_training_mean_by_half(tmp_path, capsys):
    """experiment=smoke_vad end to end: test VAD MAE <= half the training mean's, both in
    metrics.json and printed by the run."""
    from cocoer.train import summarise, train
    from tests.support.helpers import compose_config

    cfg = compose_config("train", tmp_path, overrides=["experiment=smoke_vad", "logger=csv"])
    metrics = train(cfg)
    saved = json.loads((Path(metrics["output_dir"]) / "metrics.json").read_text())
    mae, base = saved["test/vad_mae"], saved["test/vad_mae_baseline"]
    assert mae <= 0.5 * base, (mae, base)
    text = summarise(metrics, cfg)
    assert f"test VAD MAE: {mae:.3f} (predicting the training mean: {base:.3f})" in text

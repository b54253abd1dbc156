"""Accuracy cost of the int8 ONNX export: test mAP of PyTorch eager, ONNX Runtime fp32 and
ONNX Runtime int8 (dynamic quantisation) on the generated EMOTIC-layout test split, for the
tiny model trained briefly (the smoke experiment with fewer epochs).

    python benchmarks/onnx_int8_accuracy.py [--epochs 8] [--out benchmarks/results]

mAP is the mean per-class AP over the classes with positives (as ``cocoer-eval``), on the
final scores; also reported: the largest score difference to PyTorch and how often the
exclusion sequence agrees. Writes ``onnx_int8_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from cocoer.checkpoint.model import load_model  # noqa: E402
from cocoer.configs.compose import compose_config  # noqa: E402
from cocoer.export.onnx import OUTPUTS, export_net  # noqa: E402


def mean_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-class AP (in %) over the classes with positives.  [N, k], [N, k]."""
    from torchmetrics.functional.classification import multilabel_average_precision

    pos = labels.sum(0) > 0
    ap = multilabel_average_precision(
        torch.from_numpy(scores), torch.from_numpy(labels).long(), labels.shape[1], average=None
    ).numpy()
    return float(100.0 * ap[pos].mean())


def train_tiny(work: Path, epochs: int) -> tuple[Path, object]:
    """Train the smoke experiment for ``epochs`` epochs; returns (best checkpoint, cfg)."""
    from cocoer.train import train

    overrides = [
        "experiment=smoke",
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        "data.num_workers=0",
        "extras.print_config=false",
    ]
    cfg = compose_config("train", work, overrides=overrides)
    metrics = train(cfg)
    return Path(metrics["best_ckpt"]), cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import hydra
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        ckpt, cfg = train_tiny(work, args.epochs)
        train_s = time.perf_counter() - t0
        loaded = load_model(ckpt)
        net, thresholds, size = loaded.net, loaded.thresholds, loaded.image_size
        sessions = {}
        for variant in ("fp32", "int8"):
            path = work / f"{variant}.onnx"
            export_net(
                net,
                thresholds,
                int(size or 64),
                path,
                quantize=variant if variant == "int8" else None,
            )
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            sessions[variant] = ort.InferenceSession(
                str(path), opts, providers=["CPUExecutionProvider"]
            )
        dm = hydra.utils.instantiate(cfg.data)
        dm.setup("test")
        outs: dict[str, list[dict[str, np.ndarray]]] = {"torch": [], "fp32": [], "int8": []}
        labels = []
        for batch in dm.test_dataloader():
            feed = {
                k: batch[k].numpy() for k in ("context", "body", "head", "body_box", "head_box")
            }
            with torch.no_grad():
                ref = net({k: torch.from_numpy(v) for k, v in feed.items()})
            outs["torch"].append({k: ref[k].numpy() for k in OUTPUTS})
            for variant, sess in sessions.items():
                outs[variant].append(dict(zip(OUTPUTS, sess.run(list(OUTPUTS), feed), strict=True)))
            labels.append(batch["labels"].numpy())
    y = np.concatenate(labels)
    cat = {e: {k: np.concatenate([o[k] for o in v]) for k in OUTPUTS} for e, v in outs.items()}
    sig = {e: 1.0 / (1.0 + np.exp(-c["logits_G"].astype(np.float64))) for e, c in cat.items()}
    result: dict[str, object] = {
        "data": "generated EMOTIC layout (experiment=smoke data), test split",
        "n_test": int(y.shape[0]),
        "model": f"cocoer_tiny trained {args.epochs} epochs ({train_s:.0f} s)",
        "chance_mAP": float(100.0 * y.mean(0)[y.sum(0) > 0].mean()),
        "mAP": {e: mean_ap(s.astype(np.float32), y) for e, s in sig.items()},
        "max_abs_score_diff_vs_torch": {
            e: float(np.abs(sig[e] - sig["torch"]).max()) for e in ("fp32", "int8")
        },
        "exclusion_sequence_agreement_vs_torch": {
            e: float((cat[e]["order"] == cat["torch"]["order"]).all(1).mean())
            for e in ("fp32", "int8")
        },
        "load_average": os.getloadavg(),
    }
    mp = result["mAP"]
    assert isinstance(mp, dict)
    result["int8_mAP_cost"] = mp["fp32"] - mp["int8"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "onnx_int8_accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

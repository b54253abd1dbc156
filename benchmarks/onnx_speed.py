"""Benchmark: PyTorch eager against ONNX Runtime (fp32 and dynamic int8) on this CPU, per
sample at B = 1, 4 and 16 (``--batches``), for the paper model (conf/model/cocoer_paper.yaml)
and the authors-size model (conf/model/cocoer_authors_eval.yaml), random weights, 224 px; and
``cocoer-infer`` end to end (detection included) in images per second on real photos for
both engines. Same thread count for both runtimes (``--threads``, default 2).

    python benchmarks/onnx_speed.py [--threads 2] [--repeat 3] [--batches 1 4 16]
                                    [--models paper authors] [--out benchmarks/results]
    python benchmarks/onnx_speed.py --quick      # the tiny model only (a smoke run)

Writes ``onnx_speed.json``; ``ratios.ort_over_torch`` is the paper model's PyTorch time /
ONNX Runtime fp32 time at B = 1. The runtimes are timed in alternation (one call of each per
round, best of ``--repeat`` rounds) and the load average is recorded before and after:
``machine.shared`` says when other processes shared the machine (the ratios then mean
little: a loaded machine inflated the first published ratio, 4.6x, against 1.67x idle).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from cocoer import config_dir
from cocoer.export.onnx import OUTPUTS, build_metadata, export_net, finalize, quantize_int8
from cocoer.models import create_model
from cocoer.models.cocoer import CocoER
from cocoer.utils.timing import best_of_interleaved, machine_was_shared

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 4, 16)
PRESETS = {"paper": "cocoer_paper", "authors": "cocoer_authors_eval", "tiny": "cocoer_tiny"}


def build_model(preset: str, image_size: int) -> CocoER:
    """A preset's net (EMOTIC's 26 classes) with random weights; nothing downloaded."""
    node = OmegaConf.load(config_dir() / "model" / f"{PRESETS[preset]}.yaml").net
    node.num_classes, node.multi_label, node.hfe.image_size = 26, True, image_size
    cfg = OmegaConf.to_container(node, resolve=True)
    assert isinstance(cfg, dict)
    torch.manual_seed(0)
    return create_model({str(k): v for k, v in cfg.items()}, pretrained=False).eval()


def inputs(n: int, size: int) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(0)
    out = {
        k: gen.standard_normal((n, 3, size, size), dtype=np.float32)
        for k in ("context", "body", "head")
    }
    out["body_box"] = np.tile(np.asarray([[0.2, 0.1, 0.7, 0.95]], np.float32), (n, 1))
    out["head_box"] = np.tile(np.asarray([[0.35, 0.1, 0.55, 0.3]], np.float32), (n, 1))
    return out


def session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def bench_model(
    preset: str,
    size: int,
    work: Path,
    threads: int,
    repeat: int,
    batches: tuple[int, ...],
    parity_only: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Export fp32 + int8, check parity at each of ``batches`` and ``parity_only``, time the
    three runtimes at each of ``batches``."""
    net = build_model(preset, size)
    res: dict[str, Any] = {"parameters": sum(p.numel() for p in net.parameters())}
    seconds: dict[str, float] = {}
    thresholds = torch.full((26,), 0.5)
    paths = {v: work / f"{preset}_{v}.onnx" for v in ("fp32", "int8")}
    t = time.perf_counter()
    rep = export_net(net, thresholds, size, paths["fp32"])
    seconds["export_fp32"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()  # int8 from the fp32 file (no second trace)
    quantize_int8(paths["fp32"], work / "int8_raw.onnx")
    meta = build_metadata(net, thresholds, size, variant="int8")
    finalize(work / "int8_raw.onnx", meta, paths["int8"])
    seconds["quantize_int8"] = round(time.perf_counter() - t, 1)
    res["file_mib_fp32"] = round(rep.bytes / 2**20, 1)
    res["file_mib_int8"] = round(paths["int8"].stat().st_size / 2**20, 1)
    res["export_seconds"] = seconds
    sessions = {v: session(p, threads) for v, p in paths.items()}
    per_sample: dict[str, dict[str, float]] = {"torch_eager": {}, "ort_fp32": {}, "ort_int8": {}}
    diffs: dict[str, float] = {}
    for b in sorted(set(batches) | set(parity_only)):
        x = inputs(b, size)
        xt = {k: torch.from_numpy(v) for k, v in x.items()}
        with torch.inference_mode():
            ref = net(xt)
        for v, sess in sessions.items():
            got = dict(zip(OUTPUTS, sess.run(list(OUTPUTS), x), strict=True))
            diffs[f"{v}_B{b}_max_abs_logits_G"] = float(
                np.abs(got["logits_G"] - ref["logits_G"].numpy()).max()
            )
            diffs[f"{v}_B{b}_order_agreement"] = float(
                (got["order"] == ref["order"].numpy()).all(1).mean()
            )
        if b not in batches:
            continue

        def eager(xt: dict[str, torch.Tensor] = xt) -> None:
            with torch.inference_mode():
                net(xt)

        runs = {"torch_eager": eager} | {
            f"ort_{v}": (lambda s=sess, x=x: s.run(None, x)) for v, sess in sessions.items()
        }
        # the three runtimes alternate within each round: a change of load hits them alike
        # (the parity run above was each one's warm-up at this batch size)
        for name, t in best_of_interleaved(runs, repeat, warmup=0).items():
            per_sample[name][str(b)] = t / b
    res["per_sample_ms"] = {
        k: {b: round(1e3 * t, 2) for b, t in v.items()} for k, v in per_sample.items()
    }
    res["vs_torch"] = diffs
    res["_paths"] = {k: str(p) for k, p in paths.items()}
    res["_net"] = net
    return res


def photos(work: Path) -> list[Path]:
    """Real photos shipped with installed packages (insightface, scikit-image)."""
    import insightface

    base = Path(insightface.__file__).parent / "data" / "images"
    paths = [base / "t1.jpg", base / "Tom_Hanks_54745.png"]
    try:
        from PIL import Image
        from skimage import data

        for name in ("astronaut",):
            p = work / f"skimage_{name}.png"
            Image.fromarray(getattr(data, name)()).save(p)
            paths.append(p)
    except ImportError:
        pass
    return [p for p in paths if p.is_file()]


def bench_end_to_end(
    net: CocoER, size: int, onnx_path: str, images: list[Path], threads: int
) -> dict[str, Any]:
    """Images per second of detection + windows + model + decisions, both engines."""
    from cocoer.infer.onnx_engine import OnnxPredictor
    from cocoer.infer.predictor import Predictor

    engines = {
        "torch": Predictor(net, torch.full((26,), 0.5), detector="opencv", image_size=size),
        "onnxruntime": OnnxPredictor(onnx_path, device="cpu", threads=threads, detector="opencv"),
    }
    res: dict[str, Any] = {"images": [p.name for p in images]}
    for name, engine in engines.items():
        engine.predict_image(images[0])  # warm-up (detectors built, first-run allocations)
        t = time.perf_counter()
        persons = sum(len(engine.predict_image(p).persons) for p in images)
        dt = time.perf_counter() - t
        res[name] = {
            "images_per_s": round(len(images) / dt, 3),
            "persons": persons,
            "seconds": round(dt, 2),
        }
    res["ratio_onnxruntime_over_torch"] = round(
        res["onnxruntime"]["images_per_s"] / res["torch"]["images_per_s"], 3
    )
    return res


def safe_end_to_end(*args: Any) -> dict[str, Any]:
    """:func:`bench_end_to_end`, an error recorded instead of losing the model timings."""
    try:
        return bench_end_to_end(*args)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    ap.add_argument(
        "--parity-batches",
        type=int,
        nargs="*",
        default=[],
        help="batch sizes checked against PyTorch but not timed",
    )
    ap.add_argument(
        "--models", nargs="+", choices=("paper", "authors"), default=["paper", "authors"]
    )
    ap.add_argument("--quick", action="store_true", help="tiny model at 64 px only")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    models = {"tiny": 64} if args.quick else dict.fromkeys(args.models, 224)
    batches = tuple(args.batches)
    result: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "load_average_before": os.getloadavg(),
            "timing": f"the three runtimes interleaved, one call each per round, best of "
            f"{args.repeat} rounds after the parity run (the warm-up)",
        },
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        first = next(iter(models))
        for name, size in models.items():
            print(f"[{name}] export + timing ...", flush=True)
            result["models"][name] = bench_model(
                name, size, work, args.threads, args.repeat, batches, tuple(args.parity_batches)
            )
        main_model = result["models"][first]
        print("[end to end] ...", flush=True)
        result["end_to_end"] = safe_end_to_end(
            main_model.pop("_net"),
            models[first],
            main_model["_paths"]["fp32"],
            photos(work),
            args.threads,
        )
        result["end_to_end"]["model"] = first
        for m in result["models"].values():
            m.pop("_net", None)
            m.pop("_paths", None)
    ratios: dict[str, float] = {}
    for name, m in result["models"].items():
        t = m["per_sample_ms"]
        suffix = "" if name == first else f"_{name}"
        for b in batches:
            tag = "" if b == 1 else f"_b{b}"
            ratios[f"ort_over_torch{tag}{suffix}"] = round(
                t["torch_eager"][str(b)] / t["ort_fp32"][str(b)], 3
            )
            ratios[f"int8_over_torch{tag}{suffix}"] = round(
                t["torch_eager"][str(b)] / t["ort_int8"][str(b)], 3
            )
    result["ratios"] = ratios
    result["machine"]["load_average_after"] = os.getloadavg()
    result["machine"]["shared"] = machine_was_shared(
        result["machine"]["load_average_before"][0],
        result["machine"]["load_average_after"][0],
        torch.get_num_threads(),
        os.cpu_count() or 1,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "onnx_speed_quick.json" if args.quick else "onnx_speed.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

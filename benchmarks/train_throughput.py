"""Training throughput of the paper model at 224 px: loader alone, step alone, end to end.

Measures, for the model of ``--profile`` (docs/performance.md explains every figure):

- FLOPs per sample (``torch.utils.flop_counter``: forward, training step) and the utilisation
  of the device's peak they give at the measured step rate; the floor on A100 / H100;
- (a) the loader alone, per worker count, today's PIL loader and the windows cache side by side
  (interleaved rounds, samples/s and samples/s per CPU core);
- (b) the training step alone on device-resident batches, per batch size, and the speed options
  (eager / channels-last / compile) interleaved at one batch size;
- (c) end to end: the windows-cache loader feeding the step (on a GPU: an EMOTIC-sized epoch,
  23,266 persons drawn from generated data at EMOTIC's image size);
- peak memory against the batch size; on a GPU, the workspace's share of the step at B = 256.

The machine's load is recorded before and after; on a shared machine the figures are lower
bounds (``machine.shared``).

    python benchmarks/train_throughput.py                   # CPU, paper model, small batches
    python benchmarks/train_throughput.py --profile gpu     # one GPU: writes results/gpu.json
    python benchmarks/train_throughput.py --profile quick --out /tmp/q.json   # smoke (tiny)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from throughput_parts import (
    PEAK_BF16,
    Step,
    batch_on,
    build,
    data_modules,
    flops_per_sample,
    interleaved,
    load,
    loader_pass,
    machine,
    memory,
    sync,
    threads,
    workspace_share,
)
from torch.utils.data import DataLoader, RandomSampler

from cocoer.callbacks.speed import SpeedConfig
from cocoer.data.synthetic import generate_emotic
from cocoer.data.tensor_augment import finish_batch

RESULTS = Path(__file__).resolve().parent / "results"
EMOTIC_TRAIN_PERSONS = 23_266
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {
        "preset": "paper", "size": 224, "device": "cpu", "batches": [1, 2], "compare_batch": 2,
        "workers": [0, 1, 2], "images": 96, "image_side": [400, 640], "loader_batch": 32,
        "repeat": 2, "e2e_steps": 3, "e2e_batch": 2, "epoch": 0, "compile": False,
        "out": RESULTS / "train_throughput.json",
    },
    "gpu": {
        "preset": "paper", "size": 224, "device": "cuda", "batches": [32, 64, 128, 256],
        "compare_batch": 128, "workers": [0, 2, 4, 8, 12], "images": 1024,
        "image_side": [480, 640], "loader_batch": 256, "repeat": 3, "e2e_steps": 0,
        "e2e_batch": 256, "epoch": EMOTIC_TRAIN_PERSONS, "compile": True,
        "out": RESULTS / "gpu.json",
    },
    "quick": {
        "preset": "tiny", "size": 64, "device": "cpu", "batches": [2, 4], "compare_batch": 4,
        "workers": [0, 1], "images": 8, "image_side": [96, 160], "loader_batch": 4,
        "repeat": 1, "e2e_steps": 2, "e2e_batch": 4, "epoch": 24, "compile": False,
        "out": RESULTS / "train_throughput_quick.json",
    },
}  # fmt: skip


def cpu_peak_fp32() -> tuple[float | None, str]:
    """An estimate of the CPU's peak fp32 FLOP/s: cores x clock x FLOPs/cycle (2 FMA units of
    the widest vector unit), from /proc/cpuinfo; (None, why) when it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        mhz = max(float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", text))
        flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())  # type: ignore[union-attr]
    except (OSError, ValueError, AttributeError):
        return None, "unknown (/proc/cpuinfo unreadable)"
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    per_cycle = 2 * 2 * lanes  # 2 FMA units x (mul + add) x fp32 lanes
    cores = torch.get_num_threads()
    return (
        cores * mhz * 1e6 * per_cycle,
        f"{cores} threads x {mhz:.0f} MHz x {per_cycle} FLOP/cycle",
    )


def step_section(p: dict[str, Any], device: torch.device, res: dict[str, Any]) -> float:
    """FLOPs, step alone per batch size, speed options, memory; returns FLOPs/sample (step)."""
    bf16 = device.type == "cuda"
    lit = build(p["preset"], p["size"], device, SpeedConfig())
    step = Step(lit, bf16)
    res["model"] = {
        "preset": p["preset"], "image_size": p["size"], "bf16_mixed": bf16,
        "parameters": sum(q.numel() for q in lit.parameters()),
        "trainable": sum(q.numel() for q in lit.parameters() if q.requires_grad),
    }  # fmt: skip
    fl = flops_per_sample(step, batch_on(p["batches"][0], p["size"], device))
    res["flops_per_sample"] = {k: round(v / 1e9, 3) for k, v in fl.items()} | {"unit": "GFLOP"}
    print(f"FLOPs/sample: {res['flops_per_sample']}", flush=True)
    rows, mem = [], {}
    for b in p["batches"]:
        batch = batch_on(b, p["size"], device)
        t = interleaved({"step": lambda batch=batch: step(batch)}, device, p["repeat"])["step"]
        rows.append({"batch": b, "step_s": round(t, 4), "samples_per_s": round(b / t, 2)})
        mem[str(b)] = memory(step, batch)
        print(f"step B={b}: {b / t:.2f} samples/s; memory {mem[str(b)]}", flush=True)
    res["step_alone"] = rows
    res["memory_by_batch"] = mem
    best = max(r["samples_per_s"] for r in rows)
    peak, how = (
        (PEAK_BF16.get(_gpu_family(res["machine"]["device"])), "vendor dense bf16 peak")
        if device.type == "cuda"
        else cpu_peak_fp32()
    )
    achieved = best * fl["train_step"]
    res["utilisation"] = {
        "achieved_tflops": round(achieved / 1e12, 4),
        "peak_tflops": None if peak is None else round(peak / 1e12, 3),
        "peak_is": how,
        "fraction_of_peak": None if peak is None else round(achieved / peak, 4),
    }
    res["speed_options"] = speed_options(lit, step, p, device)
    if device.type == "cuda" or p["preset"] == "tiny":
        b = max(p["batches"])
        res["workspace_share"] = {"batch": b} | workspace_share(
            step, batch_on(b, p["size"], device), p["repeat"]
        )
    return fl["train_step"]


def _gpu_family(name: str) -> str:
    for key in ("A100", "H200", "H100"):
        if key in name:
            return "H100 SXM" if key == "H100" else key
    return name


def speed_options(lit: Any, step: Step, p: dict[str, Any], device: torch.device) -> dict:
    """Eager, channels-last (and compiled) steps interleaved on one model: the options are
    switched on and off between runs, so the three see the same machine load."""
    b = p["compare_batch"]
    batch = batch_on(b, p["size"], device)
    hfe = lit.net.hfe
    variants: dict[str, tuple[bool, bool]] = {
        "eager": (False, False),
        "channels_last": (True, False),
    }
    compiled_impl = None
    if p["compile"]:
        hfe.compile()
        compiled_impl = hfe._compiled_call_impl
        variants["compile_channels_last"] = (True, True)
    compile_s = None

    def run(cl: bool, comp: bool) -> None:
        fmt = torch.channels_last if cl else torch.contiguous_format
        lit.net.to(memory_format=fmt)
        hfe._compiled_call_impl = compiled_impl if comp else None
        step(batch)

    if compiled_impl is not None:  # first compiled steps: compilation (forward and backward)
        t = time.perf_counter()
        run(True, True)
        sync(device)
        compile_s = round(time.perf_counter() - t, 1)
    fns = {k: (lambda v=v: run(*v)) for k, v in variants.items()}
    best = interleaved(fns, device, p["repeat"])
    run(False, False)
    out: dict[str, Any] = {"batch": b, "seconds": {k: round(v, 4) for k, v in best.items()}}
    out["speed_over_eager"] = {k: round(best["eager"] / v, 3) for k, v in best.items()}
    out["compile_seconds"] = compile_s
    print(f"speed options B={b}: {out['speed_over_eager']}", flush=True)
    return out


def loader_section(p: dict[str, Any], root: Path, res: dict[str, Any]) -> dict[str, float]:
    """(a): the two loaders, per worker count, interleaved; returns the best samples/s per
    CPU core of each path."""
    rows, best = [], {"pil": 0.0, "windows_cache": 0.0}
    for w in p["workers"]:
        dms = data_modules(root, p["size"], p["loader_batch"], w)
        runs = {
            "pil": loader_pass(dms["pil"], False),
            "windows_cache": loader_pass(dms["windows_cache"], False),
            "windows_cache_finish_on_cpu": loader_pass(dms["windows_cache"], True),
        }
        n = len(dms["pil"].datasets["train"])
        with threads(1):  # one thread per process: samples/s per core is meaningful
            t = interleaved(runs, torch.device("cpu"), p["repeat"])
        cores = max(w, 1)
        row: dict[str, Any] = {"workers": w, "cores": cores, "samples": n}
        for k, v in t.items():
            row[k] = {"samples_per_s": round(n / v, 1), "per_core": round(n / v / cores, 1)}
        row["cache_over_pil_per_core"] = round(t["pil"] / t["windows_cache"], 2)
        rows.append(row)
        for k in best:
            best[k] = max(best[k], n / t[k] / cores)
        print(f"loader workers={w}: {row}", flush=True)
    res["loader_alone"] = rows
    return best


def end_to_end(p: dict[str, Any], root: Path, device: torch.device, res: dict[str, Any]) -> None:
    """(c): the windows-cache loader feeding the step (an EMOTIC-sized epoch with ``epoch``)."""
    workers = max(p["workers"])
    dm = data_modules(root, p["size"], p["e2e_batch"], workers)["windows_cache"]
    ds = dm.datasets["train"]
    n = p["epoch"] or p["e2e_steps"] * p["e2e_batch"]
    loader = DataLoader(
        ds,
        batch_size=p["e2e_batch"],
        sampler=RandomSampler(ds, replacement=True, num_samples=n),
        num_workers=workers,
        collate_fn=ds.collate_fn,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    step = Step(
        build(p["preset"], p["size"], device, SpeedConfig(channels_last=True)),
        device.type == "cuda",
    )
    step(batch_on(p["e2e_batch"], p["size"], device))  # warm-up (allocations, kernels)
    sync(device)
    t, seen = time.perf_counter(), 0
    for batch in loader:
        batch = finish_batch({k: v.to(device, non_blocking=True) for k, v in batch.items()})
        step(batch)
        seen += int(batch["index"].numel())
    sync(device)
    dt = time.perf_counter() - t
    res["end_to_end"] = {
        "loader": "windows_cache", "workers": workers, "batch": p["e2e_batch"], "samples": seen,
        "seconds": round(dt, 2), "samples_per_s": round(seen / dt, 2),
        "epoch_of": "EMOTIC train (23,266 persons)" if p["epoch"] == EMOTIC_TRAIN_PERSONS else None,
        "distinct_persons_in_cache": len(ds),
    }  # fmt: skip
    print(f"end to end: {res['end_to_end']}", flush=True)


def floor(step_flops: float, res: dict[str, Any], loader_best: dict[str, float]) -> None:
    """The GPU floor from the measured FLOPs, and what bounds it."""
    out = {}
    for name, peak in PEAK_BF16.items():
        rate = {u: peak * u / step_flops for u in (1.0, 0.35)}
        out[name] = {
            "peak_bf16_tflops": peak / 1e12,
            "samples_per_s_at_100pct": round(rate[1.0]),
            "samples_per_s_at_35pct": round(rate[0.35]),
            "emotic_epoch_s_at_35pct": round(EMOTIC_TRAIN_PERSONS / rate[0.35], 1),
            "cpu_cores_to_feed_at_35pct": {
                k: math.ceil(rate[0.35] / v) if v else None for k, v in loader_best.items()
            },
        }
    res["gpu_floor_from_measured_flops"] = out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-step", action="store_true", help="loader figures only")
    ap.add_argument(
        "--compile",
        choices=("on", "off"),
        default=None,
        help="measure torch.compile too (default: on for gpu; compiling the paper model on a "
        "2-core CPU takes many minutes)",
    )
    args = ap.parse_args()
    p = dict(PROFILES[args.profile])
    if args.compile is not None:
        p["compile"] = args.compile == "on"
    device = torch.device(p["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--profile gpu needs a CUDA device")
    res: dict[str, Any] = {"profile": args.profile, "machine": machine(device)}
    res["machine"]["load_before"] = load()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "emotic"
        t = time.perf_counter()
        gen = generate_emotic(
            root, n_train=p["images"], n_val=2, n_test=2, seed=0, image_size=tuple(p["image_side"])
        )
        res["data"] = {
            "generated_train_persons": gen["persons"]["train"], "image_side_px": p["image_side"],
            "generation_s": round(time.perf_counter() - t, 1),
        }  # fmt: skip
        out = args.out or p["out"]
        loader_best = loader_section(p, root, res)
        save(res, out)  # after each section: an interrupted run keeps what it measured
        if not args.skip_step:
            step_flops = step_section(p, device, res)
            floor(step_flops, res, loader_best)
            save(res, out)
            end_to_end(p, root, device, res)
    res["complete"] = True
    save(res, out)
    print(f"written to {out}")


def save(res: dict[str, Any], out: Path) -> None:
    """Write ``res`` with the load now as ``machine.load_after`` and ``machine.shared``."""
    after = load()
    m = res["machine"]
    m["load_after"] = after
    m["shared"] = max(m["load_before"][0], after[0]) > 0.5 * (m["cpus"] or 1)
    res.setdefault("complete", False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()

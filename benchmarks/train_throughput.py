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

    python benchmarks/train_throughput.py                   # CPU, paper model, B = 1, 2, 4
    python benchmarks/train_throughput.py --batches 1 --workers 0 --repeat 1   # less (loaded)
    python benchmarks/train_throughput.py --profile gpu     # one GPU: writes results/gpu.json
    python benchmarks/train_throughput.py --profile quick --out /tmp/q.json   # smoke (tiny)
    python benchmarks/train_throughput.py --profile gpu --dry-run   # gpu's code paths, tiny, CPU
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from throughput_parts import (
    PEAK_BF16,
    Step,
    batch_on,
    build,
    cpuinfo,
    data_modules,
    flops_per_sample,
    interleaved,
    load,
    loader_pass,
    machine,
    memory,
    sync,
    threads,
    timed,
    workspace_share,
)
from torch.utils.data import DataLoader, RandomSampler

from cocoer.callbacks.speed import SpeedConfig
from cocoer.data.synthetic import generate_emotic
from cocoer.data.tensor_augment import finish_batch
from cocoer.utils.timing import machine_was_shared

RESULTS = Path(__file__).resolve().parent / "results"
EMOTIC_TRAIN_PERSONS = 23_266
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {
        "preset": "paper", "size": 224, "device": "cpu", "batches": [1, 2, 4], "compare_batch": 1,
        "workers": [0, 1, 2], "images": 96, "image_side": [400, 640], "loader_batch": 32,
        "loader_repeat": 2, "repeat": 2, "e2e_steps": 1, "e2e_batches": [1, 2, 4],
        "e2e_workers": 0, "epoch": 0, "e2e_interleaved": True, "compile": False,
        "bf16": False, "channels_last": False,
        "out": RESULTS / "train_throughput.json",
    },
    "gpu": {
        "preset": "paper", "size": 224, "device": "cuda", "batches": [32, 64, 128, 256],
        "compare_batch": 128, "workers": [0, 2, 4, 8, 12], "images": 1024,
        "image_side": [480, 640], "loader_batch": 256, "loader_repeat": 3, "repeat": 3,
        "e2e_steps": 0, "e2e_batches": [256], "e2e_workers": 12, "epoch": EMOTIC_TRAIN_PERSONS,
        "e2e_interleaved": False, "compile": True, "bf16": True, "channels_last": True,
        "out": RESULTS / "gpu.json",
    },
    "quick": {
        "preset": "tiny", "size": 64, "device": "cpu", "batches": [2, 4], "compare_batch": 4,
        "workers": [0, 1], "images": 8, "image_side": [96, 160], "loader_batch": 4,
        "loader_repeat": 1, "repeat": 1, "e2e_steps": 2, "e2e_batches": [2, 4],
        "e2e_workers": 0, "epoch": 0, "e2e_interleaved": True, "compile": False,
        "bf16": False, "channels_last": False,
        "out": RESULTS / "train_throughput_quick.json",
    },
}  # fmt: skip
#: ``--dry-run``: a profile's code paths (compile, bf16 autocast, the workspace share, the
#: epoch loop) on the tiny model at 64 px, on the CPU when there is no GPU
DRY_RUN = {
    "preset": "tiny", "size": 64, "batches": [2, 4], "compare_batch": 4, "workers": [0, 1],
    "images": 8, "image_side": [96, 160], "loader_batch": 4, "loader_repeat": 1, "repeat": 1,
    "e2e_batches": [4], "e2e_workers": 1,
}  # fmt: skip


def cpu_peak_fp32() -> tuple[float | None, str]:
    """An estimate of the CPU's peak fp32 FLOP/s: torch threads x clock x FLOPs per cycle per
    core, the FLOPs per cycle being 2 FMA pipes x 2 (multiply and add) x the fp32 lanes of the
    FMA datapath (16 with AVX-512, 8 with AVX2/FMA, 4 on AMD Zen 1 (family 23, model < 0x30),
    whose two FMA pipes are 128 bits wide); (None, why) when /proc/cpuinfo cannot be read.
    The clock is the nominal one of /proc/cpuinfo (no turbo)."""
    info = cpuinfo()
    try:
        mhz = float(info["cpu MHz"])
        flags = set(info["flags"].split())
        family, model = int(info.get("cpu family", "0")), int(info.get("model", "0"))
    except (KeyError, ValueError):
        return None, "unknown (/proc/cpuinfo unreadable)"
    zen1 = info.get("vendor_id") == "AuthenticAMD" and family == 23 and model < 0x30
    lanes = 16 if "avx512f" in flags else 4 if zen1 or "fma" not in flags else 8
    per_cycle = 2 * 2 * lanes
    cores = torch.get_num_threads()
    why = f"{cores} threads x {mhz:.0f} MHz x {per_cycle} fp32 FLOP/cycle"
    why += f" (2 FMA pipes x 2 x {lanes} lanes)"
    return cores * mhz * 1e6 * per_cycle, why + (", AMD Zen 1" if zen1 else "")


def device_peak(res: dict[str, Any], device: torch.device, bf16: bool) -> tuple[float | None, str]:
    if device.type == "cuda":
        peak = PEAK_BF16.get(_gpu_family(res["machine"]["device"]))
        return peak, "vendor dense bf16 peak" if bf16 else "vendor dense bf16 peak (run in fp32)"
    return cpu_peak_fp32()


def step_section(
    p: dict[str, Any], root: Path, device: torch.device, res: dict[str, Any]
) -> tuple[float, Step]:
    """FLOPs; memory per batch size; (b) the step alone per batch size on a device-resident
    batch, interleaved across the batch sizes and, with ``e2e_interleaved``, with (c) end to
    end at the same batch sizes; the speed options. Returns the step's FLOPs per sample and
    the step (the model in the profile's layout, eager)."""
    bf16 = p["bf16"]
    lit = build(p["preset"], p["size"], device, SpeedConfig(channels_last=p["channels_last"]))
    step = Step(lit, bf16)
    res["model"] = {
        "preset": p["preset"], "image_size": p["size"], "bf16_mixed": bf16,
        "channels_last": p["channels_last"],
        "parameters": sum(q.numel() for q in lit.parameters()),
        "trainable": sum(q.numel() for q in lit.parameters() if q.requires_grad),
    }  # fmt: skip
    fl = flops_per_sample(step, batch_on(p["batches"][0], p["size"], device))
    res["flops_per_sample"] = {k: round(v / 1e9, 3) for k, v in fl.items()} | {"unit": "GFLOP"}
    print(f"FLOPs/sample: {res['flops_per_sample']}", flush=True)
    peak, how = device_peak(res, device, bf16)
    batches, mem = {}, {}
    for b in p["batches"]:  # one step each: memory, and the warm-up of the timed rounds
        batches[b] = batch_on(b, p["size"], device)
        try:
            mem[str(b)] = memory(step, batches[b])
        except torch.cuda.OutOfMemoryError:
            del batches[b]
            print(f"step B={b}: out of memory", flush=True)
            torch.cuda.empty_cache()
            break
        print(f"memory B={b}: {mem[str(b)]}", flush=True)
    runs = {f"step B={b}": (lambda x=x: step(x)) for b, x in batches.items()}
    if p["e2e_interleaved"]:
        runs |= {f"e2e B={b}": e2e_run(p, root, step, b) for b in batches}
    t = interleaved(runs, device, p["repeat"], warm_up=False)
    rows = []
    for b in batches:
        row: dict[str, Any] = {"batch": b, "step_s": round(t[f"step B={b}"], 4)}
        row["samples_per_s"] = round(b / t[f"step B={b}"], 3)
        if peak:
            row["fraction_of_peak"] = round(row["samples_per_s"] * fl["train_step"] / peak, 4)
        rows.append(row)
        print(f"step B={b}: {row}", flush=True)
    rows += [{"batch": int(b), "out_of_memory": True} for b in p["batches"] if b not in batches]
    res["step_alone"] = rows
    if p["e2e_interleaved"]:
        res["end_to_end"] = e2e_rows(p, t, rows, len(step_dataset(p, root, 1)))
    res["memory_by_batch"] = mem
    res["memory_is"] = (
        "cuda_peak_allocated_gib: torch.cuda.max_memory_allocated over one step"
        if device.type == "cuda"
        else "cpu_peak_rss_during_step_gib: peak resident set size of the process during one "
        "step (VmHWM, reset through /proc/self/clear_refs just before it)"
    ) + "; saved_activations_gib: tensors saved for backward (saved-tensor hooks)"
    best = max(r.get("samples_per_s", 0.0) for r in rows)
    achieved = best * fl["train_step"]
    res["utilisation"] = {
        "achieved_tflops": round(achieved / 1e12, 4),
        "peak_tflops": None if peak is None else round(peak / 1e12, 3),
        "peak_is": how,
        "fraction_of_peak": None if peak is None else round(achieved / peak, 4),
    }
    res["speed_options"] = speed_options(lit, step, p, device)
    if device.type == "cuda" or p["preset"] == "tiny":
        b = max(batches)
        res["workspace_share"] = {"batch": b} | workspace_share(step, batches[b], p["repeat"])
    return fl["train_step"], step


def _gpu_family(name: str) -> str:
    """The key of :data:`PEAK_BF16` for a CUDA device name (``NVIDIA H100 80GB HBM3``)."""
    if "H100" in name:
        return "H100 PCIe" if "PCIe" in name else "H100 SXM"
    return next((key for key in ("A100", "H200") if key in name), name)


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
        hfe.compile(mode=p.get("compile_mode", "default"))
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
    run(p["channels_last"], False)  # back to the profile's layout, eager
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
            t = interleaved(runs, torch.device("cpu"), p["loader_repeat"])
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


def step_dataset(p: dict[str, Any], root: Path, batch: int) -> Any:
    """The windows cache's train dataset (written at the first call, reused after)."""
    dm = data_modules(root, p["size"], batch, p["e2e_workers"], ("windows_cache",))
    return dm["windows_cache"].datasets["train"]


def e2e_run(p: dict[str, Any], root: Path, step: Step, b: int) -> Callable[[], int]:
    """(c) at batch ``b``: the windows-cache loader (``e2e_workers``) feeding ``step``:
    ``e2e_steps`` batches, or an epoch of ``epoch`` persons drawn with replacement from the
    generated ones; the on-device share of the augmentation (``finish_batch``) is in the
    time. Returns the callable, which returns the samples it trained on."""
    ds, device = step_dataset(p, root, b), step.device
    n = p["epoch"] or p["e2e_steps"] * b
    loader = DataLoader(
        ds,
        batch_size=b,
        sampler=RandomSampler(ds, replacement=True, num_samples=n),
        num_workers=p["e2e_workers"],
        collate_fn=ds.collate_fn,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )

    def run() -> int:
        seen = 0
        for batch in loader:
            batch = finish_batch({k: v.to(device, non_blocking=True) for k, v in batch.items()})
            step(batch)
            seen += int(batch["index"].numel())
        return seen

    return run


def e2e_rows(
    p: dict[str, Any], t: dict[str, float], alone: list[dict[str, Any]], persons: int
) -> dict[str, Any]:
    """(c)'s figures from the times ``t[f"e2e B={b}"]``, against the step alone of ``alone``."""
    rows = []
    rates = {r["batch"]: r.get("samples_per_s") for r in alone}
    for b in p["e2e_batches"]:
        if f"e2e B={b}" not in t:
            continue
        n = p["epoch"] or p["e2e_steps"] * b
        row = {"batch": b, "samples": n, "seconds": round(t[f"e2e B={b}"], 2)}
        row["samples_per_s"] = round(n / t[f"e2e B={b}"], 3)
        if rates.get(b):
            row["over_step_alone"] = round(row["samples_per_s"] / rates[b], 3)
        rows.append(row)
        print(f"end to end B={b}: {row}", flush=True)
    return {
        "loader": "windows_cache", "workers": p["e2e_workers"], "rows": rows,
        "interleaved_with_step_alone": p["e2e_interleaved"],
        "epoch_of": "EMOTIC train (23,266 persons)" if p["epoch"] == EMOTIC_TRAIN_PERSONS else None,
        "distinct_persons_in_cache": persons,
    }  # fmt: skip


def end_to_end(p: dict[str, Any], root: Path, step: Step, res: dict[str, Any]) -> None:
    """(c) once per batch size of ``e2e_batches`` after the step section (the GPU profile: an
    EMOTIC-sized epoch is too long to interleave); one warm-up step first."""
    t = {}
    too_big = {r["batch"] for r in res.get("step_alone", []) if r.get("out_of_memory")}
    for b in p["e2e_batches"]:
        if b in too_big or any(b > o for o in too_big):
            print(f"end to end B={b}: skipped (the step ran out of memory)", flush=True)
            continue
        run = e2e_run(p, root, step, b)
        step(batch_on(b, p["size"], step.device))  # warm-up (allocations, kernels)
        t[f"e2e B={b}"] = timed(run, step.device)
    persons = len(step_dataset(p, root, 1))
    res["end_to_end"] = e2e_rows(p, t, res.get("step_alone", []), persons)


def floor(step_flops: float, res: dict[str, Any], loader_best: dict[str, float]) -> None:
    """The GPU floor from the measured FLOPs, and what bounds it."""
    out = {}
    for name, peak in PEAK_BF16.items():
        if name in ("H100 PCIe", "H200"):  # the floor table: A100 and H100 SXM
            continue
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
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="the profile's code paths on the tiny model at 64 px (on the CPU without a GPU); "
        "writes to the temporary directory unless --out",
    )
    ap.add_argument(
        "--speed-options-only",
        action="store_true",
        help="only the speed options (eager, channels-last, compile with --compile on), "
        "interleaved; default --out: results/speed_options_<profile>.json",
    )
    ap.add_argument("--repeat", type=int, default=None, help="timed rounds of the steps")
    ap.add_argument("--batches", type=int, nargs="+", help="batch sizes of (b) and (c)")
    ap.add_argument("--workers", type=int, nargs="+", help="worker counts of (a)")
    args = ap.parse_args()
    p = dict(PROFILES[args.profile])
    if args.compile is not None:
        p["compile"] = args.compile == "on"
    if args.repeat is not None:
        p["repeat"] = args.repeat
    if args.batches:
        p["batches"] = p["e2e_batches"] = sorted(args.batches)
        p["compare_batch"] = min(p["compare_batch"], max(args.batches))
    if args.workers:
        p["workers"] = args.workers
    if args.speed_options_only:
        p["out"] = RESULTS / f"speed_options_{args.profile}.json"
    if args.dry_run:
        p |= DRY_RUN
        p["epoch"] = 24 if p["epoch"] else 0
        p["out"] = Path(tempfile.gettempdir()) / f"train_throughput_{args.profile}_dry_run.json"
        if not torch.cuda.is_available():
            p["device"] = "cpu"
    device = torch.device(p["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--profile gpu needs a CUDA device")
    res: dict[str, Any] = {"profile": args.profile, "machine": machine(device)}
    if args.dry_run:
        res["dry_run"] = True
    res["machine"]["load_before"] = load()
    if args.speed_options_only:
        out = args.out or p["out"]
        res["machine"]["load_before"] = load()
        lit = build(p["preset"], p["size"], device, SpeedConfig(channels_last=p["channels_last"]))
        res["speed_options"] = speed_options(lit, Step(lit, p["bf16"]), p, device)
        res["complete"] = True
        save(res, out)
        print(f"written to {out}")
        return
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
            step_flops, step = step_section(p, root, device, res)
            floor(step_flops, res, loader_best)
            save(res, out)
            if not p["e2e_interleaved"]:
                end_to_end(p, root, step, res)
    res["complete"] = True
    save(res, out)
    print(f"written to {out}")


def save(res: dict[str, Any], out: Path) -> None:
    """Write ``res`` with the load now as ``machine.load_after`` and ``machine.shared`` (the load
    before, or the load after less this process's threads, above half the cores)."""
    after = load()
    m = res["machine"]
    m["load_after"] = after
    m["shared"] = machine_was_shared(
        m["load_before"][0], after[0], m.get("torch_threads") or 1, m["cpus"] or 1
    )
    res.setdefault("complete", False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()

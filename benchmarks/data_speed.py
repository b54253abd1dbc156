"""Throughput of the EMOTIC DataModule train loader (decode + crops + transforms).

Generates an EMOTIC-layout dataset (images of realistic size, 400-640 px by default) in a
temporary folder, then times full passes over the train loader (batch 64, augmentations on) for
window sizes 224 and 64 with 0 and 2 workers. Prints a table and writes
``benchmarks/results/data_speed.json``.

    python benchmarks/data_speed.py [--images 256] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from cocoer.data import EmoticDataModule
from cocoer.data.synthetic import generate_emotic

RESULTS = Path(__file__).resolve().parent / "results" / "data_speed.json"


def measure(root: Path, image_size: int, workers: int, epochs: int) -> dict[str, float]:
    """Samples/second over ``epochs`` passes (the first batch is excluded as warm-up)."""
    dm = EmoticDataModule(root, image_size=image_size, batch_size=64, num_workers=workers)
    dm.setup("fit")
    loader = dm.train_dataloader()
    n, t_start = 0, None
    for _ in range(epochs):
        for batch in loader:
            if t_start is None:  # after the first batch: worker start-up excluded
                t_start = time.perf_counter()
                continue
            n += batch["index"].numel()
    elapsed = time.perf_counter() - (t_start or time.perf_counter())
    return {"samples": n, "seconds": round(elapsed, 3), "samples_per_s": round(n / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="train images to generate")
    parser.add_argument("--min-side", type=int, default=400)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "emotic"
        t0 = time.perf_counter()
        gen = generate_emotic(
            root,
            n_train=args.images,
            n_val=2,
            n_test=2,
            seed=0,
            image_size=(args.min_side, args.max_side),
        )
        gen_s = time.perf_counter() - t0
        rows = []
        for image_size in (224, 64):
            for workers in (0, 2):
                r = measure(root, image_size, workers, args.epochs)
                rows.append(
                    {"image_size": image_size, "num_workers": workers, "batch_size": 64, **r}
                )
                print(
                    f"S={image_size:3d} workers={workers}: {r['samples_per_s']:8.1f} samples/s "
                    f"({r['samples']} samples in {r['seconds']} s)",
                    flush=True,
                )
    result = {
        "what": "EmoticDataModule train loader: decode + 3 windows + flip/crop/jitter, batch 64",
        "dataset": {
            "train_persons": gen["persons"]["train"],
            "image_side_px": [args.min_side, args.max_side],
            "generation_seconds": round(gen_s, 2),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            # other processes on a shared machine slow the numbers down: record the load
            "load_average_1_5_15min_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

"""Benchmark: wall-clock time of ``--help`` for every console script, and whether answering
it imports torch or Lightning.

    python benchmarks/cli_help.py [--label after] [--runs 3] [--out benchmarks/results]

Each script runs as its console-script entry point does (``from MODULE import main;
main()`` with ``sys.argv = [NAME, "--help"]``) in a fresh interpreter, ``--runs`` times; the
median is kept. The machine's load average is recorded before and after, since the figures
on a shared machine are inflated by other jobs. Results are merged into
``cli_help.json`` under ``--label`` so that a ``before`` and an ``after`` run sit side by
side. Targets (issue 28): under 1 s for the argparse scripts, under 2 s for the Hydra ones
(``cocoer-train``, ``cocoer-eval``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: console script -> (entry module, target seconds)
SCRIPTS: dict[str, tuple[str, float]] = {
    "cocoer-prepare": ("cocoer.cli.prepare", 1.0),
    "cocoer-infer": ("cocoer.cli.infer", 1.0),
    "cocoer-params": ("cocoer.cli.params", 1.0),
    "cocoer-convert": ("cocoer.cli.convert", 1.0),
    "cocoer-export": ("cocoer.cli.export", 1.0),
    "cocoer-aggregate": ("cocoer.cli.aggregate", 1.0),
    "cocoer-report": ("cocoer.cli.report", 1.0),
    "cocoer-demo": ("cocoer.demo.cli", 1.0),
    "cocoer-train": ("cocoer.cli.train", 2.0),
    "cocoer-eval": ("cocoer.cli.evaluate", 2.0),
}

HEAVY = ("torch", "lightning", "pytorch_lightning", "torchmetrics")

_PROBE = """
import sys
sys.argv = [{name!r}, "--help"]
from {module} import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


def time_help(name: str, module: str) -> tuple[float, list[str], int]:
    """(seconds, heavy modules imported, exit code) of one ``NAME --help``."""
    code = _PROBE.format(name=name, module=module, heavy=HEAVY)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    seconds = time.perf_counter() - start
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")), "HEAVY=")
    heavy = [m for m in line.removeprefix("HEAVY=").split(",") if m]
    return seconds, heavy, proc.returncode


def measure(runs: int) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, (module, target) in SCRIPTS.items():
        times, heavy, rc = [], [], 0
        for _ in range(runs):
            seconds, heavy, rc = time_help(name, module)
            times.append(seconds)
        median = statistics.median(times)
        out[name] = {
            "module": module,
            "median_s": round(median, 3),
            "runs_s": [round(t, 3) for t in times],
            "target_s": target,
            "within_target": median < target,
            "heavy_imports": heavy,
            "exit_code": rc,
        }
        mark = "ok " if median < target else "SLOW"
        print(f"{mark} {name:<18} {median:6.2f} s (target {target:.0f} s)  imports {heavy or '-'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="key of this run in the JSON file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = measure(args.runs)
    load_after = os.getloadavg()
    path = args.out / "cli_help.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved[args.label] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "runs": args.runs,
        "scripts": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; wrote {path}")


if __name__ == "__main__":
    main()

"""Wall-clock timing for the benchmarks (one definition, so every benchmark times alike)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time (s) of ``repeat`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_of_interleaved(
    fns: dict[str, Callable[[], object]], repeat: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Best wall time (s) of each of ``fns``, timed in alternation: ``repeat`` rounds, each
    calling every function once (after ``warmup`` untimed rounds), so that a change of the
    machine's load during the run hits all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def machine_was_shared(load_before: float, load_after: float, own_threads: int, cpus: int) -> bool:
    """Whether other work loaded the machine during a benchmark: the 1-minute load average
    before it, or the one after it less the benchmark's own ``own_threads`` busy threads (which
    the load after still counts), above half of ``cpus``."""
    return max(load_before, load_after - own_threads) > 0.5 * max(cpus, 1)

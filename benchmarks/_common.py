"""Helpers shared by the benchmarks (run them from the repository root)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timeit(func: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time (s) of ``repeat`` calls of ``func``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

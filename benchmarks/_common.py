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


def compile_qsm_kernels() -> float:
    """Compile (or load from numba's cache) every QSM kernel before anything is timed, and say how
    long it took: on a fresh install that is ~15 s, which a timed first run would otherwise count."""
    from napari_qsm_ms.qsm.warmup import compile_kernels

    seconds = compile_kernels()
    print(f"QSM kernels compiled or loaded from numba's cache in {seconds:.1f} s (not part of any timing)")
    print(f"numba threads: {_numba_threads()}")
    return seconds


def _numba_threads() -> str:
    """numba's threading layer and thread count, and the OpenMP idle-spin settings in force (they
    change the FFTs' speed on a 2-core machine: docs/qsm.md, "Idle OpenMP threads spin less")."""
    import os

    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not started"
    spin = ", ".join(f"{k}={os.environ[k]}" for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if k in os.environ)
    return f"{numba.get_num_threads()} on the {layer!r} layer; " + (spin or "OpenMP spin: the runtime's default")

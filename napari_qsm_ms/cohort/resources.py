"""How many subjects to run at once on this machine, so that it never swaps.

The peak memory of one subject grows with its T2* grid: a fixed part (Python, NumPy, SciPy,
SimpleITK, Numba loaded) plus a part per voxel (QSM holds a few dozen float32/complex64 volumes on
the padded grid at its peak). Both were measured as the maximum resident set of ``qsm-ms recon``
(MEDI-L1 + PDF, the default and the heaviest step), ``coregister`` and ``rois`` run one after the
other on simulated subjects (see docs/cohort.md and benchmarks/bench_cohort.py).
"""

from __future__ import annotations

import os

import nibabel as nib

from ..io.layout import StudyFiles

#: Resident memory of a worker before any volume is loaded (bytes).
BASE_BYTES = 400e6
#: Peak extra memory per T2* voxel of one subject (bytes per voxel).
BYTES_PER_VOXEL = 200.0
#: Share of the available memory the jobs may plan to use (the rest for the system and caches).
MEMORY_SHARE = 0.8


def subject_peak_bytes(n_voxels: int) -> float:
    """Estimated peak resident memory of one subject's steps (bytes)."""
    return BASE_BYTES + BYTES_PER_VOXEL * float(n_voxels)


def available_memory_bytes() -> float:
    """Memory available to new processes now (psutil if installed, else /proc/meminfo)."""
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is usually there (napari needs it)
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        pass
    return 4e9  # pragma: no cover - unknown: assume a small workstation


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def largest_grid(study: StudyFiles, labels: list[str]) -> tuple[int, ...]:
    """The largest T2* grid among the subjects (from the NIfTI headers; no data read)."""
    best: tuple[int, ...] = (1, 1, 1)
    for label in labels:
        path = study.subject(label).magnitude
        try:
            shape = tuple(int(n) for n in nib.load(str(path)).shape)
        except Exception:  # noqa: BLE001 - an unreadable file fails in its own step, not here
            continue
        n = 1
        for d in shape:
            n *= d
        if n > _voxels(best):
            best = shape
    return best


def _voxels(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def default_jobs(study: StudyFiles, labels: list[str], *, memory_bytes: float | None = None,
                 cores: int | None = None) -> tuple[int, str]:
    """Subjects to run at once: at most one per core, and as many as fit in memory.

    Returns
    -------
    jobs : int
    reason : str
        One line saying how it was chosen.
    """
    cores = available_cores() if cores is None else cores
    memory = available_memory_bytes() if memory_bytes is None else memory_bytes
    grid = largest_grid(study, labels)
    per = subject_peak_bytes(_voxels(grid))
    by_memory = max(1, int(MEMORY_SHARE * memory // per))
    jobs = max(1, min(cores, by_memory, len(labels)))
    grid_text = "x".join(map(str, grid))
    return jobs, (f"{jobs} job(s): {cores} cores, {memory / 1e9:.1f} GB available, about "
                  f"{per / 1e9:.2f} GB per subject at {grid_text}")

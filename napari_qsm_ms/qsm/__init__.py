"""Quantitative susceptibility mapping in pure numpy/scipy: masks, unwrapping, background removal,
dipole inversion and the whole pipeline.

Importing this package caps how long idle OpenMP threads spin (:data:`OPENMP_SPIN_COUNT`, libgomp's
``GOMP_SPINCOUNT``) unless the environment sets ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``: the
numba kernels run on OpenMP threads, which by default (300,000 spins) keep spinning after each
parallel pass and take the cores of the FFT threads that run next (ducc0's own pool). On the 2-core
development machine MEDI on a 180x180x90 grid took 23.9-29.9 s with the default spin, 18.6-19.1 s
with 30,000 spins and 17.3-19.2 s with none (``OMP_WAIT_POLICY=PASSIVE``); but with none, the tiny
pipeline of :mod:`~napari_qsm_ms.qsm.warmup` (many short passes in a row) took 0.56-0.66 s against
0.41-0.52 s, so the spin is shortened, not removed. The maps are bitwise the same (docs/qsm.md,
"Idle OpenMP threads spin less"). libgomp reads the variable when it loads, at the first parallel
kernel, which is after this import; in a process that loaded an OpenMP runtime before importing
this package (another library's parallel code), the setting has no effect.
"""

import os as _os

OPENMP_SPIN_COUNT = 30_000
"""Spins of an idle OpenMP thread before it sleeps (``GOMP_SPINCOUNT``), set at import unless the
environment sets ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` (the user's choice is left as it is)."""

if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = str(OPENMP_SPIN_COUNT)

from .dipole import GAMMA_BAR_MHZ_PER_T, dipole_kernel, ppm_per_radian  # noqa: E402

__all__ = ["GAMMA_BAR_MHZ_PER_T", "dipole_kernel", "ppm_per_radian"]

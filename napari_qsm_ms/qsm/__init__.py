"""Quantitative susceptibility mapping in pure numpy/scipy: masks, unwrapping, background removal,
dipole inversion and the whole pipeline.

Importing this package sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it
(:data:`OPENMP_WAIT_POLICY`): the numba kernels run on OpenMP threads, which by default keep
spinning after each parallel pass and take the cores of the FFT threads that run next (ducc0's
own pool). On the 2-core development machine MEDI on a 180x180x90 grid took 24.5-29.9 s spinning
and 15.9-19.2 s passive, the headless sample demo 52-54 s and 36-43 s; on the paper's 360x360x90
grid the gain (about 5 %) is inside the machine's noise. The maps are bitwise the same (docs/qsm.md,
"OpenMP threads now wait passively"). OpenMP reads the variable when its runtime loads, at the
first parallel kernel, which is after this import.
"""

import os as _os

OPENMP_WAIT_POLICY = "PASSIVE"
"""The OpenMP wait policy this package sets by default (``OMP_WAIT_POLICY``); a value the user set is
left as it is."""

_os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_WAIT_POLICY)

from .dipole import GAMMA_BAR_MHZ_PER_T, dipole_kernel, ppm_per_radian  # noqa: E402

__all__ = ["GAMMA_BAR_MHZ_PER_T", "dipole_kernel", "ppm_per_radian"]

"""Compile the QSM pipeline's numba kernels once, ahead of the first real reconstruction.

The kernels (:mod:`~napari_qsm_ms.qsm.gradients`, :mod:`~napari_qsm_ms.qsm._kspace`,
:mod:`~napari_qsm_ms.qsm.region_unwrap`, :mod:`~napari_qsm_ms.qsm.unwrap`) are compiled on first
use and cached on disk (``cache=True``). Without a warm cache the first reconstruction after an
install pays the compilation: 14.1-14.6 s on the 2-core development machine (unwrapping 6.5 s,
MEDI 8.1 s; 16.1-16.4 s in a clean clone's CI) on top of a 0.7 s run, and a benchmark that times
that run measures the compiler. ``make setup`` runs this module once; the speed benchmarks call
:func:`compile_kernels` before timing and print what it took.

Run: ``python -m napari_qsm_ms.qsm.warmup``
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .dipole import dipole_kernel, ppm_per_radian
from ._fft import irfftn, rfftn

_TE_S, _B0_T = 0.0177, 7.0
_VOXEL_MM = (2.0, 2.0, 2.0)


def _tiny_gre(shape=(40, 40, 32), seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude, wrapped phase (radians) and affine of a small noisy ellipsoid holding a
    paramagnetic sphere, at 7 T (enough to run every default stage)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(np.float32)
    centre = [(n - 1) / 2 for n in shape]
    r2 = sum(((g - c) / (0.4 * n)) ** 2 for g, c, n in zip(grid, centre, shape))
    head = r2 <= 1.0
    chi_ppm = np.where(sum((g - c) ** 2 for g, c in zip(grid, centre)) <= 16, 0.3, 0.0).astype(np.float32)
    d = dipole_kernel(shape, _VOXEL_MM, (0.0, 0.0, 1.0), rfft=True)
    field_rad = irfftn(d * rfftn(chi_ppm), shape) / ppm_per_radian(_TE_S, _B0_T)
    magnitude = np.where(head, 100.0, 0.0) + rng.normal(0.0, 2.0, shape)
    phase = np.where(head, field_rad, 0.0) + rng.normal(0.0, 0.02, shape)
    phase = np.angle(np.exp(1j * phase)).astype(np.float32)
    affine = np.diag(list(_VOXEL_MM) + [1.0])
    return np.abs(magnitude).astype(np.float32), phase, affine


def compile_kernels() -> float:
    """Run the default pipeline, the Laplacian unwrapping and the gradient operators the default
    does not use on a tiny input, so that every numba kernel of the package is compiled and cached;
    return the seconds it took (about 0.7 s with a warm cache)."""
    from .gradients import forward_gradient, forward_gradient_adjoint, weighted_gradient_normal_diagonal
    from .pipeline import reconstruct
    from .unwrap import unwrap_laplacian

    t = time.perf_counter()
    magnitude, phase, affine = _tiny_gre()
    reconstruct(magnitude, phase, affine=affine, te_s=_TE_S, b0_t=_B0_T)
    unwrap_laplacian(phase, _VOXEL_MM)
    g = forward_gradient(phase, _VOXEL_MM)
    forward_gradient_adjoint(g, _VOXEL_MM)
    weighted_gradient_normal_diagonal(np.abs(g), _VOXEL_MM)
    return time.perf_counter() - t


def main() -> int:
    seconds = compile_kernels()
    print(f"QSM kernels compiled (numba, cached on disk) in {seconds:.1f} s: the first reconstruction will "
          "not wait for them", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Small analytic test objects for the QSM tests (spheres in a spherical 'brain')."""

from __future__ import annotations

import numpy as np

from napari_qsm_ms.qsm._fft import fast_shape, irfftn, rfftn
from napari_qsm_ms.qsm.dipole import dipole_kernel
from napari_qsm_ms.qsm.metrics import nrmse_percent  # noqa: F401  (re-exported for the tests)


def ball(shape, voxel_size_mm, center_vox, radius_mm) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * h) ** 2 for g, c, h in zip(grids, center_vox, voxel_size_mm))
    return d2 <= radius_mm**2


def sphere_phantom(shape=(48, 48, 40), voxel_size_mm=(1.0, 1.0, 1.5)):
    """chi (ppm), brain mask and magnitude of a spherical brain with three inclusions."""
    c = [n / 2 for n in shape]
    brain = ball(shape, voxel_size_mm, c, 0.42 * min(n * h for n, h in zip(shape, voxel_size_mm)))
    chi = np.zeros(shape, np.float32)
    chi[ball(shape, voxel_size_mm, (c[0] + 5, c[1] - 2, c[2]), 6.0)] = 0.1
    chi[ball(shape, voxel_size_mm, (c[0] - 7, c[1] + 5, c[2] + 2), 5.0)] = -0.06
    chi[ball(shape, voxel_size_mm, (c[0] + 1, c[1] + 8, c[2] - 4), 4.0)] = 0.05
    chi *= brain
    magnitude = np.where(brain, 1.0 - 2.0 * np.abs(chi), 0.0).astype(np.float32)
    return chi, brain, magnitude


def field_ppm(chi_ppm, voxel_size_mm, b0_dir) -> np.ndarray:
    """Dipole field (ppm) of ``chi_ppm`` with generous zero padding (independent of qsm code paths
    except the shared kernel)."""
    shape = fast_shape(chi_ppm.shape, [n for n in chi_ppm.shape])
    big = np.zeros(shape, np.float32)
    big[tuple(slice(0, n) for n in chi_ppm.shape)] = chi_ppm
    d = dipole_kernel(shape, voxel_size_mm, b0_dir, rfft=True)
    out = irfftn(d * rfftn(big), shape)
    return np.ascontiguousarray(out[tuple(slice(0, n) for n in chi_ppm.shape)], dtype=np.float32)

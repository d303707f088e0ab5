"""The unit dipole kernel and the field <-> ppm conversion. Defined once for the whole package.

Convention: the local field ``f`` (radians at echo time TE) caused by susceptibility ``chi`` (ppm) is

    f = 2 pi * gamma_bar * B0 * TE * 1e-6 * IFFT(D * FFT(chi)),
    D(k) = 1/3 - (k . b0)^2 / |k|^2,   D(0) = 0,

with ``k`` the physical spatial frequency (cycles/mm, so anisotropic voxels are honoured) and
``b0`` the unit main-field direction in the array's axes (see ``io.geometry.b0_direction_voxel``).
"""

from __future__ import annotations

import numpy as np

GAMMA_BAR_MHZ_PER_T = 42.577478
"""Proton gyromagnetic ratio over 2 pi, MHz/T."""


def ppm_per_radian(te_s: float, b0_t: float) -> float:
    """Susceptibility (ppm) that one radian of field at echo time ``te_s`` corresponds to.

    ``chi_ppm = field_rad * ppm_per_radian(te_s, b0_t)``, i.e. ``1e6 / (2 pi gamma_bar B0 TE)``.

    Examples
    --------
    >>> round(ppm_per_radian(0.0177, 7.0), 5)
    0.03017
    """
    return 1.0 / (2 * np.pi * GAMMA_BAR_MHZ_PER_T * b0_t * te_s)


def frequency_grids(
    shape: tuple[int, int, int], voxel_size_mm, *, rfft: bool = False, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical spatial frequencies (cycles/mm) along each axis, broadcastable (open grids).

    With ``rfft=True`` the last axis holds only the non-negative half, matching ``scipy.fft.rfftn``.
    """
    vs = np.asarray(voxel_size_mm, dtype=float)
    k0 = np.fft.fftfreq(shape[0], d=vs[0]).astype(dtype)[:, None, None]
    k1 = np.fft.fftfreq(shape[1], d=vs[1]).astype(dtype)[None, :, None]
    last = np.fft.rfftfreq if rfft else np.fft.fftfreq
    k2 = last(shape[2], d=vs[2]).astype(dtype)[None, None, :]
    return k0, k1, k2


def dipole_kernel(
    shape: tuple[int, int, int],
    voxel_size_mm=(1.0, 1.0, 1.0),
    b0_dir=(0.0, 0.0, 1.0),
    *,
    rfft: bool = False,
    dtype=np.float32,
) -> np.ndarray:
    """Unit dipole kernel ``D(k) = 1/3 - (k . b0)^2 / |k|^2`` in k-space (FFT order, not shifted).

    Parameters
    ----------
    shape : tuple of 3 int
        Array shape in voxels (of the padded array if padding is used).
    voxel_size_mm : sequence of 3 float
        Voxel edge lengths along the array axes, mm.
    b0_dir : sequence of 3 float
        Main-field direction in the array's axes (normalised here).
    rfft : bool
        Return the half-spectrum for ``rfftn`` (last axis ``shape[2] // 2 + 1``).
    dtype : numpy dtype
        Output type.

    Returns
    -------
    ndarray
        Real kernel; ``D[0, 0, 0] = 0``.
    """
    b = np.asarray(b0_dir, dtype=float)
    b = b / np.linalg.norm(b)
    k0, k1, k2 = frequency_grids(shape, voxel_size_mm, rfft=rfft, dtype=np.float64)
    # qsm engineer's fix: at the Nyquist index of an even axis the frequency is +N/2 and -N/2 at
    # once, so for an oblique B0 the cross terms of (k . b)^2 made D(k) != D(-k) there (the kernel
    # was not Hermitian-symmetric, and rfft=True disagreed with rfft=False by up to 0.6). Use the
    # average over both signs: Nyquist components enter (k . b)^2 only through their squares.
    parts, nyq_sq = [], 0.0
    for k, n, bi in zip((k0, k1, k2), shape, b):
        if n % 2 == 0:
            is_nyq = np.zeros(k.shape, dtype=bool)
            is_nyq.reshape(-1)[n // 2 if k.size == n else -1] = True  # rfft axis: Nyquist is last
            parts.append(np.where(is_nyq, 0.0, k * bi))
            nyq_sq = nyq_sq + np.where(is_nyq, (k * bi) ** 2, 0.0)
        else:
            parts.append(k * bi)
    k_dot_b_sq = (parts[0] + parts[1] + parts[2]) ** 2 + nyq_sq
    k_sq = k0**2 + k1**2 + k2**2
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = 1.0 / 3.0 - k_dot_b_sq / k_sq
    kernel[0, 0, 0] = 0.0
    return kernel.astype(dtype)

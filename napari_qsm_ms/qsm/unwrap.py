"""Laplacian phase unwrapping (as the MEDI toolbox's ``unwrapLaplacian``), voxel-size aware.

The unwrapped phase solves ``L phi = cos(psi) L sin(psi) - sin(psi) L cos(psi)`` for the wrapped
phase ``psi`` (Schofield & Zhu, Opt Lett 2003). ``L`` is the discrete 7-point Laplacian with the
true voxel size, diagonalised by 3-D discrete cosine transforms (even, Neumann boundary): unlike a
zero- or periodically-padded FFT, the slab's edges then create no wrap-around jumps, and no padding
is needed. The transforms are FFT-based (``scipy.fft.dctn`` with all cores) and counted in
:data:`~napari_qsm_ms.qsm._fft.FFT_COUNTER`.

The result is the true phase up to a harmonic function (a constant and smooth terms that
background-field removal takes away), so it is not an exact 2 pi-integer correction of ``psi``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from ..progress import ProgressCallback, report
from ._fft import FFT_COUNTER, workers


def laplacian_eigenvalues(shape, voxel_size_mm, dtype=np.float32) -> np.ndarray:
    """Eigenvalues of the Neumann discrete Laplacian in the DCT-II basis (per mm^2), broadcast."""
    vs = np.asarray(voxel_size_mm, dtype=float)
    lam = np.zeros(shape, dtype=np.float64)
    for ax, (n, h) in enumerate(zip(shape, vs)):
        k = np.arange(n)
        e = (2.0 * np.cos(np.pi * k / n) - 2.0) / h**2
        sh = [1, 1, 1]
        sh[ax] = n
        lam = lam + e.reshape(sh)
    return lam.astype(dtype)


def _dct(x):
    FFT_COUNTER.add(x.shape)
    return sfft.dctn(x, type=2, norm="ortho", workers=workers())


def _idct(x):
    FFT_COUNTER.add(x.shape)
    return sfft.idctn(x, type=2, norm="ortho", workers=workers())


def unwrap_laplacian(
    phase_rad: np.ndarray, voxel_size_mm, *, progress: ProgressCallback | None = None
) -> np.ndarray:
    """Unwrap a wrapped phase with the Laplacian method.

    Parameters
    ----------
    phase_rad : ndarray, shape (nx, ny, nz)
        Wrapped phase, radians.
    voxel_size_mm : sequence of 3 float
        Voxel edge lengths, mm.
    progress : callable, optional
        Progress callback.

    Returns
    -------
    ndarray, float32
        Unwrapped phase (radians), up to a harmonic function; its mean over the volume is zero.
    """
    psi = np.asarray(phase_rad, dtype=np.float32)
    report(progress, 0.0, "Laplacian unwrapping")
    lam = laplacian_eigenvalues(psi.shape, voxel_size_mm)
    z = np.exp(1j * psi).astype(np.complex64)
    lz = _idct(_dct(z) * lam)
    report(progress, 0.5, "Laplacian unwrapping")
    rhs = (z.real * lz.imag - z.imag * lz.real).astype(np.float32)  # Im(conj(z) L z)
    del z, lz
    spec = _dct(rhs)
    lam[0, 0, 0] = 1.0
    spec /= lam
    spec[0, 0, 0] = 0.0
    out = _idct(spec).astype(np.float32, copy=False)
    report(progress, 1.0, "Laplacian unwrapping")
    return out

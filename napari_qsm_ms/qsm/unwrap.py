"""Laplacian phase unwrapping (as the MEDI toolbox's ``unwrapLaplacian``), voxel-size aware.

The unwrapped phase solves ``L phi = cos(psi) L sin(psi) - sin(psi) L cos(psi)`` for the wrapped
phase ``psi`` (Schofield & Zhu, Opt Lett 2003). ``L`` is the discrete 7-point Laplacian with the
true voxel size, diagonalised by 3-D discrete cosine transforms (even, Neumann boundary): unlike a
zero- or periodically-padded FFT, the slab's edges then create no wrap-around jumps, and no padding
is needed. The transforms are FFT-based (``scipy.fft.dctn`` with all cores) and counted in
:data:`~napari_qsm_ms.qsm._fft.FFT_COUNTER`.

The result is the true phase up to a harmonic function (a constant and smooth terms that
background-field removal takes away), so it is not an exact 2 pi-integer correction of ``psi``;
near air at 7 T, where the phase steps by more than ~1 rad per voxel, it also carries the sine
error described in :func:`unwrap_laplacian`. The pipeline's default is therefore the exact
region-growing unwrapper of :mod:`~napari_qsm_ms.qsm.region_unwrap`; this one is kept as the MEDI
toolbox's method.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from numba import njit, prange

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


def reliable_voxels(phase_rad: np.ndarray, max_step_rad: float = 1.5) -> np.ndarray:
    """Voxels whose wrapped phase differs from every 6-neighbour by at most ``max_step_rad``.

    Where the phase changes by more than about pi per voxel (near air cavities at 7 T) it is
    aliased: no unwrapping can recover it, and its Laplacian is garbage.
    """
    psi = np.ascontiguousarray(phase_rad, dtype=np.float32)
    ok = np.empty(psi.shape, dtype=bool)
    _reliable(psi, np.float32(max_step_rad), ok)
    return ok


@njit(cache=True, inline="always")
def wrapped_step(step):  # pragma: no cover - compiled
    """A phase difference (float32, radians) wrapped to [-pi, pi); for numba kernels."""
    two_pi = np.float32(2 * np.pi)
    return step - two_pi * np.floor((step + np.float32(np.pi)) / two_pi)


@njit(parallel=True, cache=True)
def _reliable(psi, max_step, ok):  # pragma: no cover - compiled
    nx, ny, nz = psi.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                v = psi[i, j, k]
                good = True
                for di, dj, dk in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)):
                    a, b, c = i + di, j + dj, k + dk
                    if a < 0 or a >= nx or b < 0 or b >= ny or c < 0 or c >= nz:
                        continue
                    if abs(wrapped_step(psi[a, b, c] - v)) > max_step:
                        good = False
                        break
                ok[i, j, k] = good


def _laplacian_pass(psi: np.ndarray, lam: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """One Laplacian unwrapping of the wrapped phase ``psi`` (``lam``: the eigenvalues, DC 0);
    ``weight`` (bool) keeps the Laplacian source term only where True."""
    z = np.exp(1j * psi).astype(np.complex64)
    lz = _idct(_dct(z) * lam)
    rhs = (z.real * lz.imag - z.imag * lz.real).astype(np.float32)  # Im(conj(z) L z)
    del z, lz
    if weight is not None:
        rhs *= weight
    return _poisson_solve(rhs, lam)


def _poisson_solve(rhs: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Zero-mean solution of ``L u = rhs`` (Neumann boundary, ``lam`` the DCT eigenvalues), float32."""
    spec = _dct(rhs)
    spec[0, 0, 0] = 0.0
    lam0 = lam[0, 0, 0]
    lam[0, 0, 0] = 1.0
    spec /= lam
    lam[0, 0, 0] = lam0
    return _idct(spec).astype(np.float32, copy=False)


def unwrap_laplacian(
    phase_rad: np.ndarray,
    voxel_size_mm,
    *,
    refine: int = 0,
    mask: np.ndarray | None = None,
    exclude_aliased: bool = True,
    max_step_rad: float = 1.5,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Unwrap a wrapped phase with the Laplacian method.

    The identity ``L phi = Im(conj(z) L z)`` (``z = exp(i psi)``) holds for the continuous
    Laplacian; for the discrete one each neighbour difference enters through its sine, so where
    the phase changes steeply (near air-tissue interfaces at 7 T) a single pass leaves an error
    that is not harmonic and survives background removal. With ``refine`` > 0 the wrapped
    residual ``wrap(psi - u)``, whose gradients are small, is unwrapped again and added
    (``refine`` times), which removes that error at the cost of four more transforms each.

    Parameters
    ----------
    phase_rad : ndarray, shape (nx, ny, nz)
        Wrapped phase, radians.
    voxel_size_mm : sequence of 3 float
        Voxel edge lengths, mm.
    mask : ndarray of bool, optional
        When given, the Laplacian source term is kept only inside it (the result then differs
        from the true phase inside by a harmonic function, removed by background removal).
    exclude_aliased : bool
        Drop the source term at voxels that are not :func:`reliable_voxels` (a neighbour step
        above ``max_step_rad``): aliased voxels near air and pure-noise voxels outside the head
        otherwise inject errors that spread through the brain as 1/r potentials (on our 7 T
        phantoms this halved the end-to-end error).
    max_step_rad : float
        Threshold of ``exclude_aliased`` (default 1.5 rad).
    refine : int
        Residual passes after the first (default 0: in our phantoms the residual pass did not
        lower the error, which is dominated by noise and by aliased voxels near air).
    progress : callable, optional
        Progress callback.

    Returns
    -------
    ndarray, float32
        Unwrapped phase (radians), up to a harmonic function; its mean over the volume is zero.
    """
    psi = np.asarray(phase_rad, dtype=np.float32)
    n_pass = 1 + max(0, int(refine))
    report(progress, 0.0, "Laplacian unwrapping")
    lam = laplacian_eigenvalues(psi.shape, voxel_size_mm)
    weight = reliable_voxels(psi, max_step_rad) if exclude_aliased else None
    if mask is not None:
        weight = np.asarray(mask, dtype=bool) if weight is None else weight & np.asarray(mask, dtype=bool)
    out = _laplacian_pass(psi, lam, weight)
    for i in range(1, n_pass):
        report(progress, i / n_pass, "Laplacian unwrapping (residual pass)")
        residual = np.angle(np.exp(1j * (psi - out))).astype(np.float32)
        out += _laplacian_pass(residual, lam, weight)
    report(progress, 1.0, "Laplacian unwrapping")
    return out

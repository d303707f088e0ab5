"""THE finite-difference gradient operators of the package (used by MEDI and TV), with voxel size.

Forward differences with a zero last row along each axis (Neumann boundary, as the MEDI toolbox's
``fgrad``) and their exact adjoint (``-div``, MEDI's ``bdiv``), plus the fused weighted operator
``G^T (w * G x)`` that MEDI's inner conjugate-gradient loop applies. All kernels are numba-compiled,
parallel over the first axis, float32, and allocate no temporaries beyond their outputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def _h(voxel_size_mm) -> tuple[float, float, float]:
    vs = np.asarray(voxel_size_mm, dtype=float).reshape(3)
    if not np.all(vs > 0):
        raise ValueError(f"voxel sizes must be positive, got {tuple(vs)}")
    return float(1.0 / vs[0]), float(1.0 / vs[1]), float(1.0 / vs[2])


@njit(parallel=True, cache=True, fastmath=True)
def _grad(x, hx, hy, hz, out):  # pragma: no cover - compiled
    nx, ny, nz = x.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                v = x[i, j, k]
                out[0, i, j, k] = (x[i + 1, j, k] - v) * hx if i < nx - 1 else 0.0
                out[1, i, j, k] = (x[i, j + 1, k] - v) * hy if j < ny - 1 else 0.0
                out[2, i, j, k] = (x[i, j, k + 1] - v) * hz if k < nz - 1 else 0.0


@njit(parallel=True, cache=True, fastmath=True)
def _grad_adj(g, hx, hy, hz, out):  # pragma: no cover - compiled
    _, nx, ny, nz = g.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                s = 0.0
                if i > 0:
                    s += g[0, i - 1, j, k] * hx
                if i < nx - 1:
                    s -= g[0, i, j, k] * hx
                if j > 0:
                    s += g[1, i, j - 1, k] * hy
                if j < ny - 1:
                    s -= g[1, i, j, k] * hy
                if k > 0:
                    s += g[2, i, j, k - 1] * hz
                if k < nz - 1:
                    s -= g[2, i, j, k] * hz
                out[i, j, k] = s


@njit(parallel=True, cache=True, fastmath=True)
def _weighted_laplacian(x, w, hx, hy, hz, out):  # pragma: no cover - compiled
    # out = G^T (w * G x), with w of shape (3, nx, ny, nz)
    nx, ny, nz = x.shape
    hx2, hy2, hz2 = hx * hx, hy * hy, hz * hz
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                v = x[i, j, k]
                s = 0.0
                if i > 0:
                    s += w[0, i - 1, j, k] * (v - x[i - 1, j, k]) * hx2
                if i < nx - 1:
                    s -= w[0, i, j, k] * (x[i + 1, j, k] - v) * hx2
                if j > 0:
                    s += w[1, i, j - 1, k] * (v - x[i, j - 1, k]) * hy2
                if j < ny - 1:
                    s -= w[1, i, j, k] * (x[i, j + 1, k] - v) * hy2
                if k > 0:
                    s += w[2, i, j, k - 1] * (v - x[i, j, k - 1]) * hz2
                if k < nz - 1:
                    s -= w[2, i, j, k] * (x[i, j, k + 1] - v) * hz2
                out[i, j, k] = s


@njit(parallel=True, cache=True, fastmath=True)
def _irls_weights(x, wg, hx, hy, hz, eps, out):  # pragma: no cover - compiled
    # out_d = wg_d / sqrt((wg_d * G_d x)^2 + eps)   (MEDI's wG .* Vr .* wG with binary wG)
    nx, ny, nz = x.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                v = x[i, j, k]
                g0 = (x[i + 1, j, k] - v) * hx if i < nx - 1 else 0.0
                g1 = (x[i, j + 1, k] - v) * hy if j < ny - 1 else 0.0
                g2 = (x[i, j, k + 1] - v) * hz if k < nz - 1 else 0.0
                w0 = wg[0, i, j, k]
                w1 = wg[1, i, j, k]
                w2 = wg[2, i, j, k]
                out[0, i, j, k] = w0 / np.sqrt(w0 * w0 * g0 * g0 + eps)
                out[1, i, j, k] = w1 / np.sqrt(w1 * w1 * g1 * g1 + eps)
                out[2, i, j, k] = w2 / np.sqrt(w2 * w2 * g2 * g2 + eps)


@njit(parallel=True, cache=True, fastmath=True)
def _normal_diag(w, hx, hy, hz, out):  # pragma: no cover - compiled
    # diagonal of G^T diag(w) G
    _, nx, ny, nz = w.shape
    hx2, hy2, hz2 = hx * hx, hy * hy, hz * hz
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                s = 0.0
                if i > 0:
                    s += w[0, i - 1, j, k] * hx2
                if i < nx - 1:
                    s += w[0, i, j, k] * hx2
                if j > 0:
                    s += w[1, i, j - 1, k] * hy2
                if j < ny - 1:
                    s += w[1, i, j, k] * hy2
                if k > 0:
                    s += w[2, i, j, k - 1] * hz2
                if k < nz - 1:
                    s += w[2, i, j, k] * hz2
                out[i, j, k] = s


def weighted_gradient_normal_diagonal(w: np.ndarray, voxel_size_mm, out: np.ndarray | None = None) -> np.ndarray:
    """Diagonal of the operator :func:`weighted_gradient_normal` applies (for Jacobi preconditioning)."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if out is None:
        out = np.empty(w.shape[1:], dtype=np.float32)
    _normal_diag(w, *_h(voxel_size_mm), out)
    return out


def forward_gradient(x: np.ndarray, voxel_size_mm, out: np.ndarray | None = None) -> np.ndarray:
    """Forward differences along the three axes, divided by the voxel size (per mm).

    Parameters
    ----------
    x : ndarray, shape (nx, ny, nz)
        Scalar volume.
    voxel_size_mm : sequence of 3 float
        Voxel edge lengths, mm.
    out : ndarray, shape (3, nx, ny, nz), float32, optional
        Output buffer.

    Returns
    -------
    ndarray, shape (3, nx, ny, nz), float32
        ``g[d, i] = (x[i + e_d] - x[i]) / h_d``, and 0 on the last index along ``d``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if out is None:
        out = np.empty((3,) + x.shape, dtype=np.float32)
    _grad(x, *_h(voxel_size_mm), out)
    return out


def forward_gradient_adjoint(g: np.ndarray, voxel_size_mm, out: np.ndarray | None = None) -> np.ndarray:
    """Exact adjoint ``G^T`` of :func:`forward_gradient` (equal to minus a backward divergence).

    ``<G x, g> == <x, G^T g>`` for all ``x`` and ``g``.
    """
    g = np.ascontiguousarray(g, dtype=np.float32)
    if out is None:
        out = np.empty(g.shape[1:], dtype=np.float32)
    _grad_adj(g, *_h(voxel_size_mm), out)
    return out


def divergence(g: np.ndarray, voxel_size_mm) -> np.ndarray:
    """Backward-difference divergence, ``-G^T g``."""
    return -forward_gradient_adjoint(g, voxel_size_mm)


def weighted_gradient_normal(x: np.ndarray, w: np.ndarray, voxel_size_mm, out: np.ndarray | None = None) -> np.ndarray:
    """Fused ``G^T (w * G x)`` (a weighted negative Laplacian), one pass, no temporaries.

    Parameters
    ----------
    x : ndarray, shape (nx, ny, nz), float32
    w : ndarray, shape (3, nx, ny, nz), float32
        Non-negative weight per voxel and direction.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    w = np.ascontiguousarray(w, dtype=np.float32)
    if out is None:
        out = np.empty(x.shape, dtype=np.float32)
    _weighted_laplacian(x, w, *_h(voxel_size_mm), out)
    return out


def irls_weights(x: np.ndarray, edge_free: np.ndarray, voxel_size_mm, eps: float, out: np.ndarray | None = None):
    """MEDI's reweighting ``M / sqrt(|M G x|^2 + eps)`` per voxel and direction, fused.

    Parameters
    ----------
    x : ndarray, shape (nx, ny, nz)
        Current susceptibility estimate.
    edge_free : ndarray, shape (3, nx, ny, nz)
        Gradient weight ``M`` (1 where the magnitude shows no edge, 0 on edges), float32.
    eps : float
        Smoothing of the L1 norm (MEDI: 1e-6).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    m = np.ascontiguousarray(edge_free, dtype=np.float32)
    if out is None:
        out = np.empty(m.shape, dtype=np.float32)
    _irls_weights(x, m, *_h(voxel_size_mm), np.float32(eps), out)
    return out

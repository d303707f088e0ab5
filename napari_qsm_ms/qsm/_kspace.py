"""Fused passes over half spectra for MEDI's conjugate gradients in k-space.

:func:`~napari_qsm_ms.qsm.inversion._pcg_kspace` keeps residual, search direction and solution
as half spectra (``rfftn`` along the last axis). Between its four FFTs an iteration does only
point-wise work on those arrays; written with numpy it took about ten passes over memory and a third
of the wall time on the paper's grid. Here each step is one numba pass, parallel over the first
axis, accumulating inner products in float64. Inner products follow Parseval for real volumes:
``<a, b> = N * sum_k c_k Re(conj(A_k) B_k)`` with ``c_k = 2`` on the interior planes of the last
axis and 1 on its first plane (and on its last plane when the real length is even); the factor
``N`` is left out, as it cancels in every ratio CG takes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def plane_weights(n_half: int, n_last: int) -> np.ndarray:
    """``c_k`` along the last axis of a half spectrum of real length ``n_last`` (module docstring)."""
    c = np.full(n_half, 2.0)
    c[0] = 1.0
    if n_last % 2 == 0:
        c[-1] = 1.0
    return c


@njit(parallel=True, cache=True, fastmath=False)
def half_dot(a, b, c):  # pragma: no cover - compiled
    """``sum_k c_k Re(conj(a_k) b_k)`` over a half spectrum (float64)."""
    n0, n1, n2 = a.shape
    s = 0.0
    for i in prange(n0):
        t = 0.0
        for j in range(n1):
            for k in range(n2):
                u, v = a[i, j, k], b[i, j, k]
                t += c[k] * (u.real * v.real + u.imag * v.imag)
        s += t
    return s


@njit(parallel=True, cache=True, fastmath=False)
def add_data_term(ap, scale_d, spectrum, p, c):  # pragma: no cover - compiled
    """``ap += scale_d * spectrum`` in place; returns ``<p, ap>`` (half-spectrum inner product)."""
    n0, n1, n2 = ap.shape
    s = 0.0
    for i in prange(n0):
        t = 0.0
        for j in range(n1):
            for k in range(n2):
                v = ap[i, j, k] + scale_d[i, j, k] * spectrum[i, j, k]
                ap[i, j, k] = v
                u = p[i, j, k]
                t += c[k] * (u.real * v.real + u.imag * v.imag)
        s += t
    return s


@njit(parallel=True, cache=True, fastmath=False)
def step(x, r, p, ap, alpha, inv_pk, use_pk, z, c):  # pragma: no cover - compiled
    """``x += alpha p``, ``r -= alpha ap``, ``z = inv_pk r`` in place; returns ``(<r, r>, <r, z>)``.

    With ``use_pk`` False there is no preconditioner (``z`` is a copy of ``r``; ``inv_pk`` unused).
    """
    n0, n1, n2 = x.shape
    plain = not use_pk
    rr = 0.0
    rz = 0.0
    for i in prange(n0):
        trr = 0.0
        trz = 0.0
        for j in range(n1):
            for k in range(n2):
                x[i, j, k] += alpha * p[i, j, k]
                v = r[i, j, k] - alpha * ap[i, j, k]
                r[i, j, k] = v
                w = v if plain else inv_pk[i, j, k] * v
                z[i, j, k] = w
                a2 = v.real * v.real + v.imag * v.imag
                trr += c[k] * a2
                trz += c[k] * (v.real * w.real + v.imag * w.imag)
        rr += trr
        rz += trz
    return rr, rz


@njit(parallel=True, cache=True, fastmath=False)
def next_direction(p, z, beta, d, dp, p_copy):  # pragma: no cover - compiled
    """``p = z + beta p`` in place, ``dp = d p`` (the dipole field's spectrum of the new direction)
    and ``p_copy = p`` (for an inverse FFT that may overwrite its input)."""
    n0, n1, n2 = p.shape
    for i in prange(n0):
        for j in range(n1):
            for k in range(n2):
                v = z[i, j, k] + beta * p[i, j, k]
                p[i, j, k] = v
                dp[i, j, k] = d[i, j, k] * v
                p_copy[i, j, k] = v


@njit(parallel=True, cache=True, fastmath=False)
def multiply_in_place(x, w):  # pragma: no cover - compiled
    """``x *= w`` for two float32 volumes of the same shape (image space; numpy's single-threaded
    product took 7 ms of each CG iteration on the paper's grid)."""
    n0, n1, n2 = x.shape
    for i in prange(n0):
        for j in range(n1):
            for k in range(n2):
                x[i, j, k] *= w[i, j, k]

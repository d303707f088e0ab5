"""Quality-guided region-growing phase unwrapping (in the spirit of ROMEO, Dymerska et al., MRM 2021).

Every pair of 6-neighbours inside the mask is an edge with a quality in (0, 1]: the product of

* the phase coherence ``1 - |wrap(psi_i - psi_j)| / pi`` (steep, aliased steps are unreliable),
* the magnitude coherence ``(min(m_i, m_j) / max(m_i, m_j))^2`` (edges across tissue boundaries),
* the magnitude weight ``min(1, min(m_i, m_j) / m_ref)`` with ``m_ref`` the median magnitude in
  the mask (dark, noisy voxels).

Qualities are quantised into 255 levels. From a seed voxel of high quality the unwrapped region
grows by always taking the best edge on its border (a bucket priority queue, O(number of
voxels)); the voxel across it gets the multiple of 2 pi that brings it closest to the voxel it is
reached from. Unreliable edges are thus crossed last, and an error there stays local instead of
spreading through the volume.

Unlike the Laplacian method (:mod:`~napari_qsm_ms.qsm.unwrap`), the result differs from the
wrapped phase by an exact multiple of 2 pi at every voxel, so it is the true phase wherever the
phase is sampled finely enough (steps below pi per voxel), with no sine-of-the-step error near air
cavities at 7 T.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from scipy import ndimage as ndi

from ..errors import ParameterError
from ..progress import ProgressCallback, report
from .unwrap import wrapped_step

N_LEVELS = 255
"""Quality levels of the bucket queue (level 0 means: no edge)."""

TWO_PI = 2.0 * np.pi


def edge_qualities(psi: np.ndarray, magnitude: np.ndarray | None, mask: np.ndarray,
                   core: np.ndarray | None = None) -> np.ndarray:
    """Quantised quality of the edge from each voxel to its next neighbour along each axis.

    Parameters
    ----------
    psi : ndarray, float32, shape (nx, ny, nz)
        Wrapped phase, radians.
    magnitude : ndarray, shape (nx, ny, nz), optional
        GRE magnitude (any scale); None uses the phase coherence alone.
    mask : ndarray of bool
        Voxels to unwrap; edges with an end outside it get quality 0.
    core : ndarray of bool, optional
        Edges between two core voxels are ranked above all others: levels 128..255 for them,
        1..127 for the rest, the order kept within each group (the quality halved).

    Returns
    -------
    ndarray, uint8, shape (3, nx, ny, nz)
        ``q[a, i, j, k]`` is the quality (1..255, 0: no edge) between the voxel and its neighbour
        at +1 along axis ``a``; the last row along each axis is 0.
    """
    psi = np.ascontiguousarray(psi, dtype=np.float32)
    mask = np.ascontiguousarray(mask, dtype=bool)
    if magnitude is None:
        mag = np.ones(psi.shape, dtype=np.float32)
        m_ref = 0.0  # no magnitude terms
    else:
        mag = np.ascontiguousarray(magnitude, dtype=np.float32)
        inside = mag[mask]
        inside = inside[inside > 0]
        m_ref = float(np.median(inside)) if inside.size else 1.0
    q = np.zeros((3,) + psi.shape, dtype=np.uint8)
    use_core = core is not None
    core = np.ascontiguousarray(core if use_core else mask, dtype=bool)
    _qualities(psi, mag, mask, np.float32(m_ref), q, core, use_core)
    return q


@njit(parallel=True, cache=True, fastmath=True)
def _qualities(psi, mag, mask, m_ref, q, core, use_core):  # pragma: no cover - compiled
    nx, ny, nz = psi.shape
    pi = np.float32(np.pi)
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                if not mask[i, j, k]:
                    continue
                for ax in range(3):
                    if ax == 0:
                        if i == nx - 1 or not mask[i + 1, j, k]:
                            continue
                        p2, m2, c2 = psi[i + 1, j, k], mag[i + 1, j, k], core[i + 1, j, k]
                    elif ax == 1:
                        if j == ny - 1 or not mask[i, j + 1, k]:
                            continue
                        p2, m2, c2 = psi[i, j + 1, k], mag[i, j + 1, k], core[i, j + 1, k]
                    else:
                        if k == nz - 1 or not mask[i, j, k + 1]:
                            continue
                        p2, m2, c2 = psi[i, j, k + 1], mag[i, j, k + 1], core[i, j, k + 1]
                    quality = 1.0 - abs(wrapped_step(p2 - psi[i, j, k])) / pi
                    if m_ref > 0:
                        m1 = mag[i, j, k]
                        small, large = min(m1, m2), max(m1, m2)
                        coherence = (small / large) ** 2 if large > 0 else 0.0
                        quality *= coherence * min(1.0, small / m_ref)
                    level = max(1, int(np.ceil(min(max(quality, 0.0), 1.0) * N_LEVELS)))
                    if use_core:  # core edges 128..255, the others 1..127
                        level = min(127, (level + 1) // 2) + (128 if core[i, j, k] and c2 else 0)
                    q[ax, i, j, k] = level  # an edge inside the mask is always crossable, if last


@njit(cache=True)
def _grow(psi, q, seed, visited, out):  # pragma: no cover - compiled
    """Unwrap the region 6-connected to ``seed`` (flat index) in place; returns voxels reached."""
    nx, ny, nz = psi.shape
    n = nx * ny * nz
    stride = (ny * nz, nz, 1)
    psi_f = psi.ravel()
    out_f = out.ravel()
    vis_f = visited.ravel()
    q_f = q.reshape(3, n)
    cap = 1024
    val = np.empty(cap, dtype=np.int64)
    nxt = np.empty(cap, dtype=np.int64)
    head = np.full(N_LEVELS + 1, -1, dtype=np.int64)
    free = -1
    top = 0
    best = 0
    reached = 1
    vis_f[seed] = True
    out_f[seed] = psi_f[seed]
    v = seed
    while True:
        # push the edges from v to its unvisited neighbours
        for d in range(6):
            ax = d // 2
            s = stride[ax]
            if d % 2 == 0:
                u = v + s
                if u >= n:
                    continue
                level = q_f[ax, v]
            else:
                u = v - s
                if u < 0:
                    continue
                level = q_f[ax, u]
            if level == 0 or vis_f[u]:
                continue
            if free >= 0:
                slot = free
                free = nxt[slot]
            else:
                if top == cap:
                    cap *= 2
                    val2 = np.empty(cap, dtype=np.int64)
                    nxt2 = np.empty(cap, dtype=np.int64)
                    val2[:top] = val[:top]
                    nxt2[:top] = nxt[:top]
                    val = val2
                    nxt = nxt2
                slot = top
                top += 1
            val[slot] = u * 8 + d
            nxt[slot] = head[level]
            head[level] = slot
            if level > best:
                best = level
        # pop the best edge whose far end is still unvisited
        v = -1
        while best > 0:
            slot = head[best]
            if slot < 0:
                best -= 1
                continue
            head[best] = nxt[slot]
            nxt[slot] = free
            free = slot
            code = val[slot]
            u = code // 8
            if vis_f[u]:
                continue
            d = code % 8
            s = stride[d // 2]
            src = u - s if d % 2 == 0 else u + s
            k = np.floor((out_f[src] - psi_f[u]) / TWO_PI + 0.5)
            out_f[u] = psi_f[u] + TWO_PI * k
            vis_f[u] = True
            reached += 1
            v = u
            break
        if v < 0:
            return reached


def _seed_scores(q: np.ndarray) -> np.ndarray:
    """Summed quality of the six edges of every voxel (int32): seeds are taken where it is highest."""
    score = q.sum(axis=0, dtype=np.int32)
    score[1:] += q[0, :-1]
    score[:, 1:] += q[1, :, :-1]
    score[:, :, 1:] += q[2, :, :, :-1]
    return score


def unwrap_region_growing(
    phase_rad: np.ndarray,
    mask: np.ndarray,
    magnitude: np.ndarray | None = None,
    *,
    core: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Unwrap a wrapped phase inside ``mask`` by quality-guided region growing.

    Parameters
    ----------
    phase_rad : ndarray, shape (nx, ny, nz)
        Wrapped phase, radians.
    mask : ndarray of bool, same shape
        Voxels to unwrap (the brain or head mask). Each 6-connected component is grown from its
        own seed; components other than the largest are then shifted by the multiple of 2 pi that
        brings their mean closest to the largest one's mean.
    magnitude : ndarray, same shape, optional
        GRE magnitude, used in the edge qualities. Strongly recommended: without it, an aliased
        dark region (signal dropout near air) is crossed as readily as good tissue and its
        errors can spread.
    core : ndarray of bool, same shape, optional
        A connected part of the mask to unwrap first, through its own edges only (the pipeline's
        data region, where every wrapped step is small): the seed is taken in it and every edge
        inside it is crossed before any other (:func:`edge_qualities`). Within such a core the result
        then no longer depends on the order of growth.
    progress : callable, optional
        Progress callback.

    Returns
    -------
    ndarray, float32
        Unwrapped phase (radians) in ``mask``, 0 outside. ``(result - phase_rad) / (2 pi)`` is an
        integer at every voxel of the mask; the largest component's mean lies within pi of 0.

    Raises
    ------
    ParameterError
        If the shapes differ, the mask is empty, or the phase or magnitude is not finite in the mask.
    """
    psi = np.ascontiguousarray(phase_rad, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    if psi.ndim != 3 or mask.shape != psi.shape:
        raise ParameterError(f"phase {psi.shape} and mask {mask.shape} must be 3-D of one shape")
    if magnitude is not None and np.shape(magnitude) != psi.shape:
        raise ParameterError(f"magnitude {np.shape(magnitude)} differs from phase {psi.shape}")
    if not mask.any():
        raise ParameterError("the mask to unwrap in is empty")
    if not np.isfinite(psi[mask]).all():
        raise ParameterError("the phase has NaN or infinite values inside the mask")
    if magnitude is not None and not np.isfinite(np.asarray(magnitude)[mask]).all():
        raise ParameterError("the magnitude has NaN or infinite values inside the mask")
    report(progress, 0.0, "region-growing unwrapping: edge qualities")
    if core is not None and np.shape(core) != psi.shape:
        raise ParameterError(f"core {np.shape(core)} differs from phase {psi.shape}")
    q = np.ascontiguousarray(edge_qualities(psi, magnitude, mask, core))
    score = _seed_scores(q)
    labels, n_comp = ndi.label(mask)
    boxes = ndi.find_objects(labels)
    sizes = np.bincount(labels.ravel())
    order = np.argsort(sizes[1:])[::-1] + 1
    out = np.zeros(psi.shape, dtype=np.float64)
    visited = np.zeros(psi.shape, dtype=bool)
    report(progress, 0.2, "region-growing unwrapping")
    reference_mean = None
    for rank, lab in enumerate(order):
        box = boxes[lab - 1]
        comp = labels[box] == lab
        local = np.where(comp, score[box], -1)
        seed = np.ravel_multi_index(
            tuple(int(i) + sl.start for i, sl in zip(np.unravel_index(int(np.argmax(local)), local.shape), box)),
            psi.shape)
        _grow(psi, q, seed, visited, out)
        mean = float(out[box][comp].mean())
        if reference_mean is None:
            shift = -TWO_PI * np.round(mean / TWO_PI)
            reference_mean = mean + shift
        else:
            shift = TWO_PI * np.round((reference_mean - mean) / TWO_PI)
        out[box][comp] += shift
        report(progress, 0.2 + 0.8 * (rank + 1) / n_comp, "region-growing unwrapping")
    return out.astype(np.float32)

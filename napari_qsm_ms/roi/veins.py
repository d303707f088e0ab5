"""Central vein sign measured on the T2* magnitude: vesselness inside the lesion and its centre.

Pure numpy/scipy (docs/markers.md). Veins are dark on T2*-weighted magnitude. For each lesion:

1. the magnitude around the lesion is divided by its median (contrast is relative) and a 3-D
   Frangi vesselness for **dark** tubes is computed with the true (anisotropic) voxel size:
   Gaussian scale ``sigma`` in mm, scale-normalised Hessian ``sigma**2 H`` in mm, eigenvalues
   ``|l1| <= |l2| <= |l3|``, zero unless ``l2, l3 > 0`` (a valley across the tube), else
   ``(1 - exp(-Ra^2 / 2a^2)) exp(-Rb^2 / 2b^2) (1 - exp(-S^2 / 2c^2))`` with ``Ra = |l2/l3|``,
   ``Rb = |l1| / sqrt(|l2 l3|)``, ``S = ||l||`` (Frangi et al. 1998), maximum over the scales;
2. the lesion's **centre** (where the vesselness is computed) is the set of its voxels at least
   half as deep (3-D distance to the
   boundary) as its deepest voxel -- central "regardless of the lesion's shape", as the NAIMS
   criteria put it;
3. on every slice (along each array axis in turn) the largest vesselness of the centre is taken;
   a vein *crosses the centre on consecutive slices* when two neighbouring slices both reach
   ``VESSEL_THRESHOLD``. The **vein score** is the best, over axes and pairs of neighbouring
   slices, of the smaller of the two (a continuous measure that ranks lesions); ``vein_slices``
   is the longest run of consecutive slices reaching the threshold along the best axis.

A lesion is eligible for the central vein sign when it is at least ``MIN_CVS_EXTENT_MM`` across
in two perpendicular directions (Sati et al. 2016; here along two array axes, :func:`cvs_eligible`);
``cvs_suggested`` is eligible and ``vein_score >= VESSEL_THRESHOLD``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..errors import ParameterError
from .lesions import check_lesions, check_voxel_size

VEIN_SIGMAS_MM = (0.4, 0.7)
FRANGI_ALPHA = 0.5
FRANGI_BETA = 0.5
FRANGI_C = 0.03
"""Structureness scale of the vesselness, in units of the relative (median-normalised) magnitude."""
VESSEL_THRESHOLD = 0.15
CENTRE_DEPTH_FRACTION = 0.5
MIN_CVS_EXTENT_MM = 3.0
MARGIN_MM = 2.5
"""Context around a lesion for the Gaussian derivatives (> 3 x the largest scale)."""

VEIN_COLUMNS = ["lesion_id", "vesselness_max", "vein_score", "vein_slices", "vein_axis", "cvs_eligible",
                "cvs_suggested"]


def dark_vesselness(
    image: np.ndarray,
    voxel_size_mm,
    *,
    sigmas_mm=VEIN_SIGMAS_MM,
    where: np.ndarray | None = None,
    c: float = FRANGI_C,
) -> np.ndarray:
    """Frangi vesselness (0..1) of dark tubes, with anisotropic voxels; zero outside ``where``.

    Examples
    --------
    >>> img = np.ones((21, 21, 21), np.float32); img[10, 10, :] = 0.3   # a dark line along axis 2
    >>> v = dark_vesselness(img, (1, 1, 1))
    >>> bool(v[10, 10, 10] > 0.5), bool(v[3, 3, 10] < 0.01)
    (True, True)
    """
    img = np.asarray(image, dtype=np.float32)
    vs = check_voxel_size(voxel_size_mm, img.ndim)
    sel = np.ones(img.shape, bool) if where is None else np.asarray(where, bool)
    out = np.zeros(img.shape, np.float32)
    if not sel.any():
        return out
    pts = np.nonzero(sel)
    for sigma in sigmas_mm:
        sm = np.pad(ndi.gaussian_filter(img, sigma=float(sigma) / vs, mode="nearest"), 2, mode="edge")
        h = _hessian_at(sm, pts, vs) * sigma**2
        lam = np.linalg.eigvalsh(h)
        order = np.argsort(np.abs(lam), axis=1)
        lam = np.take_along_axis(lam, order, axis=1)
        l1, l2, l3 = lam[:, 0], lam[:, 1], lam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            ra = np.abs(l2) / np.abs(l3)
            rb = np.abs(l1) / np.sqrt(np.abs(l2 * l3))
        s2 = (lam**2).sum(axis=1)
        v = (
            (1 - np.exp(-(ra**2) / (2 * FRANGI_ALPHA**2)))
            * np.exp(-(rb**2) / (2 * FRANGI_BETA**2))
            * (1 - np.exp(-s2 / (2 * c**2)))
        )
        v = np.where((l2 > 0) & (l3 > 0) & np.isfinite(v), v, 0.0)
        out[sel] = np.maximum(out[sel], v.astype(np.float32))
    return out


def _hessian_at(padded: np.ndarray, pts: tuple, vs: np.ndarray) -> np.ndarray:
    """Hessian (n, 3, 3) at the voxels ``pts`` of an array padded by two: central differences of
    central differences (the stencils of ``np.gradient`` applied twice, which smooth a little)."""
    strides = np.array(padded.strides) // padded.itemsize
    flat = padded.ravel()
    at0 = sum((c + 2) * st for c, st in zip(pts, strides))
    f0 = flat[at0]
    h = np.empty((at0.size, 3, 3), np.float64)
    for i in range(3):
        h[:, i, i] = (flat[at0 + 2 * strides[i]] - 2 * f0 + flat[at0 - 2 * strides[i]]) / (4 * vs[i] ** 2)
        for j in range(i + 1, 3):
            si, sj = strides[i], strides[j]
            mixed = flat[at0 + si + sj] - flat[at0 + si - sj] - flat[at0 - si + sj] + flat[at0 - si - sj]
            h[:, i, j] = h[:, j, i] = mixed / (4 * vs[i] * vs[j])
    return h


def lesion_centre(lesion: np.ndarray, voxel_size_mm) -> np.ndarray:
    """Voxels of the lesion at least :data:`CENTRE_DEPTH_FRACTION` as deep as its deepest voxel."""
    les = np.asarray(lesion, bool)
    out = np.zeros(les.shape, bool)
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in ndi.find_objects(les.astype(np.uint8))[0])
    depth = ndi.distance_transform_edt(les[box], sampling=check_voxel_size(voxel_size_mm))
    out[box] = les[box] & (depth >= CENTRE_DEPTH_FRACTION * depth.max())
    return out


def _axis_runs(per_slice: np.ndarray) -> tuple[float, int]:
    """(best min over two neighbouring slices, longest run at or above the threshold)."""
    if per_slice.size < 2:
        pair = 0.0
    else:
        pair = float(np.max(np.minimum(per_slice[:-1], per_slice[1:])))
    run = best = 0
    for v in per_slice:
        run = run + 1 if v >= VESSEL_THRESHOLD else 0
        best = max(best, run)
    return pair, best


def lesion_vein(magnitude: np.ndarray, lesion: np.ndarray, voxel_size_mm, *, valid=None) -> dict:
    """Vein measures of ONE lesion (boolean mask) on a (cropped) T2* magnitude (see module doc)."""
    mag = np.asarray(magnitude, dtype=np.float32)
    les = np.asarray(lesion, bool)
    vs = check_voxel_size(voxel_size_mm)
    around = ndi.binary_dilation(les, iterations=2) if valid is None else (np.asarray(valid, bool) | les)
    scale = float(np.median(mag[around & (mag > 0)])) if np.any(around & (mag > 0)) else 0.0
    if scale <= 0:
        return {"vesselness_max": float("nan"), "vein_score": float("nan"), "vein_slices": 0, "vein_axis": -1}
    centre = lesion_centre(les, vs)
    pad = np.ceil(3.0 * max(VEIN_SIGMAS_MM) / vs).astype(int) + 2
    sub = tuple(
        slice(max(s.start - p, 0), min(s.stop + p, n))
        for s, p, n in zip(ndi.find_objects(centre.astype(np.uint8))[0], pad, centre.shape)
    )
    v = np.zeros(les.shape, np.float32)
    v[sub] = dark_vesselness(mag[sub] / scale, vs, where=centre[sub])
    best = (-1.0, 0, -1)
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        has = centre.any(axis=other)
        per_slice = np.where(centre, v, 0.0).max(axis=other)[has]
        pair, run = _axis_runs(per_slice)
        if pair > best[0]:
            best = (pair, run, axis)
    return {
        "vesselness_max": float(v[centre].max()),
        "vein_score": best[0],
        "vein_slices": int(best[1]),
        "vein_axis": int(best[2]),
    }


def cvs_eligible(box: tuple[slice, ...], voxel_size_mm) -> bool:
    """At least :data:`MIN_CVS_EXTENT_MM` across along two array axes (the lesion's bounding box).

    Examples
    --------
    >>> cvs_eligible((slice(0, 7), slice(0, 7), slice(0, 2)), (0.47, 0.47, 1.0))
    True
    """
    extents = sorted((s.stop - s.start) * float(v) for s, v in zip(box, voxel_size_mm))
    return bool(extents[-2] >= MIN_CVS_EXTENT_MM)


def vein_metrics(
    magnitude: np.ndarray, lesions: np.ndarray, voxel_size_mm, *, valid: np.ndarray | None = None
) -> pd.DataFrame:
    """Vein measures of every lesion (one row per lesion id, columns :data:`VEIN_COLUMNS`).

    Parameters
    ----------
    magnitude : ndarray, 3-D
        T2*-weighted magnitude (any units; veins dark).
    lesions : ndarray of int, 3-D
    voxel_size_mm : 3 floats
    valid : ndarray of bool, optional
        Voxels whose median normalises the magnitude around each lesion (e.g. the brain).
    """
    labels = check_lesions(lesions)
    mag = np.asarray(magnitude, dtype=np.float32)
    if mag.shape != labels.shape:
        raise ParameterError(f"magnitude shape {mag.shape} differs from lesions shape {labels.shape}")
    vs = check_voxel_size(voxel_size_mm)
    margin = np.ceil(MARGIN_MM / vs).astype(int) + 1
    rows = []
    for lid, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        box = tuple(
            slice(max(s.start - int(m), 0), min(s.stop + int(m), n))
            for s, m, n in zip(sl, margin, labels.shape)
        )
        lab = labels[box]
        les = lab == lid
        ok = None if valid is None else (np.asarray(valid, bool)[box] & (lab == 0))
        m = lesion_vein(mag[box], les, vs, valid=ok)
        rows.append({"lesion_id": lid, **m, "cvs_eligible": cvs_eligible(sl, vs)})
    table = pd.DataFrame(rows, columns=VEIN_COLUMNS[:-1])
    table["cvs_suggested"] = table["cvs_eligible"] & (table["vein_score"] >= VESSEL_THRESHOLD)
    return table

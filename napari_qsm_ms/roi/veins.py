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

4. the **veins through the lesion** (``n_veins``): the vesselness is also computed on the whole
   lesion; its voxels at or above ``VESSEL_THRESHOLD`` are grouped into 3-D connected components
   (26-neighbourhood) and a component counts as a vein when it runs at least
   ``MIN_VEIN_LENGTH_MM`` along one axis (whole voxels, i.e. over consecutive slices).

A lesion is **excluded** from the central vein sign by the measured NAIMS exclusions (Sati et
al., Nat Rev Neurol 2016;12:714-722; :func:`cvs_exclusions`): ``small`` -- under
``MIN_CVS_EXTENT_MM`` across along two array axes (:func:`cvs_eligible`); ``confluent`` -- it
touches another labelled lesion (26-neighbourhood) or comes within ``gap_mm`` of one
(:func:`confluent_lesions`); ``multiple_veins`` -- two or more veins run through it
(``n_veins >= 2``). "Poorly visible" is not measured (the raters' round has it).
``cvs_eligible`` is "not excluded"; ``cvs_suggested`` is eligible and
``vein_score >= VESSEL_THRESHOLD``.
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
MIN_VEIN_LENGTH_MM = 2.0
"""A connected dark-vessel component inside a lesion counts as a vein when it runs at least this
far (whole voxels) along one array axis: two 1 mm slices, or 5 voxels of 0.47 mm in-plane."""
CONFLUENT_GAP_MM = 0.0
"""Default extra gap (mm) within which another lesion makes a lesion confluent; 0: only lesions
that touch (share a face, an edge or a corner) are confluent."""
#: Measured NAIMS exclusions, in the order they are reported (names as in rating.markers).
CVS_MEASURED_EXCLUSIONS = ("small", "confluent", "multiple_veins")

EXCLUSION_COLUMNS = ["lesion_id", "confluent_with", "cvs_excluded", "cvs_exclusion_reason", "cvs_eligible"]
VEIN_COLUMNS = ["lesion_id", "vesselness_max", "vein_score", "vein_slices", "vein_axis", "n_veins",
                *EXCLUSION_COLUMNS[1:], "cvs_suggested"]


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
    # the stencils reach two voxels: pad only when a requested voxel is that close to the border
    inner = all(p.min() >= 2 and p.max() < n - 2 for p, n in zip(pts, img.shape))
    best = np.zeros(pts[0].size, np.float64)
    for sigma in sigmas_mm:
        sm = ndi.gaussian_filter(img, sigma=float(sigma) / vs, mode="nearest")
        sm = sm if inner else np.pad(sm, 2, mode="edge")
        lam = symmetric_eigenvalues_3x3(_hessian_at(sm, pts, vs, offset=0 if inner else 2) * sigma**2)
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
        best = np.maximum(best, np.where((l2 > 0) & (l3 > 0) & np.isfinite(v), v, 0.0))
    out[pts] = best
    return out


def symmetric_eigenvalues_3x3(h: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending) of a stack ``(n, 3, 3)`` of real symmetric matrices, in closed form.

    The trigonometric solution of the characteristic cubic (Smith, Commun ACM 1961;4:168), about
    ten times faster than ``np.linalg.eigvalsh`` on many small matrices; equal to it within
    rounding (tested).

    Examples
    --------
    >>> np.round(symmetric_eigenvalues_3x3(np.diag([3.0, -1.0, 2.0])[None]), 12).tolist()
    [[-1.0, 2.0, 3.0]]
    """
    h = np.asarray(h, dtype=np.float64)
    a, b, cc = h[:, 0, 0], h[:, 1, 1], h[:, 2, 2]
    d, e, f = h[:, 0, 1], h[:, 0, 2], h[:, 1, 2]
    q = (a + b + cc) / 3.0
    p1 = d * d + e * e + f * f
    p2 = (a - q) ** 2 + (b - q) ** 2 + (cc - q) ** 2 + 2.0 * p1
    p = np.sqrt(p2 / 6.0)
    safe = np.where(p > 0, p, 1.0)
    ba, bb, bc = (a - q) / safe, (b - q) / safe, (cc - q) / safe
    bd, be, bf = d / safe, e / safe, f / safe
    det = ba * (bb * bc - bf * bf) - bd * (bd * bc - bf * be) + be * (bd * bf - bb * be)
    phi = np.arccos(np.clip(det / 2.0, -1.0, 1.0)) / 3.0
    hi = q + 2.0 * p * np.cos(phi)
    lo = q + 2.0 * p * np.cos(phi + 2.0 * np.pi / 3.0)
    mid = 3.0 * q - hi - lo
    return np.stack([lo, mid, hi], axis=1)


def _hessian_at(padded: np.ndarray, pts: tuple, vs: np.ndarray, offset: int = 2) -> np.ndarray:
    """Hessian (n, 3, 3) at the voxels ``pts`` (shifted by ``offset``, the padding) of an array
    whose stencils stay inside: central differences of central differences (the stencils of
    ``np.gradient`` applied twice, which smooth a little)."""
    strides = np.array(padded.strides) // padded.itemsize
    flat = padded.ravel()
    at0 = sum((c + offset) * st for c, st in zip(pts, strides))
    f0 = flat[at0]
    h = np.empty((at0.size, 3, 3), np.float64)
    for i in range(3):
        h[:, i, i] = (flat[at0 + 2 * strides[i]] - 2 * f0 + flat[at0 - 2 * strides[i]]) / (4 * vs[i] ** 2)
        for j in range(i + 1, 3):
            si, sj = strides[i], strides[j]
            mixed = flat[at0 + si + sj] - flat[at0 + si - sj] - flat[at0 - si + sj] + flat[at0 - si - sj]
            h[:, i, j] = h[:, j, i] = mixed / (4 * vs[i] * vs[j])
    return h


def lesion_centre(lesion: np.ndarray, voxel_size_mm, *, bbox: tuple[slice, ...] | None = None) -> np.ndarray:
    """Voxels of the lesion at least :data:`CENTRE_DEPTH_FRACTION` as deep as its deepest voxel
    (``bbox``: the lesion's bounding box, when known)."""
    les = np.asarray(lesion, bool)
    out = np.zeros(les.shape, bool)
    bbox = ndi.find_objects(les.astype(np.uint8))[0] if bbox is None else bbox
    box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in bbox)
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


def count_veins(vesselness: np.ndarray, lesion: np.ndarray, voxel_size_mm) -> int:
    """Distinct veins through a lesion: connected components (26-neighbourhood) of its voxels with
    vesselness at or above :data:`VESSEL_THRESHOLD` that run at least :data:`MIN_VEIN_LENGTH_MM`
    along one array axis (whole voxels).

    Examples
    --------
    >>> v = np.zeros((9, 9, 9)); les = np.ones(v.shape, bool)
    >>> v[2, 2, 1:8] = v[6, 6, 1:8] = 0.5; v[4, 6, 4] = 0.9   # two veins and one speck
    >>> count_veins(v, les, (1, 1, 1))
    2
    """
    vs = check_voxel_size(voxel_size_mm)
    hot = np.asarray(lesion, bool) & (np.asarray(vesselness) >= VESSEL_THRESHOLD)
    comp, n = ndi.label(hot, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return 0
    count = 0
    for sl in ndi.find_objects(comp):
        extent = np.array([s.stop - s.start for s in sl]) * vs
        count += bool(extent.max() >= MIN_VEIN_LENGTH_MM - 1e-6)
    return count


def lesion_vein(magnitude: np.ndarray, lesion: np.ndarray, voxel_size_mm, *, valid=None) -> dict:
    """Vein measures of ONE lesion (boolean mask) on a (cropped) T2* magnitude (see module doc).

    The magnitude is divided by its median over ``valid`` and the lesion (default: the whole
    crop, i.e. the lesion and the tissue around it)."""
    mag = np.asarray(magnitude, dtype=np.float32)
    les = np.asarray(lesion, bool)
    vs = check_voxel_size(voxel_size_mm)
    around = mag[mag > 0] if valid is None else mag[(np.asarray(valid, bool) | les) & (mag > 0)]
    scale = float(np.median(around)) if around.size else 0.0
    if scale <= 0:
        return {"vesselness_max": float("nan"), "vein_score": float("nan"), "vein_slices": 0, "vein_axis": -1,
                "n_veins": 0}
    bbox = ndi.find_objects(les.astype(np.uint8))[0]
    centre = lesion_centre(les, vs, bbox=bbox)
    pad = np.ceil(3.0 * max(VEIN_SIGMAS_MM) / vs).astype(int) + 2
    sub = tuple(slice(max(s.start - p, 0), min(s.stop + p, n)) for s, p, n in zip(bbox, pad, les.shape))
    v = np.zeros(les.shape, np.float32)
    v[sub] = dark_vesselness(mag[sub] / scale, vs, where=les[sub])  # the whole lesion, once
    best = (-1.0, 0, -1)
    vc = np.where(centre, v, 0.0)
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        has = centre.any(axis=other)
        per_slice = vc.max(axis=other)[has]
        pair, run = _axis_runs(per_slice)
        if pair > best[0]:
            best = (pair, run, axis)
    return {
        "vesselness_max": float(v[centre].max()),
        "vein_score": best[0],
        "vein_slices": int(best[1]),
        "vein_axis": int(best[2]),
        "n_veins": count_veins(v[sub], les[sub], vs),
    }


def cvs_eligible(box: tuple[slice, ...], voxel_size_mm) -> bool:
    """The NAIMS size criterion: at least :data:`MIN_CVS_EXTENT_MM` across along two array axes
    (the lesion's bounding box). The other exclusions are in :func:`cvs_exclusions`.

    Examples
    --------
    >>> cvs_eligible((slice(0, 7), slice(0, 7), slice(0, 2)), (0.47, 0.47, 1.0))
    True
    """
    extents = sorted((s.stop - s.start) * float(v) for s, v in zip(box, voxel_size_mm))
    return bool(extents[-2] >= MIN_CVS_EXTENT_MM)


def confluent_lesions(
    labels: np.ndarray, voxel_size_mm, *, gap_mm: float = CONFLUENT_GAP_MM, objects: list | None = None
) -> dict:
    """``{lesion id: sorted ids of the other lesions it is confluent with}`` (every lesion a key).

    Two lesions are confluent when a voxel of one touches a voxel of the other (shares a face, an
    edge or a corner: lesions a rater split out of one confluent region) or, with ``gap_mm > 0``,
    when their voxel centres come within ``gap_mm``. NAIMS (Sati et al. 2016) excludes lesions
    that merge with another lesion from the central vein sign. ``objects``: the labels'
    ``scipy.ndimage.find_objects``, when the caller has it.

    Examples
    --------
    >>> lab = np.zeros((1, 3, 9), int); lab[0, 1, 1:4] = 1; lab[0, 1, 4:6] = 2; lab[0, 1, 7:9] = 3
    >>> confluent_lesions(lab, (1, 1, 1))
    {1: [2], 2: [1], 3: []}
    >>> confluent_lesions(lab, (1, 1, 1), gap_mm=2.0)[3]
    [2]
    """
    labels = check_lesions(labels)
    vs = check_voxel_size(voxel_size_mm)
    if gap_mm < 0 or not np.isfinite(gap_mm):
        raise ParameterError(f"confluent gap must be a finite distance >= 0 mm, got {gap_mm}")
    margin = np.maximum(np.ceil(gap_mm / vs).astype(int), 1) + 1
    out = {}
    for lid, sl in enumerate(ndi.find_objects(labels) if objects is None else objects, start=1):
        if sl is None:
            continue
        box = tuple(slice(max(s.start - int(m), 0), min(s.stop + int(m), n))
                    for s, m, n in zip(sl, margin, labels.shape))
        lab = labels[box]
        les = lab == lid
        near = ndi.binary_dilation(les, structure=np.ones((3, 3, 3), bool))
        if gap_mm > 0:
            near |= ndi.distance_transform_edt(~les, sampling=vs) <= gap_mm
        others = lab[near & (lab > 0) & ~les]
        out[lid] = sorted(int(i) for i in np.unique(others))
    return out


def cvs_exclusions(
    labels: np.ndarray,
    voxel_size_mm,
    *,
    n_veins: dict | None = None,
    gap_mm: float = CONFLUENT_GAP_MM,
    objects: list | None = None,
) -> pd.DataFrame:
    """The measured NAIMS exclusions of every lesion (columns :data:`EXCLUSION_COLUMNS`).

    ``cvs_exclusion_reason`` joins the reasons that apply (:data:`CVS_MEASURED_EXCLUSIONS`, in
    that order) with ``;``; ``n_veins`` (``{id: count}``, from :func:`lesion_vein`) gives
    ``multiple_veins`` when 2 or more; ``confluent_with`` lists the other lesions' ids.
    """
    labels = check_lesions(labels)
    vs = check_voxel_size(voxel_size_mm)
    objects = ndi.find_objects(labels) if objects is None else objects
    touching = confluent_lesions(labels, vs, gap_mm=gap_mm, objects=objects)
    rows = []
    for lid, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        reasons = []
        if not cvs_eligible(sl, vs):
            reasons.append("small")
        if touching[lid]:
            reasons.append("confluent")
        if n_veins is not None and n_veins.get(lid, 0) >= 2:
            reasons.append("multiple_veins")
        rows.append({"lesion_id": lid, "confluent_with": ",".join(str(i) for i in touching[lid]),
                     "cvs_excluded": bool(reasons), "cvs_exclusion_reason": ";".join(reasons),
                     "cvs_eligible": not reasons})
    return pd.DataFrame(rows, columns=EXCLUSION_COLUMNS)


def vein_metrics(
    magnitude: np.ndarray,
    lesions: np.ndarray,
    voxel_size_mm,
    *,
    valid: np.ndarray | None = None,
    gap_mm: float = CONFLUENT_GAP_MM,
) -> pd.DataFrame:
    """Vein measures and the measured NAIMS exclusions of every lesion (columns :data:`VEIN_COLUMNS`).

    Parameters
    ----------
    magnitude : ndarray, 3-D
        T2*-weighted magnitude (any units; veins dark).
    lesions : ndarray of int, 3-D
    voxel_size_mm : 3 floats
    valid : ndarray of bool, optional
        Voxels whose median normalises the magnitude around each lesion (e.g. the brain).
    gap_mm : float
        Confluent lesions: also those within this distance (:func:`confluent_lesions`).
    """
    labels = check_lesions(lesions)
    mag = np.asarray(magnitude, dtype=np.float32)
    if mag.shape != labels.shape:
        raise ParameterError(f"magnitude shape {mag.shape} differs from lesions shape {labels.shape}")
    vs = check_voxel_size(voxel_size_mm)
    margin = np.ceil(MARGIN_MM / vs).astype(int) + 1
    valid_arr = None if valid is None else np.asarray(valid, bool)
    objects = ndi.find_objects(labels)
    rows = []
    for lid, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        box = tuple(
            slice(max(s.start - int(m), 0), min(s.stop + int(m), n))
            for s, m, n in zip(sl, margin, labels.shape)
        )
        lab = labels[box]
        les = lab == lid
        ok = None if valid_arr is None else (valid_arr[box] & (lab == 0))
        rows.append({"lesion_id": lid, **lesion_vein(mag[box], les, vs, valid=ok)})
    table = pd.DataFrame(rows, columns=VEIN_COLUMNS[:6])
    n_veins = dict(zip(table["lesion_id"], table["n_veins"]))
    excl = cvs_exclusions(labels, vs, n_veins=n_veins, gap_mm=gap_mm, objects=objects)
    table = table.merge(excl, on="lesion_id", how="left")
    table["cvs_suggested"] = table["cvs_eligible"] & (table["vein_score"] >= VESSEL_THRESHOLD)
    return table[VEIN_COLUMNS]

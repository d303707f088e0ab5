"""Tissue classes (0 outside, 1 CSF, 2 cortical GM, 3 WM, 4 deep GM) from segmentations or images.

Two routes give the editable tissue layer:

* :func:`import_segmentation` maps a label map from a common tool (FreeSurfer ``aseg`` /
  ``aparc+aseg``, SynthSeg, FSL FAST) onto the five classes, with the mapping tables below;
* :func:`estimate_tissue` computes a first estimate from the coregistered CSF-nulled MPRAGE (and
  optionally the T2* magnitude) inside the brain mask. It is a starting point for the user to
  correct, not a segmentation to trust.

Both return ``uint8`` arrays on the input grid (resample label maps onto the T2* grid first, with
nearest-neighbour interpolation).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError
from ..io.layout import TISSUE_CORTEX, TISSUE_CSF, TISSUE_DEEP_GM, TISSUE_WM
from .lesions import check_voxel_size

# FreeSurfer LUT codes (FreeSurferColorLUT.txt); SynthSeg writes the same codes.
#: aseg / SynthSeg / aparc+aseg label -> tissue code. Codes not listed map to 0 (outside).
ASEG_TO_TISSUE: dict[int, int] = {
    # cerebral cortex
    3: TISSUE_CORTEX, 42: TISSUE_CORTEX,
    # cerebral WM, WM hypointensities (lesions, as FreeSurfer labels them), corpus callosum,
    # optic chiasm, brain stem (mostly WM tracts)
    2: TISSUE_WM, 41: TISSUE_WM, 77: TISSUE_WM, 78: TISSUE_WM, 79: TISSUE_WM,
    251: TISSUE_WM, 252: TISSUE_WM, 253: TISSUE_WM, 254: TISSUE_WM, 255: TISSUE_WM,
    85: TISSUE_WM, 16: TISSUE_WM,
    # cerebellum: WM as WM; cerebellar cortex as "other GM" (4), never a neocortical reference
    7: TISSUE_WM, 46: TISSUE_WM, 8: TISSUE_DEEP_GM, 47: TISSUE_DEEP_GM,
    # deep GM: thalamus (old and new names), caudate, putamen, pallidum, accumbens, ventral DC;
    # hippocampus and amygdala (allocortex) as other GM too; non-WM hypointensities
    9: TISSUE_DEEP_GM, 10: TISSUE_DEEP_GM, 48: TISSUE_DEEP_GM, 49: TISSUE_DEEP_GM,
    11: TISSUE_DEEP_GM, 50: TISSUE_DEEP_GM, 12: TISSUE_DEEP_GM, 51: TISSUE_DEEP_GM,
    13: TISSUE_DEEP_GM, 52: TISSUE_DEEP_GM, 26: TISSUE_DEEP_GM, 58: TISSUE_DEEP_GM,
    28: TISSUE_DEEP_GM, 60: TISSUE_DEEP_GM, 17: TISSUE_DEEP_GM, 53: TISSUE_DEEP_GM,
    18: TISSUE_DEEP_GM, 54: TISSUE_DEEP_GM, 80: TISSUE_DEEP_GM, 81: TISSUE_DEEP_GM, 82: TISSUE_DEEP_GM,
    # CSF: lateral and inferior lateral ventricles, 3rd, 4th, 5th ventricle, CSF, choroid plexus
    4: TISSUE_CSF, 5: TISSUE_CSF, 43: TISSUE_CSF, 44: TISSUE_CSF, 14: TISSUE_CSF, 15: TISSUE_CSF,
    72: TISSUE_CSF, 24: TISSUE_CSF, 31: TISSUE_CSF, 63: TISSUE_CSF,
}
#: aparc (1000-2999: Desikan/DKT cortical parcels) and aparc.a2009s (11100-12999) -> cortex.
APARC_CORTEX_RANGES = ((1000, 2999), (11100, 12999))
#: FSL FAST ``*_seg`` (hard labels 1 CSF, 2 GM, 3 WM) -> tissue code. FAST does not separate
#: deep from cortical GM: pass ``voxel_size_mm`` to split GM with :func:`separate_deep_gm`,
#: else all GM becomes cortex (paint deep GM by hand).
FAST_TO_TISSUE: dict[int, int] = {1: TISSUE_CSF, 2: TISSUE_CORTEX, 3: TISSUE_WM}

KINDS = ("aseg", "aparc+aseg", "synthseg", "fast", "fast_pve")

#: GM components reaching within this distance (mm) of the brain surface can be cortex.
DEFAULT_SURFACE_MM = 3.0
#: GM deeper than this (mm from the outside of the brain mask) is deep GM.
DEFAULT_DEEP_GM_DEPTH_MM = 25.0


def import_segmentation(
    labels: np.ndarray,
    kind: str = "aseg",
    *,
    voxel_size_mm=None,
    brain_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Map a segmentation label map onto the tissue codes 0-4.

    Parameters
    ----------
    labels : ndarray
        ``aseg``, ``aparc+aseg``, ``synthseg``: integer FreeSurfer LUT codes (3-D).
        ``fast``: FSL FAST hard segmentation ``*_seg`` (0 background, 1 CSF, 2 GM, 3 WM).
        ``fast_pve``: the three FAST partial-volume maps stacked on the last axis
        (``pve_0`` CSF, ``pve_1`` GM, ``pve_2`` WM); each voxel takes its largest fraction, and
        voxels whose fractions sum below 0.5 are outside.
    kind : {'aseg', 'aparc+aseg', 'synthseg', 'fast', 'fast_pve'}
    voxel_size_mm : sequence of 3 float, optional
        For FAST only: split GM into cortex and deep GM with :func:`separate_deep_gm`.
    brain_mask : ndarray of bool, optional
        For FAST only: the mask used by :func:`separate_deep_gm` (default: labelled voxels).

    Returns
    -------
    ndarray of uint8
        Tissue codes: 0 outside, 1 CSF, 2 cortex, 3 WM, 4 deep GM.

    Notes
    -----
    FreeSurfer/SynthSeg mapping (:data:`ASEG_TO_TISSUE`): cortex 3/42 and every aparc parcel
    (1000-2999, 11100-12999) -> 2; cerebral WM 2/41, WM hypointensities 77-79, corpus callosum
    251-255, optic chiasm 85, brain stem 16 -> 3; thalamus 9/10/48/49, caudate 11/50, putamen
    12/51, pallidum 13/52, accumbens 26/58, ventral DC 28/60, hippocampus 17/53, amygdala 18/54
    -> 4; ventricles 4/5/14/15/43/44/72, CSF 24, choroid plexus 31/63 -> 1. Cerebellum: WM 7/46
    -> 3, cerebellar cortex 8/47 -> 4 (grey matter that must not serve as a neocortical
    reference). Everything else (vessels 30/62, unknown codes) -> 0; see :func:`unmapped_labels`.

    Examples
    --------
    >>> import_segmentation(np.array([[[0, 2, 3, 42, 1021, 10, 4, 8]]]), "aparc+aseg")[0, 0].tolist()
    [0, 3, 2, 2, 2, 4, 1, 4]
    >>> import_segmentation(np.array([[[0, 1, 2, 3]]]), "fast")[0, 0].tolist()
    [0, 1, 2, 3]
    """
    kind = kind.lower()
    if kind not in KINDS:
        raise ParameterError(f"unknown segmentation kind {kind!r}: expected one of {', '.join(KINDS)}")
    arr = np.asarray(labels)
    if kind == "fast_pve":
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ParameterError(
                f"fast_pve: expected the 3 PVE maps stacked on a 4th axis, got shape {arr.shape}"
            )
        pve = np.nan_to_num(arr.astype(np.float32))
        hard = (np.argmax(pve, axis=-1) + 1).astype(np.int32)
        hard[pve.sum(axis=-1) < 0.5] = 0
        arr, kind = hard, "fast"
    if arr.ndim != 3:
        raise ParameterError(f"{kind}: expected a 3-D label map, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ParameterError(f"{kind}: labels must be whole numbers")
        arr = arr.astype(np.int64)
    if kind == "fast":
        lut = np.zeros(4, dtype=np.uint8)
        for code, tissue in FAST_TO_TISSUE.items():
            lut[code] = tissue
        if arr.min() < 0 or arr.max() > 3:
            found = f"{int(arr.min())}..{int(arr.max())}"
            raise ParameterError(f"fast: labels must be 0-3 (CSF, GM, WM), found {found}")
        out = lut[arr]
        if voxel_size_mm is not None:
            region = out > 0 if brain_mask is None else np.asarray(brain_mask, bool)
            out = separate_deep_gm(out, region, voxel_size_mm)
        return out
    out = np.zeros(arr.shape, dtype=np.uint8)
    for code, tissue in ASEG_TO_TISSUE.items():
        out[arr == code] = tissue
    for lo, hi in APARC_CORTEX_RANGES:
        out[(arr >= lo) & (arr <= hi)] = TISSUE_CORTEX
    return out


def unmapped_labels(labels: np.ndarray, kind: str = "aseg") -> list[int]:
    """Non-zero label codes present in ``labels`` that :func:`import_segmentation` sets to 0."""
    present = np.unique(np.asarray(labels))
    if kind.lower() in ("fast", "fast_pve"):
        return [int(c) for c in present if c not in (0, 1, 2, 3)]
    known = set(ASEG_TO_TISSUE)
    return [
        int(c) for c in present
        if c != 0 and int(c) not in known and not any(lo <= c <= hi for lo, hi in APARC_CORTEX_RANGES)
    ]


def separate_deep_gm(
    tissue: np.ndarray,
    brain_mask: np.ndarray,
    voxel_size_mm,
    *,
    surface_mm: float = DEFAULT_SURFACE_MM,
    deep_gm_depth_mm: float = DEFAULT_DEEP_GM_DEPTH_MM,
) -> np.ndarray:
    """Split grey matter (codes 2 and 4) into cortex and deep GM by connection to the surface.

    GM connected (26-connectivity) to the outer brain surface -- a component with a voxel within
    ``surface_mm`` of the outside of ``brain_mask`` -- is cortex, except voxels deeper than
    ``deep_gm_depth_mm``; GM components not reaching the surface are deep GM.

    Returns
    -------
    ndarray of uint8
        A copy of ``tissue`` with GM recoded.

    Notes
    -----
    A heuristic: the insula (deep cortex) may come out as deep GM and a putamen touching
    misclassified insular voxels as cortex. Review the result.
    """
    vs = check_voxel_size(voxel_size_mm)
    tis = np.array(tissue, dtype=np.uint8, copy=True)
    mask = np.asarray(brain_mask, dtype=bool)
    gm = (tis == TISSUE_CORTEX) | (tis == TISSUE_DEEP_GM)
    if not gm.any():
        return tis
    depth = ndi.distance_transform_edt(np.pad(mask, 1), sampling=vs)[1:-1, 1:-1, 1:-1]
    comp, _ = ndi.label(gm, structure=np.ones((3, 3, 3), bool))
    surface_ids = np.unique(comp[gm & (depth <= surface_mm)])
    cortex = np.isin(comp, surface_ids[surface_ids > 0]) & (depth <= deep_gm_depth_mm)
    tis[gm] = TISSUE_DEEP_GM
    tis[gm & cortex] = TISSUE_CORTEX
    return tis


def estimate_tissue(
    csfn: np.ndarray,
    magnitude: np.ndarray | None,
    brain_mask: np.ndarray,
    voxel_size_mm=(1.0, 1.0, 1.0),
    *,
    surface_mm: float = DEFAULT_SURFACE_MM,
    deep_gm_depth_mm: float = DEFAULT_DEEP_GM_DEPTH_MM,
    n_iter: int = 50,
) -> np.ndarray:
    """First estimate of the tissue classes from the CSF-nulled MPRAGE (+ T2* magnitude).

    Inside ``brain_mask``: 3-class k-means on the CSF-nulled MPRAGE intensity (and the T2*
    magnitude as a second feature when given; both robustly standardised), classes named by
    their mean CSF-nulled intensity (darkest CSF, middle GM, brightest WM); then GM is split into
    cortex and deep GM by :func:`separate_deep_gm`.

    Parameters
    ----------
    csfn : ndarray, 3-D
        CSF-nulled MPRAGE coregistered onto the T2* grid.
    magnitude : ndarray, 3-D, or None
        T2* magnitude on the same grid (optional second feature).
    brain_mask : ndarray of bool, 3-D
    voxel_size_mm : sequence of 3 float
        Used for the depth rule.
    surface_mm, deep_gm_depth_mm : float
        See :func:`separate_deep_gm`.
    n_iter : int
        k-means iterations (deterministic initialisation at the 5th/50th/95th percentiles).

    Returns
    -------
    ndarray of uint8
        0 outside the mask, 1 CSF, 2 cortex, 3 WM, 4 deep GM. A FIRST ESTIMATE for the user to
        correct: intensity clustering confuses lesions (dark on CSF-nulled MPRAGE) with GM or
        CSF, and deep GM nuclei with WM where their contrast is low.
    """
    csfn = np.asarray(csfn, dtype=np.float32)
    mask = np.asarray(brain_mask, dtype=bool)
    if csfn.ndim != 3 or mask.shape != csfn.shape:
        raise ParameterError(f"csfn {csfn.shape} and brain_mask {mask.shape} must be 3-D on the same grid")
    if magnitude is not None and np.asarray(magnitude).shape != csfn.shape:
        shape = np.asarray(magnitude).shape
        raise ParameterError(f"magnitude shape {shape} differs from csfn shape {csfn.shape}")
    if mask.sum() < 3:
        raise ParameterError("brain_mask has fewer than 3 voxels")
    feats = [_robust_standardise(csfn[mask])]
    if magnitude is not None:
        feats.append(_robust_standardise(np.asarray(magnitude, dtype=np.float32)[mask]))
    x = np.stack(feats, axis=1)
    labels = _kmeans(x, n_iter=n_iter)
    order = np.argsort([x[labels == c, 0].mean() if np.any(labels == c) else np.inf for c in range(3)])
    codes = np.empty(3, dtype=np.uint8)
    codes[order] = [TISSUE_CSF, TISSUE_CORTEX, TISSUE_WM]
    tis = np.zeros(csfn.shape, dtype=np.uint8)
    tis[mask] = codes[labels]
    return separate_deep_gm(
        tis, mask, voxel_size_mm, surface_mm=surface_mm, deep_gm_depth_mm=deep_gm_depth_mm
    )


def _robust_standardise(v: np.ndarray) -> np.ndarray:
    lo, med, hi = np.percentile(v, [5, 50, 95])
    return (v - med) / max(hi - lo, 1e-6)


def _kmeans(x: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """3-means with initial centres at the 5/50/95th percentiles of the first feature."""
    key = x[:, 0]
    centres = np.stack([x[np.argmin(np.abs(key - np.percentile(key, q)))] for q in (5, 50, 95)])
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(max(int(n_iter), 1)):
        d = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
        new = np.argmin(d, axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for c in range(3):
            if np.any(labels == c):
                centres[c] = x[labels == c].mean(axis=0)
    return labels

"""Automatic lesion candidates for the raters to vote on.

A voxel is proposed when it is, at once (Bian et al. 2016: lesions are abnormal on every
conventional contrast),

* hyperintense on the T2* magnitude: robust z > ``z_threshold``,
* hyperintense on FLAIR: robust z > ``z_threshold``,
* hypointense on the CSF-nulled MPRAGE: robust z < ``-z_threshold``,

where the robust z-score of a voxel is ``(x - median) / (1.4826 MAD)`` against the voxels of its
own tissue class (``desc-tissue_dseg``) inside the brain mask (brain voxels without a tissue class
use the whole brain). Proposed voxels are grouped in 26-connected components; a component stays
when its in-plane extent (largest bounding-box edge across the slice axis, mm) is at least
``min_extent_mm``, it has at least
``min_voxels`` voxels (single voxels are noise), and it does not touch a drawn lesion (those are
already candidates).

Proposals are kept apart from the drawn lesions until voted: they are written to their own label
map, ``sub-<label>_desc-proposals_dseg.nii.gz`` beside the derivatives (:func:`proposals_path`),
numbered after the largest drawn lesion id and every id of the consensus table so that ids never
collide (new drawn lesions skip the proposals' ids: ``roi.rules.next_free_id``), and their votes carry
``candidate_source = proposed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import InputFileError, ParameterError
from ..io.layout import SubjectFiles
from ..io.nifti import check_same_grid, load_volume, save_volume
from ..progress import ProgressCallback, report
from ..roi.rules import next_free_id, read_consensus_table

MAD_TO_SD = 1.4826


def proposals_path(subject: SubjectFiles) -> Path:
    """``derivatives/qsm-ms/sub-<label>/anat/sub-<label>_desc-proposals_dseg.nii.gz``."""
    return subject.proposals


def robust_z(image: np.ndarray, brain_mask: np.ndarray, tissue: np.ndarray | None = None) -> np.ndarray:
    """Robust z-score per tissue class inside the brain mask (0 outside).

    Parameters
    ----------
    image : ndarray
        Any contrast.
    brain_mask : ndarray of bool
    tissue : ndarray of int, optional
        Tissue classes; each class > 0 gets its own median and MAD. Brain voxels of class 0 (or
        all, without ``tissue``) use the whole brain's.

    Returns
    -------
    ndarray of float32
    """
    image = np.asarray(image, dtype=np.float64)
    brain = np.asarray(brain_mask, dtype=bool)
    z = np.zeros(image.shape, dtype=np.float32)
    if not brain.any():
        return z
    groups = [(brain, None)]
    if tissue is not None:
        tissue = np.asarray(tissue)
        groups = [(brain & (tissue == t), t) for t in np.unique(tissue[brain]) if t > 0]
        rest = brain & (tissue <= 0)
        if rest.any():
            groups.append((rest, 0))
    whole_med = float(np.median(image[brain]))
    whole_mad = float(np.median(np.abs(image[brain] - whole_med))) * MAD_TO_SD
    for sel, t in groups:
        if not sel.any():
            continue
        vals = image[sel]
        if t == 0 or vals.size < 20:
            med, mad = whole_med, whole_mad
        else:
            med = float(np.median(vals))
            mad = float(np.median(np.abs(vals - med))) * MAD_TO_SD
        if mad <= 0:
            mad = whole_mad if whole_mad > 0 else 1.0
        z[sel] = ((vals - med) / mad).astype(np.float32)
    return z


def propose_candidates(
    magnitude: np.ndarray,
    flair: np.ndarray,
    csfn: np.ndarray,
    brain_mask: np.ndarray,
    voxel_size_mm: Sequence[float],
    *,
    tissue: np.ndarray | None = None,
    drawn: np.ndarray | None = None,
    z_threshold: float = 2.5,
    min_extent_mm: float = 2.0,
    min_voxels: int = 2,
    slice_axis: int | None = 2,
    first_id: int | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Label map of automatic candidates (0 = none, ids ``first_id``, ``first_id + 1``, ...).

    Parameters
    ----------
    magnitude, flair, csfn : ndarray
        T2* magnitude, FLAIR and CSF-nulled MPRAGE on one grid.
    brain_mask : ndarray of bool
    voxel_size_mm : sequence of 3 float
        Voxel edge lengths along the array axes (mm).
    tissue : ndarray of int, optional
        Tissue classes for per-class statistics.
    drawn : ndarray of int, optional
        Drawn lesions: components touching one are dropped.
    z_threshold : float
        Robust z-score threshold (default 2.5).
    min_extent_mm : float
        Smallest largest bounding-box edge kept (mm, default 2.0).
    min_voxels : int
        Smallest component kept (voxels, default 2: isolated voxels are noise).
    slice_axis : int or None
        The extent is measured in the plane across this axis (default 2, the axial slices of the
        T2* grid), so that one thick slice does not make a lesion "2 mm"; None uses every axis.
    first_id : int, optional
        First proposal id (default: largest drawn id + 1, or 1).

    Returns
    -------
    ndarray of int32
        Components ordered by size (largest first).
    """
    shape = np.shape(magnitude)
    for name, arr in (("flair", flair), ("csfn", csfn), ("brain_mask", brain_mask)):
        if np.shape(arr) != shape:
            raise ParameterError(f"{name} shape {np.shape(arr)} differs from magnitude shape {shape}")
    voxel = np.asarray(voxel_size_mm, dtype=float)
    if voxel.shape != (3,) or (voxel <= 0).any():
        raise ParameterError(f"voxel_size_mm must be 3 positive numbers, got {tuple(voxel_size_mm)}")
    if z_threshold <= 0:
        raise ParameterError(f"z_threshold must be > 0, got {z_threshold}")
    if min_extent_mm < 0:
        raise ParameterError(f"min_extent_mm must be >= 0, got {min_extent_mm}")
    brain = np.asarray(brain_mask, dtype=bool)
    report(progress, 0.0, "robust z-scores")
    hit = robust_z(magnitude, brain, tissue) > z_threshold
    report(progress, 0.3, "robust z-scores (FLAIR)")
    hit &= robust_z(flair, brain, tissue) > z_threshold
    report(progress, 0.6, "robust z-scores (CSF-nulled MPRAGE)")
    hit &= robust_z(csfn, brain, tissue) < -z_threshold
    hit &= brain
    report(progress, 0.8, "connected components")
    comps, n = ndimage.label(hit, structure=np.ones((3, 3, 3), dtype=bool))
    drawn_arr = None if drawn is None else np.asarray(drawn)
    keep = []
    for lab, slc in enumerate(ndimage.find_objects(comps), start=1):
        if slc is None:
            continue
        extent = max((s.stop - s.start) * v for ax, (s, v) in enumerate(zip(slc, voxel)) if ax != slice_axis)
        if extent < min_extent_mm - 1e-6:
            continue
        region = comps[slc] == lab
        if region.sum() < min_voxels:
            continue
        if drawn_arr is not None and (drawn_arr[slc][region] > 0).any():
            continue
        keep.append((int(region.sum()), lab))
    if first_id is None:
        first_id = next_free_id(np.zeros(1) if drawn_arr is None else drawn_arr)
    out = np.zeros(shape, dtype=np.int32)
    for k, (_, lab) in enumerate(sorted(keep, key=lambda t: (-t[0], t[1]))):
        out[comps == lab] = first_id + k
    report(progress, 1.0, f"{len(keep)} proposals")
    return out


def propose_subject(
    subject: SubjectFiles,
    *,
    z_threshold: float = 2.5,
    min_extent_mm: float = 2.0,
    progress: ProgressCallback | None = None,
) -> Path:
    """Propose candidates for ``subject`` from its files and write :func:`proposals_path`.

    Uses the T2* magnitude, the coregistered FLAIR and CSF-nulled MPRAGE (``space-T2starw``), the
    brain mask, and, when present, the tissue map and the drawn lesions.
    """
    mag = load_volume(subject.magnitude)
    vols = {}
    for key in ("flair", "csfn"):
        path = subject.coreg_series(key)
        if not path.exists():
            raise InputFileError(path, "not found: coregister the series onto the T2* grid first")
        vols[key] = load_volume(path)
        check_same_grid(mag, vols[key])
    if not subject.brain_mask.exists():
        raise InputFileError(subject.brain_mask, "not found: a brain mask is needed for proposals")
    brain = load_volume(subject.brain_mask, dtype=None)
    check_same_grid(mag, brain)
    tissue = drawn = None
    if subject.tissue.exists():
        t = load_volume(subject.tissue, dtype=None)
        check_same_grid(mag, t)
        tissue = np.asarray(t.data)
    if subject.lesions.exists():
        d = load_volume(subject.lesions, dtype=None)
        check_same_grid(mag, d)
        drawn = np.asarray(d.data)
    table = read_consensus_table(subject)  # ids voted on before are never given to new candidates
    voted = [] if table is None else table["lesion_id"]
    first_id = next_free_id(np.zeros(1) if drawn is None else drawn, voted)
    labels = propose_candidates(
        mag.data, vols["flair"].data, vols["csfn"].data, np.asarray(brain.data) > 0, mag.voxel_size_mm,
        tissue=tissue, drawn=drawn, z_threshold=z_threshold, min_extent_mm=min_extent_mm, first_id=first_id,
        progress=progress,
    )
    return save_volume(proposals_path(subject), labels, mag.affine, like=mag, dtype=np.int32)

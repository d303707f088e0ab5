"""What the Review dock draws for one lesion's markers: rim sectors, radial profile, vein voxels.

Pure numpy (no Qt). The *numbers* of a lesion (rim score, coverage, vein score, CVS) are never
computed here: they come from :func:`napari_qsm_ms.stats.markers.marker_table`, the function that
writes ``stats/lesions.tsv``. This module only turns the same measures into pictures, with the
constants and helpers of :mod:`.rim` and :mod:`.veins`:

* :func:`rim_sector_labels` -- the rim band of a lesion as a label volume, each voxel labelled by
  whether its angular sector (per slice) is paramagnetic (:data:`SECTOR_PARAMAGNETIC`) or not
  (:data:`SECTOR_QUIET`); its ``coverage`` equals ``rim_metrics``' ``rim_coverage`` (tested);
* :func:`vein_voxels` -- the voxels of the lesion's centre where the dark-vessel vesselness
  reaches the vein threshold (the vein crossing the centre), with their vesselness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .lesions import check_slice_axis, check_voxel_size
from .rim import (
    CORE_BELOW_MM,
    CORE_PERCENTILE,
    N_SECTORS,
    OUTSIDE_BAND_MM,
    PARAMAGNETIC_PPM,
    RIM_BAND_MM,
    VESSEL_EXCESS_PPM,
    _sector_excess,
    signed_distance_mm,
)
from .veins import VESSEL_THRESHOLD, dark_vesselness, lesion_centre

SECTOR_NONE, SECTOR_QUIET, SECTOR_PARAMAGNETIC = 0, 1, 2
"""Labels of :func:`rim_sector_labels`: outside the rim band, rim band in a sector that is not
paramagnetic, rim band in a paramagnetic sector."""


@dataclass
class RimSectors:
    """Rim band of one lesion labelled by sector (see :func:`rim_sector_labels`)."""

    labels: np.ndarray
    used: np.ndarray
    """Voxels the rim measure takes (``valid`` without the vein-bright voxels): the profile's voxels."""
    reference_ppm: float
    coverage: float
    n_sectors: int
    n_paramagnetic: int


def _voxel_sectors(rim: np.ndarray, lesion: np.ndarray, vs: np.ndarray, axis: int, n_sectors: int) -> np.ndarray:
    """Sector (0..n-1; -1 elsewhere) of every rim voxel on a slice of the lesion, slice by slice:
    the in-plane angle (mm) about the lesion's centroid in that slice, the sectors of
    :func:`.rim._sector_excess` (``-pi`` to ``pi`` cut in ``n_sectors``)."""
    sector = np.full(rim.shape, -1, np.int16)
    plane_mm = vs[[a for a in range(3) if a != axis]]
    for k in range(rim.shape[axis]):
        at = tuple(k if a == axis else slice(None) for a in range(3))
        if not lesion[at].any() or not rim[at].any():
            continue
        offset = np.argwhere(rim[at]) * plane_mm - np.array(ndi.center_of_mass(lesion[at])) * plane_mm
        angle = np.arctan2(offset[:, 1], offset[:, 0])
        sector[at][rim[at]] = np.minimum(((angle + np.pi) / (2 * np.pi) * n_sectors).astype(int), n_sectors - 1)
    return sector


def rim_sector_labels(chi_ppm: np.ndarray, lesion: np.ndarray, voxel_size_mm, *, valid: np.ndarray | None = None,
                      slice_axis: int = 2, n_sectors: int = N_SECTORS) -> RimSectors:
    """The rim band of ONE lesion (a crop as :func:`.rim.lesion_rim` takes it), labelled by sector.

    Same bands, reference and sector rule as :func:`.rim.lesion_rim` (``valid`` as there: the
    usable voxels, vessels already left out). ``labels`` holds :data:`SECTOR_PARAMAGNETIC` for the
    rim-band voxels of a paramagnetic sector, :data:`SECTOR_QUIET` for the other rim-band voxels.

    Examples
    --------
    >>> chi = np.zeros((30, 30, 30), np.float32); les = np.zeros(chi.shape, bool)
    >>> zz, yy, xx = np.indices(chi.shape) - 15; r = np.sqrt(zz**2 + yy**2 + xx**2)
    >>> les[r <= 6] = True; chi[(np.abs(r - 6) <= 2) & (xx > 0)] = 0.05   # half a rim
    >>> s = rim_sector_labels(chi, les, (1, 1, 1))
    >>> round(s.coverage, 1), bool((s.labels == SECTOR_PARAMAGNETIC).any())
    (0.5, True)
    """
    chi = np.asarray(chi_ppm, dtype=np.float32)
    les = np.asarray(lesion, dtype=bool)
    vs = check_voxel_size(voxel_size_mm)
    axis = check_slice_axis(slice_axis)
    ok = np.ones(les.shape, bool) if valid is None else np.asarray(valid, bool)
    d = signed_distance_mm(les, vs)
    outside = (d >= OUTSIDE_BAND_MM[0]) & (d <= OUTSIDE_BAND_MM[1]) & ok & ~les
    out_v = float(np.median(chi[outside])) if outside.any() else float("nan")
    if np.isfinite(out_v):
        ok = ok & (chi <= out_v + VESSEL_EXCESS_PPM)
    rim = (d >= RIM_BAND_MM[0]) & (d <= RIM_BAND_MM[1]) & ok
    core = les & (d < CORE_BELOW_MM) & ok
    if not core.any():
        core = les & ok
    core_ref = float(np.percentile(chi[core], CORE_PERCENTILE)) if core.any() else float("nan")
    ref = float(np.nanmax([core_ref, out_v])) if np.isfinite([core_ref, out_v]).any() else float("nan")
    labels = np.zeros(les.shape, np.int8)
    sectors = _sector_excess(chi, rim, les, vs, axis, n_sectors)
    if not sectors or not np.isfinite(ref):
        return RimSectors(labels, ok, ref, float("nan"), 0, 0)
    table = np.full((les.shape[axis], n_sectors), np.nan)
    for s, row in sectors.items():
        table[s] = row
    para = (table - ref) >= PARAMAGNETIC_PPM
    sector = _voxel_sectors(rim, les, vs, axis, n_sectors)
    at = np.nonzero(sector >= 0)
    labels[at] = np.where(para[at[axis], sector[at]], SECTOR_PARAMAGNETIC, SECTOR_QUIET)
    counted = np.isfinite(table)
    n = int(counted.sum())
    n_para = int((para & counted).sum())
    return RimSectors(labels, ok, ref, n_para / n if n else float("nan"), n, n_para)


def vein_voxels(magnitude: np.ndarray, lesion: np.ndarray, voxel_size_mm, *, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """Voxels of the lesion's centre where the dark-vessel vesselness reaches the vein threshold.

    The same normalisation, centre and vesselness as :func:`.veins.lesion_vein` (``valid`` as
    there; the vesselness is computed on the whole crop, not on a box around the centre, so values
    near the threshold may differ in the last digits: the numbers come from ``vein_metrics``). Returns ``(indices (n, 3) in the crop, vesselness (n,))``, the strongest first.

    Examples
    --------
    >>> mag = np.ones((21, 21, 21), np.float32); les = np.zeros(mag.shape, bool)
    >>> les[6:15, 6:15, 6:15] = True; mag[10, 10, :] = 0.3           # a dark line through the centre
    >>> idx, v = vein_voxels(mag, les, (1, 1, 1))
    >>> sorted(set(idx[:, 0].tolist())), sorted(set(idx[:, 1].tolist())), bool(v.min() >= 0.15)
    ([10], [10], True)
    """
    mag = np.asarray(magnitude, dtype=np.float32)
    les = np.asarray(lesion, bool)
    values = mag[mag > 0] if valid is None else mag[(np.asarray(valid, bool) | les) & (mag > 0)]
    if not values.size:
        return np.zeros((0, 3), int), np.zeros(0, np.float32)
    centre = lesion_centre(les, voxel_size_mm)
    v = dark_vesselness(mag / float(np.median(values)), voxel_size_mm, where=les)
    idx = np.argwhere(centre & (v >= VESSEL_THRESHOLD))
    vals = v[tuple(idx.T)]
    order = np.argsort(-vals, kind="stable")
    return idx[order], vals[order]


__all__ = [
    "SECTOR_NONE",
    "SECTOR_PARAMAGNETIC",
    "SECTOR_QUIET",
    "RimSectors",
    "rim_sector_labels",
    "vein_voxels",
]

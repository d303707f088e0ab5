"""Threshold / region-grow fill from a click: the voxels a lesion fill may take.

:func:`region_grow` returns the connected set of voxels whose intensity lies in ``[low, high]``
and that contains the clicked voxel, optionally limited to the clicked slice (2-D, the usual
way lesions are drawn) and to a ``within`` mask. :func:`fill_voxels` turns that set into the
voxels a label map may receive: background only, or also the same label, never another lesion.
Both are pure; the Drawing tools dock writes the result as one undoable edit.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError

DEFAULT_MAX_VOXELS = 200_000
"""A fill larger than this (a range that leaks into the whole brain) is refused."""


def _check_seed(seed, shape) -> tuple[int, ...]:
    try:
        point = tuple(int(round(float(v))) for v in seed)
    except (TypeError, ValueError):
        raise ParameterError(f"seed must be {len(shape)} voxel indices, got {seed!r}") from None
    if len(point) != len(shape) or any(not 0 <= p < n for p, n in zip(point, shape)):
        raise ParameterError(f"seed {point} is outside the image of shape {tuple(shape)}")
    return point


def region_grow(
    image: np.ndarray,
    seed,
    low: float,
    high: float,
    *,
    plane_axis: int | None = None,
    within: np.ndarray | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> np.ndarray:
    """The connected region of voxels with ``low <= image <= high`` that holds ``seed``.

    Parameters
    ----------
    image : ndarray, 3-D
        Intensities (NaN never belongs to the region).
    seed : sequence of 3 numbers
        The clicked voxel (rounded to the nearest index).
    low, high : float
        Intensity range, inclusive.
    plane_axis : int, optional
        Grow only in the slice through ``seed`` perpendicular to this axis (2-D fill).
    within : ndarray of bool, optional
        Voxels the region may take (e.g. the brain mask).
    max_voxels : int
        Refuse a region larger than this (the range leaks).

    Returns
    -------
    ndarray of bool, the shape of ``image``; empty if the seed itself is outside the range.

    Raises
    ------
    ParameterError
        Bad seed, range or axis, or a region larger than ``max_voxels``.
    """
    img = np.asarray(image)
    if img.ndim != 3:
        raise ParameterError(f"region_grow needs a 3-D image, got {img.ndim}-D")
    if not (np.isfinite(low) and np.isfinite(high)) or low > high:
        raise ParameterError(f"intensity range must be finite with low <= high, got ({low}, {high})")
    point = _check_seed(seed, img.shape)
    if within is not None and np.shape(within) != img.shape:
        raise ParameterError(f"within mask shape {np.shape(within)} differs from the image {img.shape}")
    box = [slice(None)] * 3
    if plane_axis is not None:
        if plane_axis not in (0, 1, 2):
            raise ParameterError(f"plane_axis must be 0, 1 or 2, got {plane_axis}")
        box[plane_axis] = slice(point[plane_axis], point[plane_axis] + 1)
    box = tuple(box)
    with np.errstate(invalid="ignore"):
        candidate = (img[box] >= low) & (img[box] <= high)
    if within is not None:
        candidate &= np.asarray(within, dtype=bool)[box]
    local = tuple(p - (b.start or 0) for p, b in zip(point, box))
    out = np.zeros(img.shape, dtype=bool)
    if not candidate[local]:
        return out
    labels, _ = ndi.label(candidate, structure=ndi.generate_binary_structure(3, 1))
    region = labels == labels[local]
    n = int(region.sum())
    if n > max_voxels:
        raise ParameterError(
            f"the fill would take {n} voxels (> {max_voxels}): narrow the intensity range"
        )
    out[box] = region
    return out


def fill_voxels(labels: np.ndarray, region: np.ndarray, label: int) -> tuple[np.ndarray, ...]:
    """Indices of ``region`` voxels that may become ``label``: background or already ``label``.

    Voxels of other lesions are never taken. Returns a tuple of index arrays (for
    ``Labels.data_setitem``), only voxels whose value changes.
    """
    lab = np.asarray(labels)
    if lab.shape != np.shape(region):
        raise ParameterError(f"region shape {np.shape(region)} differs from the labels {lab.shape}")
    if int(label) <= 0:
        raise ParameterError(f"label must be a positive lesion id, got {label}")
    return np.nonzero(np.asarray(region, dtype=bool) & (lab == 0))


def range_around(image: np.ndarray, seed, half_width_fraction: float = 0.15) -> tuple[float, float]:
    """A starting range centred on the clicked voxel's value: +- a fraction of the robust span."""
    img = np.asarray(image)
    point = _check_seed(seed, img.shape)
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        raise ParameterError("the image has no finite values")
    lo, hi = np.percentile(finite, [1, 99])
    half = float(half_width_fraction) * float(hi - lo)
    value = float(img[point])
    return value - half, value + half

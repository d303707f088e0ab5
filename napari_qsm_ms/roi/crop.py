"""The in-plane crop around a lesion that the review panels show (pure, no Qt)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CropGeometry:
    """An in-plane crop of the canonical volume around a lesion on one slice.

    Attributes
    ----------
    index : tuple of slice / int
        Index into the canonical 3-D array giving the 2-D crop (rows = first in-plane axis).
    extent_mm : tuple of 4 float
        ``(left, right, bottom, top)`` of the crop in mm relative to the lesion centre, for imshow.
    """

    index: tuple
    extent_mm: tuple[float, float, float, float]
    slice_index: int


def crop_geometry(
    center_vox, slice_index: int, shape, voxel_size_mm, half_width_mm: float, slice_axis: int = 2
) -> CropGeometry:
    """The crop of ``half_width_mm`` around ``center_vox`` on slice ``slice_index`` (clipped to the array)."""
    axes = [a for a in range(3) if a != slice_axis]
    index: list = [None, None, None]
    index[slice_axis] = int(np.clip(slice_index, 0, shape[slice_axis] - 1))
    ext = []
    for a in axes:
        half = max(1, int(round(half_width_mm / float(voxel_size_mm[a]))))
        c = int(round(float(center_vox[a])))
        lo, hi = max(0, c - half), min(shape[a], c + half + 1)
        index[a] = slice(lo, hi)
        ext.append(((lo - 0.5 - float(center_vox[a])) * voxel_size_mm[a], (hi - 0.5 - float(center_vox[a])) * voxel_size_mm[a]))
    return CropGeometry(tuple(index), (ext[0][0], ext[0][1], ext[1][0], ext[1][1]), index[slice_axis])

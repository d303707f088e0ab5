"""What the blinded rater's view shows of a candidate (pure, no Qt): where to look and its outline."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..roi.rules import lesion_central_slice


def view_point(mask: np.ndarray | None, center_vox, slice_axis: int = 2) -> tuple[float, float, float]:
    """Where to look at a candidate: its central slice (:func:`~napari_qsm_ms.roi.rules.lesion_central_slice`,
    the slice of its reference and of the report's panel) and, for centring the view, the mean
    position of its voxels there."""
    if mask is None or not mask.any():
        return tuple(center_vox)
    z = lesion_central_slice(mask, slice_axis)
    point = list(np.argwhere(np.take(mask, z, axis=slice_axis)).mean(axis=0))
    point.insert(slice_axis, z)
    return tuple(float(v) for v in point)


def outline_outside(mask: np.ndarray, width_vox: int = 1) -> np.ndarray:
    """A ring of ``width_vox`` voxels just OUTSIDE ``mask`` in each axial slice (axis 2).

    Drawn instead of the mask (or its contour, which on a lesion two voxels wide is the lesion
    itself), it marks the candidate while leaving every voxel of it visible.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.uint8)
    structure = np.zeros((3, 3, 1), dtype=bool)
    structure[:, :, 0] = ndimage.generate_binary_structure(2, 2)
    grown = ndimage.binary_dilation(mask, structure=structure, iterations=max(int(width_vox), 1))
    return (grown & ~mask).astype(np.uint8)


def missing_contrasts(shown_titles, all_titles) -> list[str]:
    """Titles of the rater's contrasts that could not be shown (in ``all_titles`` order)."""
    shown = set(shown_titles)
    return [t for t in all_titles if t not in shown]

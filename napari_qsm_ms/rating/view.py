"""What the blinded rater's view shows of a candidate (pure, no Qt): where to look and its outline."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def view_point(mask: np.ndarray | None, center_vox) -> tuple[float, float, float]:
    """Where to look at a candidate: its axial slice with the most voxels (nearest the centre of
    mass on ties; the centre of mass of a curved lesion may fall on a slice without it) and, for
    centring the view, the mean position of its voxels on that slice."""
    if mask is None or not mask.any():
        return tuple(center_vox)
    per_slice = mask.sum(axis=(0, 1))
    best = np.flatnonzero(per_slice == per_slice.max())
    z = int(best[np.argmin(np.abs(best - center_vox[2]))])
    xy = np.argwhere(mask[:, :, z]).mean(axis=0)
    return float(xy[0]), float(xy[1]), float(z)


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

"""Geometry from affines: the main-field (B0) direction in voxel coordinates."""

from __future__ import annotations

import numpy as np

SCANNER_B0_WORLD = np.array([0.0, 0.0, 1.0])
"""B0 in scanner world coordinates (RAS+): along +z (superior), as DICOM/NIfTI scanner space."""


def b0_direction_voxel(affine: np.ndarray, b0_world: np.ndarray = SCANNER_B0_WORLD) -> np.ndarray:
    """Unit B0 direction expressed along the array's three axes.

    Component ``i`` is the cosine between array axis ``i`` (a column of the affine, normalised)
    and the main field. For an axial acquisition with no tilt this is ``(0, 0, +-1)``; for oblique
    slices it has in-plane components. The sign is irrelevant to the dipole kernel (it depends on
    ``(k . b0)^2``) but is kept for clarity.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        Voxel-to-world transform (mm).
    b0_world : ndarray, shape (3,)
        Field direction in world coordinates; scanner z by default.

    Returns
    -------
    ndarray, shape (3,)
        Unit vector (float64).

    Examples
    --------
    >>> import numpy as np
    >>> b0_direction_voxel(np.diag([0.5, 0.5, 1.0, 1.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    axes = np.asarray(affine, dtype=float)[:3, :3]
    unit_axes = axes / np.linalg.norm(axes, axis=0, keepdims=True)
    # Express b0 in the (possibly non-orthogonal) basis of the voxel axes: solve unit_axes @ c = b0.
    b0 = np.asarray(b0_world, dtype=float)
    b0 = b0 / np.linalg.norm(b0)
    comps = np.linalg.solve(unit_axes, b0)
    return comps / np.linalg.norm(comps)

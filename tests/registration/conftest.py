"""Small analytic-head images shared by the registration tests (T2*-like axial, T1-like coronal)."""

from __future__ import annotations

import numpy as np
import pytest

from . import _head as H

FIXED_SHAPE = (64, 72, 30)
FIXED_VOXEL_MM = (2.5, 2.5, 4.0)
MOVING_SHAPE = (60, 64, 70)
MOVING_VOXEL_MM = (3.0, 3.0, 3.0)


def fixed_affine() -> np.ndarray:
    """Axial slab, tilted 12 degrees about x (oblique), 2.5 x 2.5 x 4 mm."""
    return H.axial_affine(FIXED_VOXEL_MM, FIXED_SHAPE, center=H.CENTER_RAS + [0, 0, 10], tilt_deg=12)


def moving_affine() -> np.ndarray:
    """Coronal whole head, 3 mm isotropic."""
    return H.coronal_affine(MOVING_VOXEL_MM, MOVING_SHAPE)


@pytest.fixture(scope="session")
def fixed_t2star():
    return H.render(FIXED_SHAPE, fixed_affine(), "t2star", seed=1)


@pytest.fixture(scope="session")
def brain_points(fixed_t2star):
    pts = H.grid_points(FIXED_SHAPE, fixed_t2star.affine)
    return pts[H.brain_mask(pts)]


def moved_t1(motion: np.ndarray, seed: int = 2):
    return H.render(MOVING_SHAPE, moving_affine(), "t1", motion=motion, seed=seed)

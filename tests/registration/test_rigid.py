"""Rigid mutual-information registration: accuracy on a known motion, and refusal of bad input."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qsm_ms.errors import CancelledError, ParameterError, QSMMSError
from napari_qsm_ms.io.nifti import Volume
from napari_qsm_ms.registration.rigid import (
    RegistrationError,
    RigidParameters,
    foreground_points,
    max_displacement_mm,
    register_rigid,
    rotation_angle_deg,
)

from . import _head as H
from .conftest import MOVING_SHAPE, moved_t1, moving_affine

# (rotations about x, y, z in degrees; translation in mm): total rotation <= 10 deg, shift <= 10 mm
MOTIONS = [
    ((3.4, 7.1, -5.2), (2.9, -3.7, 1.6)),
    ((-6.0, 2.0, 7.0), (-6.0, 5.0, -5.5)),
    ((0.0, 0.0, 9.5), (0.0, 9.8, 0.0)),
]


@pytest.mark.parametrize("angles, shift", MOTIONS)
def test_known_motion_is_recovered_across_contrast_and_grid(fixed_t2star, brain_points, angles, shift):
    """T1-like coronal 3 mm head, moved, onto a T2*-like oblique axial 2.5x2.5x4 mm slab."""
    motion = H.rigid(angles, shift)
    assert rotation_angle_deg(motion) <= 10.0 and np.linalg.norm(shift) <= 10.0
    result = register_rigid(fixed_t2star, moved_t1(motion))
    error_mm = max_displacement_mm(result.matrix_ras, motion, brain_points)
    error_deg = rotation_angle_deg(np.linalg.inv(result.matrix_ras) @ motion)
    assert error_mm < 0.5, result.summary()
    assert error_deg < 0.5, result.summary()
    assert result.mutual_information > result.initial_mutual_information
    assert result.overlap > 0.95
    # the reported correction is the motion's size over the head (the fixed image's foreground)
    head = foreground_points(fixed_t2star)
    assert result.correction_mm == pytest.approx(max_displacement_mm(motion, np.eye(4), head), abs=0.5)
    # ITK transform and RAS matrix describe the same mapping
    p = brain_points[0]
    itk_point = np.asarray(result.transform.TransformPoint(tuple(p * [-1, -1, 1]))) * [-1, -1, 1]
    np.testing.assert_allclose(itk_point, result.matrix_ras[:3, :3] @ p + result.matrix_ras[:3, 3], atol=1e-6)


def test_moments_initializer_recovers_a_large_shift(fixed_t2star, brain_points):
    """'moments' starts from centres of mass: a 25 mm shift (beyond the capture range of 'scanner')."""
    motion = H.rigid((2.0, -3.0, 4.0), (25.0, -6.0, 4.0))
    # a whole-head field of view for the fixed image, so centres of mass correspond
    shape = (70, 84, 60)
    fixed = H.render(shape, H.axial_affine((2.5, 2.5, 3.5), shape), "t2star", seed=3)
    result = register_rigid(fixed, moved_t1(motion), params=RigidParameters(initializer="moments"))
    assert max_displacement_mm(result.matrix_ras, motion, brain_points) < 0.5, result.summary()


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert isinstance(excinfo.value, QSMMSError)
    return message


def test_empty_moving_image_is_refused(fixed_t2star):
    empty = Volume(np.zeros(MOVING_SHAPE, np.float32), moving_affine(), path=None)
    with pytest.raises(RegistrationError) as excinfo:
        register_rigid(fixed_t2star, empty)
    assert "empty (all zero)" in _one_line_error(excinfo)


def test_constant_fixed_image_is_refused():
    const = Volume(np.full((20, 20, 10), 7.0, np.float32), np.eye(4))
    with pytest.raises(RegistrationError) as excinfo:
        register_rigid(const, moved_t1(np.eye(4)))
    assert "constant (every voxel 7)" in _one_line_error(excinfo)


@pytest.mark.parametrize("shape", [(60, 64), (60, 64, 70, 2)])
def test_wrong_dimensionality_is_refused(fixed_t2star, shape):
    bad = Volume(np.ones(shape, np.float32), moving_affine())
    with pytest.raises(RegistrationError) as excinfo:
        register_rigid(fixed_t2star, bad)
    assert "expected 3-D" in _one_line_error(excinfo)


def test_no_overlap_in_world_space_is_refused(fixed_t2star):
    far = moved_t1(np.eye(4))
    far.affine = far.affine.copy()
    far.affine[:3, 3] += [0.0, 400.0, 0.0]  # the series' affine puts it 40 cm away
    with pytest.raises(RegistrationError) as excinfo:
        register_rigid(fixed_t2star, far)
    assert "no overlap in world space" in _one_line_error(excinfo)


def test_unrelated_image_fails_the_mutual_information_threshold(fixed_t2star):
    noise = Volume(np.random.default_rng(0).random(MOVING_SHAPE).astype(np.float32), moving_affine())
    with pytest.raises(RegistrationError) as excinfo:  # few iterations: there is nothing to find
        register_rigid(fixed_t2star, noise, params=RigidParameters(max_iterations=20))
    assert "below the sanity threshold" in _one_line_error(excinfo)


def test_bad_parameters_are_refused(fixed_t2star):
    with pytest.raises(ParameterError, match="one value per level"):
        register_rigid(fixed_t2star, moved_t1(np.eye(4)),
                       params=RigidParameters(shrink_factors=(4, 2), smoothing_sigmas_mm=(1.0,)))


def test_progress_is_reported_and_cancellation_stops(fixed_t2star):
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        if len(seen) > 5:
            raise CancelledError("stop")

    with pytest.raises(CancelledError):
        register_rigid(fixed_t2star, moved_t1(H.rigid((2, 2, 2), (3, 3, 3))), progress=progress)
    assert seen == sorted(seen) and 0.0 <= seen[0] < seen[-1] < 1.0

"""Checkerboards, display scaling, nudges and the working-resolution reduction."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_qsm_ms.io.nifti import Volume
from napari_qsm_ms.registration.conversion import affine_from_sitk_image, sitk_image_from_volume
from napari_qsm_ms.registration.qc import (
    apply_nudge,
    checkerboard,
    checkerboard_mask,
    grid_center_ras,
    normalize_intensity,
    nudge_matrix,
)
from napari_qsm_ms.registration.rigid import rotation_angle_deg, working_image

from . import _head as H


def test_checkerboard_squares_have_the_requested_size_in_mm():
    mask = checkerboard_mask((40, 20, 10), (0.5, 1.0, 2.0), check_mm=5.0)
    # along axis 0 a square is 10 voxels of 0.5 mm, along axis 1 5 voxels, along axis 2 2.5 -> 2/3 voxels
    assert mask[0, 0, 0] and mask[9, 0, 0] and not mask[10, 0, 0]
    assert not mask[0, 5, 0] and mask[0, 10, 0]
    assert not mask[0, 0, 3] and mask[0, 0, 5]
    with pytest.raises(ValueError):
        checkerboard_mask((4, 4, 4), (1, 1, 1), check_mm=0)


def test_checkerboard_takes_each_square_from_one_image():
    rng = np.random.default_rng(0)
    a, b = rng.random((16, 16, 8)) + 1, rng.random((16, 16, 8)) + 5
    board = checkerboard(a, b, (1, 1, 1), 4.0)
    mask = checkerboard_mask(a.shape, (1, 1, 1), 4.0)
    np.testing.assert_allclose(board[mask], normalize_intensity(a)[mask])
    np.testing.assert_allclose(board[~mask], normalize_intensity(b)[~mask])
    with pytest.raises(ValueError, match="differ in shape"):
        checkerboard(a, b[:-1], (1, 1, 1))


def test_normalize_is_monotonic_and_keeps_the_background_black():
    vol = H.render((40, 48, 20), H.axial_affine((4, 4, 6), (40, 48, 20)), "t2star", seed=0)
    out = normalize_intensity(vol.data)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    order = np.argsort(vol.data.ravel())
    assert np.all(np.diff(out.ravel()[order]) >= 0)
    assert (out[vol.data < 0.05] == 0).all()
    assert not normalize_intensity(np.zeros((3, 3, 3))).any()


def test_nudge_rotates_about_the_centre_and_composes():
    center = np.array([10.0, -5.0, 20.0])
    n = nudge_matrix((1.0, 2.0, 3.0), (0.0, 0.0, 90.0), center)
    np.testing.assert_allclose(n[:3, :3] @ center + n[:3, 3], center + [1, 2, 3], atol=1e-12)
    # +90 degrees about z takes +x to +y (right-handed, RAS)
    np.testing.assert_allclose(n[:3, :3] @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)
    assert rotation_angle_deg(n) == pytest.approx(90.0)
    m = H.rigid((2, 3, 4), (5, 6, 7))
    np.testing.assert_allclose(apply_nudge(apply_nudge(m, n), np.linalg.inv(n)), m, atol=1e-12)
    np.testing.assert_allclose(grid_center_ras((3, 5, 7), np.diag([2, 2, 2, 1.0])), [2, 4, 6])


def test_working_image_block_average_keeps_world_positions():
    affine = H.axial_affine((0.47, 0.47, 1.0), (64, 64, 20), tilt_deg=10)
    data = np.random.default_rng(1).random((64, 64, 20)).astype(np.float32)
    img = sitk_image_from_volume(Volume(data, affine))
    small = working_image(img, 1.6)
    assert small.GetSize() == (21, 21, 20)  # factors 3, 3, 1
    small_affine = affine_from_sitk_image(small)
    # voxel (0,0,0) of the reduced grid is the centre of the 3x3x1 block it averages
    block = np.array([[i, j, 0, 1] for i in range(3) for j in range(3)], float)
    np.testing.assert_allclose(small_affine[:3, 3], (affine @ block.T)[:3].mean(axis=1), atol=1e-6)
    small_data = sitk.GetArrayFromImage(small).transpose(2, 1, 0)
    assert small_data[0, 0, 0] == pytest.approx(data[:3, :3, 0].mean(), rel=1e-5)
    assert working_image(img, 0) is img

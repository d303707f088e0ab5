"""RAS+ (nibabel) <-> LPS+ (SimpleITK) conversion of images and transforms."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.io.nifti import Volume, save_volume
from napari_qsm_ms.registration.conversion import (
    affine_from_sitk_image,
    itk_transform_from_ras,
    ras_from_itk_transform,
    sitk_image_from_volume,
    volume_from_sitk_image,
)

from ._head import rigid, rotation_matrix


def _oblique_affine(voxel_size_mm, angles_deg, flips, origin) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = rotation_matrix(angles_deg) @ np.diag(np.asarray(flips, float) * np.asarray(voxel_size_mm, float))
    a[:3, 3] = origin
    return a


AFFINES = [
    np.diag([0.47, 0.47, 1.0, 1.0]),
    _oblique_affine((0.8, 0.8, 0.8), (0, 0, 0), (-1, 1, 1), (90, -120, -60)),  # radiological x flip
    _oblique_affine((0.47, 0.47, 1.1), (12, -7, 25), (1, -1, 1), (-80.5, 101.0, -33.3)),
    _oblique_affine((1.0, 2.0, 3.0), (90, 0, 0), (-1, 1, -1), (5, 6, 7)),  # coronal-like permutation
]


@pytest.mark.parametrize("affine", AFFINES)
def test_voxel_world_coordinates_agree_with_nibabel(affine):
    rng = np.random.default_rng(0)
    data = rng.random((7, 9, 5)).astype(np.float32)
    image = sitk_image_from_volume(Volume(data, affine))
    for ijk in [(0, 0, 0), (6, 8, 4), (3, 1, 2), (5, 7, 0)]:
        ras = nib.affines.apply_affine(affine, ijk)
        lps = np.asarray(image.TransformIndexToPhysicalPoint(tuple(int(v) for v in ijk)))
        np.testing.assert_allclose(lps * [-1, -1, 1], ras, atol=1e-9)
        assert image.GetPixel(*[int(v) for v in ijk]) == data[ijk]


@pytest.mark.parametrize("affine", AFFINES)
def test_conversion_matches_itk_reading_the_nifti_file(tmp_path, affine):
    """ITK's own NIfTI reader (an independent RAS->LPS implementation) gives the same image."""
    data = np.random.default_rng(1).random((6, 8, 5)).astype(np.float32)
    path = save_volume(tmp_path / "x.nii.gz", data, affine)
    ours = sitk_image_from_volume(Volume(data, affine))
    itk = sitk.ReadImage(str(path))
    np.testing.assert_allclose(ours.GetOrigin(), itk.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(ours.GetSpacing(), itk.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(ours.GetDirection(), itk.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(itk))


@pytest.mark.parametrize("affine", AFFINES)
def test_volume_round_trip(affine):
    data = np.arange(6 * 7 * 8, dtype=np.int32).reshape(6, 7, 8)
    back = volume_from_sitk_image(sitk_image_from_volume(Volume(data, affine), dtype=None))
    np.testing.assert_array_equal(back.data, data)
    assert back.data.dtype == np.int32
    np.testing.assert_allclose(back.affine, affine, atol=1e-9)


def test_sheared_affine_and_wrong_dimensionality_are_refused():
    sheared = np.eye(4)
    sheared[0, 1] = 0.3
    with pytest.raises(InputFileError, match="shear"):
        sitk_image_from_volume(Volume(np.zeros((4, 4, 4), np.float32), sheared))
    with pytest.raises(InputFileError, match="4-D"):
        sitk_image_from_volume(Volume(np.zeros((4, 4, 4, 2), np.float32), np.eye(4)))


@pytest.mark.parametrize("center", [None, np.array([10.0, -20.0, 30.0])])
def test_transform_conversion_acts_on_points_like_the_ras_matrix(center):
    m = rigid([7.0, -4.0, 9.0], [3.0, -8.0, 5.5], center=np.array([1.0, 2.0, 3.0]))
    tf = itk_transform_from_ras(m, center)
    for p_ras in [np.zeros(3), np.array([50.0, -30.0, 12.0]), np.array([-70.0, 80.0, -40.0])]:
        expected = m[:3, :3] @ p_ras + m[:3, 3]
        got_lps = np.asarray(tf.TransformPoint(tuple(p_ras * [-1, -1, 1])))
        np.testing.assert_allclose(got_lps * [-1, -1, 1], expected, atol=1e-9)
    np.testing.assert_allclose(ras_from_itk_transform(tf), m, atol=1e-9)


def test_image_affine_helper_inverts_the_conversion():
    image = sitk_image_from_volume(Volume(np.zeros((3, 4, 5), np.float32), AFFINES[2]))
    np.testing.assert_allclose(affine_from_sitk_image(image), AFFINES[2], atol=1e-9)

"""Resampling through world transforms, label transfer, and transform files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.io.nifti import Volume, save_volume
from napari_qsm_ms.registration.conversion import sitk_image_from_volume
from napari_qsm_ms.registration.resample import (
    MATRIX_KEY,
    labels_to_native,
    load_transform,
    resample_volume,
    save_transform,
)

from . import _head as H
from .conftest import FIXED_SHAPE, MOVING_SHAPE, fixed_affine, moving_affine

GRADIENT = np.array([0.3, -0.2, 0.5])


def _linear_field(shape, affine) -> Volume:
    """f(world point) = GRADIENT . p + 1: linear interpolation reproduces it exactly."""
    pts = H.grid_points(shape, affine)
    return Volume((pts @ GRADIENT + 1.0).astype(np.float64), affine)


def test_linear_resampling_through_a_rigid_transform_is_exact_on_a_linear_field():
    motion = H.rigid((4.0, -6.0, 8.0), (5.0, -3.0, 2.0))
    source = _linear_field(MOVING_SHAPE, moving_affine())
    out = resample_volume(source, FIXED_SHAPE, fixed_affine(), motion, interpolation="linear")
    assert out.shape == FIXED_SHAPE and out.dtype == np.float32
    pts = H.grid_points(FIXED_SHAPE, fixed_affine())
    mapped = pts @ motion[:3, :3].T + motion[:3, 3]
    expected = mapped @ GRADIENT + 1.0
    inside = np.linalg.norm(mapped - H.CENTER_RAS, axis=-1) < 70  # well inside the source field of view
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-3)


def test_outside_the_field_of_view_gets_the_default_value():
    source = Volume(np.ones((10, 10, 10), np.float32), np.eye(4))
    far = np.eye(4)
    far[:3, 3] = 1000
    assert not resample_volume(source, (5, 5, 5), far).any()


def test_label_transfer_is_nearest_neighbour_and_keeps_labels():
    t2_aff = fixed_affine()
    labels = H.head_labels(H.grid_points(FIXED_SHAPE, t2_aff))
    labels[labels == 3] = 1234  # a large id that blending would destroy
    motion = H.rigid((3.0, 2.0, -5.0), (4.0, -2.0, 6.0))
    native_shape, native_aff = (80, 90, 100), H.coronal_affine((1.5, 1.5, 1.5), (80, 90, 100))
    native = labels_to_native(labels, t2_aff, native_shape, native_aff, motion)
    assert native.dtype == labels.dtype
    assert set(np.unique(native)) <= set(np.unique(labels))
    # agreement with the analytic labels of the moved head on the native grid (inside the T2* slab)
    pts = H.grid_points(native_shape, native_aff)
    inv = np.linalg.inv(motion)
    truth = H.head_labels(pts @ inv[:3, :3].T + inv[:3, 3])
    truth[truth == 3] = 1234
    t2_vox = (pts @ inv[:3, :3].T + inv[:3, 3] - t2_aff[:3, 3]) @ np.linalg.inv(t2_aff[:3, :3]).T
    in_slab = np.all((t2_vox > 1) & (t2_vox < np.array(FIXED_SHAPE) - 2), axis=-1)
    wm_t, wm_n = truth[in_slab] == 1234, native[in_slab] == 1234
    dice = 2 * (wm_t & wm_n).sum() / (wm_t.sum() + wm_n.sum())
    assert dice > 0.9
    assert not native[~np.all((t2_vox > -1) & (t2_vox < np.array(FIXED_SHAPE)), axis=-1)].any()


def test_labels_survive_a_round_trip_to_a_finer_native_grid_and_back():
    t2_aff = fixed_affine()
    labels = H.head_labels(H.grid_points(FIXED_SHAPE, t2_aff)).astype(np.int32)
    motion = H.rigid((5.0, 0.0, 0.0), (2.0, 0.0, 0.0))
    # native grid: the T2* grid, rotated by the motion, sampled 4x finer in-plane
    fine_aff = motion @ t2_aff @ np.diag([0.25, 0.25, 0.25, 1.0])
    fine_aff[:3, 3] = (motion @ t2_aff)[:3, 3] - (motion @ t2_aff)[:3, :3] @ [0.375, 0.375, 0.375]
    fine_shape = tuple(4 * n for n in FIXED_SHAPE)
    native = labels_to_native(labels, t2_aff, fine_shape, fine_aff, motion)
    back = resample_volume(Volume(native, fine_aff), FIXED_SHAPE, t2_aff, motion, interpolation="nearest")
    assert (back == labels).mean() > 0.999


def test_saved_transform_round_trips_and_itk_resamples_the_same(tmp_path):
    motion = H.rigid((6.0, -2.0, 3.0), (-4.0, 7.0, 1.5))
    tfm, js = save_transform(tmp_path / "x_xfm.tfm", tmp_path / "x_xfm.json", motion,
                             center_ras=H.CENTER_RAS, metadata={"mutual_information": 0.7})
    np.testing.assert_allclose(load_transform(js), motion, atol=1e-12)
    np.testing.assert_allclose(load_transform(tfm), motion, atol=1e-6)
    doc = json.loads(js.read_text())
    assert doc["mutual_information"] == 0.7 and "SimpleITK" in doc["software"]
    np.testing.assert_allclose(np.array(doc["matrix_ras_series_to_t2starw"]) @ motion, np.eye(4), atol=1e-9)
    # an independent consumer: ITK reads the .tfm and resamples the NIfTI files it reads itself
    moving = H.render(MOVING_SHAPE, moving_affine(), "t1", motion=motion, seed=4)
    mpath = save_volume(tmp_path / "m.nii.gz", moving.data, moving.affine)
    fpath = save_volume(tmp_path / "f.nii.gz", np.zeros(FIXED_SHAPE, np.float32), fixed_affine())
    itk_out = sitk.Resample(sitk.ReadImage(str(mpath)), sitk.ReadImage(str(fpath)), sitk.ReadTransform(str(tfm)),
                            sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    ours = resample_volume(moving, FIXED_SHAPE, fixed_affine(), motion)
    np.testing.assert_allclose(sitk.GetArrayFromImage(itk_out).transpose(2, 1, 0), ours, atol=1e-4)


def test_bad_transform_files_are_refused(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_transform(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({MATRIX_KEY: np.diag([2.0, 1, 1, 1]).tolist()}))
    with pytest.raises(InputFileError, match="not rigid"):
        load_transform(bad)
    junk = tmp_path / "junk.tfm"
    junk.write_text("not a transform\n")
    with pytest.raises(InputFileError, match="junk.tfm: not a readable"):
        load_transform(junk)


def test_sitk_image_keeps_label_dtype():
    img = sitk_image_from_volume(Volume(np.zeros((4, 4, 4), np.int32), np.eye(4)), dtype=None)
    assert img.GetPixelID() == sitk.sitkInt32

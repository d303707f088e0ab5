"""The napari reader and writer: world coordinates survive, labels round-trip exactly."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms._reader import get_reader, read_path, role_from_filename
from napari_qsm_ms._writer import write_image, write_labels
from napari_qsm_ms.errors import QSMMSError
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import load_volume
from tests.io.test_nifti import random_affine


def layer_world(kwargs, idx):
    """World (RAS mm) of a layer-data voxel index, through the layer's metadata."""
    view = kwargs["metadata"]["canonical"]
    return (view.canonical_affine @ np.r_[np.asarray(idx, float), 1.0])[:3]


@pytest.mark.parametrize("seed", range(6))
def test_world_coordinates_survive_the_reader_oblique_and_lps(tmp_path, seed):
    rng = np.random.default_rng(seed)
    affine = random_affine(rng)  # permuted, flipped (LPS-like) and oblique
    data = rng.normal(size=(7, 8, 9)).astype(np.float32)
    path = tmp_path / f"img{seed}.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    [(layer_data, kwargs, kind)] = read_path(path)
    assert kind == "image"
    for _ in range(10):
        src = np.array([rng.integers(0, n) for n in data.shape])
        world = affine @ np.r_[src, 1.0]
        # find that voxel's value in the layer data and check its world position matches
        view = kwargs["metadata"]["canonical"]
        canon_idx = np.rint(np.linalg.inv(view.canonical_affine) @ world)[:3].astype(int)
        assert layer_data[tuple(canon_idx)] == data[tuple(src)]
        np.testing.assert_allclose(layer_world(kwargs, canon_idx), world[:3], atol=1e-6)
    # display geometry: scale = voxel sizes, translate = canonical origin
    np.testing.assert_allclose(kwargs["scale"], np.sqrt((view.canonical_affine[:3, :3] ** 2).sum(0)))
    np.testing.assert_allclose(kwargs["translate"], view.canonical_affine[:3, 3])


@pytest.mark.parametrize("seed", range(4))
def test_labels_written_by_the_writer_reload_identical(tmp_path, seed):
    rng = np.random.default_rng(seed)
    affine = random_affine(rng)
    labels = rng.integers(0, 400 if seed % 2 else 20, size=(6, 7, 5)).astype(np.int32)
    src = tmp_path / "sub-01_desc-lesions_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), str(src))
    [(layer_data, kwargs, kind)] = read_path(src)
    assert kind == "labels" and kwargs["metadata"]["contour"] == 1
    layer_data = layer_data.copy()
    layer_data[0, 0, 0] = 7  # an edit in the viewer
    out = write_labels(str(tmp_path / "edited.nii.gz"), layer_data, kwargs)
    vol = load_volume(out[0], dtype=None)
    expected = labels.copy()
    src_idx = np.rint(kwargs["metadata"]["canonical"].canonical_to_source_index([0, 0, 0])).astype(int)
    expected[tuple(src_idx)] = 7
    np.testing.assert_array_equal(vol.data, expected)
    np.testing.assert_allclose(vol.affine, affine, atol=1e-5)
    assert np.issubdtype(vol.data.dtype, np.integer)


def test_image_writer_and_plain_layers(tmp_path):
    data = np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)
    out = write_image(str(tmp_path / "x"), data, {"scale": (1, 2, 3), "translate": (4, 5, 6), "metadata": {}})
    vol = load_volume(out[0])
    assert out[0].endswith(".nii.gz")
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine[:3, :3], np.diag([1, 2, 3]))
    np.testing.assert_allclose(vol.affine[:3, 3], [4, 5, 6])


def test_roles_from_names():
    assert role_from_filename("sub-01_part-mag_T2starw.nii.gz") == "magnitude"
    assert role_from_filename("sub-01_desc-refgm_dseg.nii.gz") == "refgm"
    assert role_from_filename("aseg.nii") == "labels"
    assert role_from_filename("foo_mask.nii.gz") == "labels"
    assert role_from_filename("t1.nii.gz") == "image"


def test_subject_folder_gives_named_layers(tmp_path):
    study = StudyFiles.at(tmp_path)
    sub = study.subject("01")
    shape, affine = (10, 12, 6), np.diag([0.47, 0.47, 1.0, 1.0])
    sub.anat.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones(shape, np.float32), affine), str(sub.magnitude))
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), affine), str(sub.phase))
    sub.phase_json.write_text(json.dumps({"EchoTime": 0.0177, "MagneticFieldStrength": 7}))
    sub.deriv.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.full(shape, 0.01, np.float32), affine), str(sub.chimap))
    for target in (tmp_path, sub.study / "sub-01", sub.deriv.parent):
        assert get_reader(str(target)) is not None
        layers = read_path(target)
        names = [kw["name"] for _, kw, _ in layers]
        assert names[0] == "T2* magnitude" and "QSM (ppm)" in names
        assert {"lesions", "tissue", "refwm", "refgm"} <= set(names)  # empty, ready to draw
        qsm = next(kw for _, kw, _ in layers if kw["name"] == "QSM (ppm)")
        assert qsm["contrast_limits"] == (-0.15, 0.15) and qsm["metadata"]["derived_from_qsm"]
        les = next(kw for _, kw, _ in layers if kw["name"] == "lesions")
        assert les["metadata"]["path"] == sub.lesions and les["metadata"]["subject"] == sub


def test_reader_declines_other_things(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    assert get_reader(str(tmp_path / "x.txt")) is None
    # a folder that is not a study: a reader that says why (issue 12 item 9), not a silent None
    refuse = get_reader(str(tmp_path))
    with pytest.raises(QSMMSError, match="not a NIfTI file, a sub-\\* folder or a study"):
        refuse(str(tmp_path))

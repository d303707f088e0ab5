"""NIfTI loading, writing, canonical orientation and atomic writes."""

from __future__ import annotations

import gzip
import os
import warnings

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.io.atomic import atomic_path, atomic_write_text
from napari_qsm_ms.io.nifti import (
    check_same_grid,
    from_canonical,
    load_volume,
    save_volume,
    to_canonical,
    voxel_size_from_affine,
)


def random_affine(rng: np.random.Generator, *, flip_lps: bool = True) -> np.ndarray:
    """A random oblique affine with permuted axes and (optionally) LPS-like flips."""
    from scipy.spatial.transform import Rotation

    perm = rng.permutation(3)
    signs = rng.choice([-1.0, 1.0], size=3) if flip_lps else np.ones(3)
    base = np.zeros((3, 3))
    base[perm, np.arange(3)] = signs * rng.uniform(0.4, 1.5, size=3)
    rot = Rotation.from_rotvec(rng.normal(size=3) * np.deg2rad(15)).as_matrix()
    affine = np.eye(4)
    affine[:3, :3] = rot @ base
    affine[:3, 3] = rng.uniform(-100, 100, size=3)
    return affine


@pytest.mark.parametrize("seed", range(8))
def test_canonical_round_trip_keeps_world_coordinates(seed):
    rng = np.random.default_rng(seed)
    affine = random_affine(rng)
    data = rng.normal(size=tuple(rng.integers(3, 9, size=3)))
    canon, view = to_canonical(data, affine)
    # Every canonical voxel maps to the same world point as its source voxel.
    idx_canon = np.array([rng.integers(0, n) for n in canon.shape])
    src_idx = np.rint(view.canonical_to_source_index(idx_canon)).astype(int)
    assert canon[tuple(idx_canon)] == data[tuple(src_idx)]
    world_c = view.canonical_affine @ np.r_[idx_canon, 1]
    world_s = affine @ np.r_[src_idx, 1]
    np.testing.assert_allclose(world_c, world_s, atol=1e-9)
    # The canonical affine's axes point mostly along +R, +A, +S.
    axes = view.canonical_affine[:3, :3]
    assert all(np.argmax(np.abs(axes[:, i])) == i and axes[i, i] > 0 for i in range(3))
    assert canon.shape == view.canonical_shape
    np.testing.assert_array_equal(from_canonical(canon, view), data)


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    affine = random_affine(rng)
    data = rng.normal(size=(5, 6, 7)).astype(np.float32)
    path = save_volume(tmp_path / "a.nii.gz", data, affine)
    vol = load_volume(path)
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine, affine, atol=1e-5)
    np.testing.assert_allclose(vol.voxel_size_mm, voxel_size_from_affine(affine), rtol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["a.nii.gz"]  # no temporary left behind


def test_labels_keep_integer_type(tmp_path):
    labels = np.random.default_rng(2).integers(0, 300, size=(4, 5, 6)).astype(np.int32)
    path = save_volume(tmp_path / "l_dseg.nii.gz", labels, np.eye(4))
    vol = load_volume(path, dtype=None)
    assert np.issubdtype(vol.data.dtype, np.integer)
    np.testing.assert_array_equal(vol.data, labels)


def write(path, data, affine=np.eye(4)):
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # nibabel warns on singular affines
        warnings.simplefilter("ignore")
        nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def write_zero_zoom(path):
    """A NIfTI whose qform is off and whose sform collapses the third axis (no usable geometry)."""
    raw = bytearray(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)).to_bytes())
    raw[252:256] = np.array([0, 1], dtype="<i2").tobytes()  # qform_code 0, sform_code 1
    raw[312:328] = np.zeros(4, dtype="<f4").tobytes()  # srow_z = 0
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.write_bytes(b""), p)[1], "file is empty"),
        (lambda p: (p.write_bytes(gzip.compress(b"not a nifti header at all")), p)[1], "cannot be read as NIfTI"),
        (lambda p: write(p, np.zeros((4, 4, 4, 3), np.float32)), "is 4-D"),
        (lambda p: write(p, np.full((4, 4, 4), np.nan, np.float32)), "NaN"),
        (lambda p: write(p, np.zeros((4, 4), np.float32)), "is 2-D"),
        (lambda p: write_zero_zoom(p), "singular"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, make, message):
    path = make(tmp_path / "sub-01_part-mag_T2starw.nii.gz")
    with pytest.raises(InputFileError) as info:
        load_volume(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(path)) and message in text


def test_truncated_gzip_is_reported(tmp_path):
    path = write(tmp_path / "t.nii.gz", np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputFileError, match="cannot be read"):
        load_volume(path)


def test_check_same_grid_names_the_other_file(tmp_path):
    a = load_volume(write(tmp_path / "a.nii", np.ones((4, 4, 4), np.float32)))
    b = load_volume(write(tmp_path / "b.nii", np.ones((4, 4, 5), np.float32)))
    c = load_volume(write(tmp_path / "c.nii", np.ones((4, 4, 4), np.float32), np.diag([1, 1, 2, 1.0])))
    with pytest.raises(InputFileError, match=r"b\.nii: shape"):
        check_same_grid(a, b)
    with pytest.raises(InputFileError, match=r"c\.nii: affine differs"):
        check_same_grid(a, c)
    check_same_grid(a, a)


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = atomic_write_text(tmp_path / "votes.tsv", "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash in the middle")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["votes.tsv"]


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        target = atomic_write_text(tmp_path / "shared.tsv", "x\n")
    finally:
        os.umask(old)
    assert (target.stat().st_mode & 0o777) == 0o644

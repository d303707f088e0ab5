"""Automatic candidates: only voxels abnormal on all three contrasts, >= 2 mm, apart from drawn lesions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qsm_ms.errors import InputFileError, ParameterError
from napari_qsm_ms.io.nifti import load_volume
from napari_qsm_ms.rating.consensus import subject_candidate_keys
from napari_qsm_ms.rating.proposals import propose_candidates, propose_subject, proposals_path, robust_z

from ._helpers import AFFINE, make_subject, save_nifti

SHAPE = (40, 40, 20)
VOXEL = (1.0, 1.0, 2.0)


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    brain = np.zeros(SHAPE, bool)
    brain[4:36, 4:36, 2:18] = True
    tissue = np.where(brain, 3, 0).astype(np.uint8)
    tissue[4:8] = np.where(brain[4:8], 2, 0)  # a cortex slab with other intensities
    base = {"mag": (100.0, 60.0), "flair": (200.0, 260.0), "csfn": (300.0, 150.0)}  # (wm, cortex)
    imgs = {}
    for key, (wm, gm) in base.items():
        img = np.where(tissue == 3, wm, np.where(tissue == 2, gm, 0.0)) + rng.normal(0, 3.0, SHAPE)
        imgs[key] = img.astype(np.float32)
    truth = {}
    blobs = {  # name: (slices, abnormal on mag, flair, csfn)
        "lesion_a": ((slice(10, 14), slice(10, 14), slice(5, 7)), (True, True, True)),
        "lesion_b": ((slice(20, 23), slice(25, 28), slice(10, 12)), (True, True, True)),
        "t2_only": ((slice(28, 32), slice(10, 14), slice(8, 10)), (True, False, False)),
        "no_csfn": ((slice(12, 16), slice(26, 30), slice(13, 15)), (True, True, False)),
        "tiny": ((slice(30, 31), slice(30, 31), slice(4, 5)), (True, True, True)),
        "small": ((slice(30, 32), slice(22, 23), slice(12, 13)), (True, True, True)),
        "cortical": ((slice(5, 7), slice(18, 22), slice(8, 10)), (True, True, True)),
        "drawn": ((slice(24, 28), slice(14, 18), slice(4, 6)), (True, True, True)),
    }
    for name, (slc, (m, f, c)) in blobs.items():
        if m:
            imgs["mag"][slc] += 60
        if f:
            imgs["flair"][slc] += 120
        if c:
            imgs["csfn"][slc] -= 100
        truth[name] = slc
    drawn = np.zeros(SHAPE, np.int32)
    drawn[blobs["drawn"][0]] = 4
    return imgs, brain, tissue, drawn, truth


def test_robust_z_per_tissue_class():
    imgs, brain, tissue, _, _ = _scene()
    z = robust_z(imgs["mag"], brain, tissue)
    assert z[~brain].max() == 0
    # each class is centred on its own median: both near 0 although their means differ by 40
    assert abs(np.median(z[tissue == 3])) < 0.05 and abs(np.median(z[tissue == 2])) < 0.2
    assert 0.9 < np.median(np.abs(z[tissue == 3])) / 0.6745 < 1.1


def test_proposals_find_the_abnormal_blobs_only():
    imgs, brain, tissue, drawn, truth = _scene()
    props = propose_candidates(imgs["mag"], imgs["flair"], imgs["csfn"], brain, VOXEL, tissue=tissue, drawn=drawn)
    ids = sorted(set(np.unique(props)) - {0})
    assert ids == [5, 6, 7, 8]  # numbered after the largest drawn id (4)
    found = {name: set(np.unique(props[slc])) - {0} for name, slc in truth.items()}
    assert len(found["lesion_a"]) == 1 and len(found["lesion_b"]) == 1 and len(found["cortical"]) == 1
    assert found["small"] == {8}  # 2 voxels of 1 mm: extent 2 mm, kept
    assert found["t2_only"] == set() and found["no_csfn"] == set()
    assert found["tiny"] == set()  # a single voxel: 1 mm in-plane
    assert found["drawn"] == set()  # already a drawn candidate
    assert (props[truth["lesion_a"]] > 0).mean() > 0.9
    # largest first: lesion_a (32 voxels) before lesion_b (18) and cortical (16)
    assert found["lesion_a"] == {5}


def test_min_extent_uses_voxel_size():
    imgs, brain, tissue, _, truth = _scene()
    args = (imgs["mag"], imgs["flair"], imgs["csfn"], brain)
    kept = lambda props: bool(set(np.unique(props[truth["small"]])) - {0})  # noqa: E731
    assert kept(propose_candidates(*args, VOXEL, tissue=tissue, min_extent_mm=2.0))
    assert not kept(propose_candidates(*args, VOXEL, tissue=tissue, min_extent_mm=2.5))
    assert not kept(propose_candidates(*args, (0.5, 0.5, 2.0), tissue=tissue, min_extent_mm=2.0))  # 1 mm long
    assert kept(propose_candidates(*args, (0.5, 0.5, 2.0), tissue=tissue, min_extent_mm=1.0))


def test_bad_parameters():
    imgs, brain, _, _, _ = _scene()
    with pytest.raises(ParameterError, match="shape"):
        propose_candidates(imgs["mag"], imgs["flair"][:-1], imgs["csfn"], brain, VOXEL)
    with pytest.raises(ParameterError, match="voxel_size_mm"):
        propose_candidates(imgs["mag"], imgs["flair"], imgs["csfn"], brain, (1, 0, 1))
    with pytest.raises(ParameterError, match="z_threshold"):
        propose_candidates(imgs["mag"], imgs["flair"], imgs["csfn"], brain, VOXEL, z_threshold=0)


def test_propose_subject_writes_a_separate_label_file(tmp_path):
    imgs, brain, tissue, drawn, truth = _scene()
    subject = make_subject(tmp_path)
    save_nifti(subject.lesions, drawn)
    save_nifti(subject.magnitude, imgs["mag"])
    save_nifti(subject.brain_mask, brain.astype(np.uint8))
    save_nifti(subject.tissue, tissue)
    save_nifti(subject.coreg_series("flair"), imgs["flair"])
    with pytest.raises(InputFileError, match="coregister"):
        propose_subject(subject)
    save_nifti(subject.coreg_series("csfn"), imgs["csfn"])
    path = propose_subject(subject)
    assert path == proposals_path(subject)
    assert path.name == "sub-01_desc-proposals_dseg.nii.gz"
    vol = load_volume(path, dtype=None)
    assert np.allclose(vol.affine, AFFINE)
    assert sorted(set(np.unique(vol.data)) - {0}) == [5, 6, 7, 8]
    assert (load_volume(subject.lesions, dtype=None).data == drawn).all()  # drawn lesions untouched
    keys, present = subject_candidate_keys(subject)
    assert keys == {("drawn", 4), ("proposed", 5), ("proposed", 6), ("proposed", 7), ("proposed", 8)}
    assert present == {"drawn", "proposed"}

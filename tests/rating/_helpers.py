"""Shared fixtures for the rating tests: a tiny subject with a lesions label map on disk."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from napari_qsm_ms.io.layout import StudyFiles, SubjectFiles

AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def blob_labels(shape=(24, 24, 12), n=5, seed=0) -> np.ndarray:
    """``n`` separate cubic lesions with ids 1..n."""
    labels = np.zeros(shape, dtype=np.int32)
    rng = np.random.default_rng(seed)
    for lid in range(1, n + 1):
        x = 2 + 4 * ((lid - 1) % 5)
        y = 2 + 5 * ((lid - 1) // 5)
        z = int(rng.integers(2, shape[2] - 3))
        labels[x : x + 2, y : y + 3, z : z + 2] = lid
    return labels


def make_subject(tmp_path: Path, label: str = "01", n_lesions: int = 5) -> SubjectFiles:
    study = StudyFiles.at(tmp_path / "study")
    (study.root / f"sub-{label}" / "anat").mkdir(parents=True, exist_ok=True)
    subject = study.subject(label)
    save_nifti(subject.lesions, blob_labels(n=n_lesions))
    return subject


def make_phantom_subject(
    root: Path, label: str = "01", shape=(64, 64, 32), voxel_size_mm=(2.0, 2.0, 4.0), seed=0, n_lesions=(6, 3, 2)
):
    """A subject on disk from the simulated phantom: T2* magnitude, the three coregistered series,
    brain mask, tissue, lesions (ids 1..N) and a Chimap. Returns (SubjectFiles, Phantom)."""
    from napari_qsm_ms.io.nifti import save_volume
    from napari_qsm_ms.simulate.phantom import make_phantom

    ph = make_phantom(shape=shape, voxel_size_mm=voxel_size_mm, seed=seed, n_lesions=n_lesions)
    study = StudyFiles.at(root)
    (study.root / f"sub-{label}" / "anat").mkdir(parents=True, exist_ok=True)
    subject = study.subject(label)
    aff = ph.affine
    save_volume(subject.magnitude, ph.t2star_magnitude.astype(np.float32), aff)
    save_volume(subject.coreg_series("wmn"), ph.t1_wmn.astype(np.float32), aff)
    save_volume(subject.coreg_series("csfn"), ph.t1_csfn.astype(np.float32), aff)
    save_volume(subject.coreg_series("flair"), ph.flair.astype(np.float32), aff)
    save_volume(subject.brain_mask, ph.brain_mask.astype(np.uint8), aff)
    save_volume(subject.tissue, ph.tissue.astype(np.uint8), aff)
    save_volume(subject.lesions, ph.lesion_ids.astype(np.int32), aff)
    save_volume(subject.chimap, ph.chi_ppm.astype(np.float32), aff)
    return subject, ph

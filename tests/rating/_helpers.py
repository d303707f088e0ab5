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

"""Small hand-made subjects written as NIfTI files for the statistics tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.io.atomic import atomic_write_tsv
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import save_volume

SHAPE = (32, 32, 12)
VOXEL_MM = (0.5, 0.5, 1.2)


def affine_for(voxel_mm=VOXEL_MM):
    a = np.diag([*voxel_mm, 1.0])
    a[:3, 3] = [-8.0, -8.0, -7.0]
    return a


def make_arrays(seed: int = 0):
    """Random chi with three lesions (wm 1, cortical 2, mixed 3) and their references.

    Tissue: WM (3) for x < 16, cortex (2) for x >= 16. The mixed lesion straddles x = 16.
    """
    rng = np.random.default_rng(seed)
    chi = rng.normal(0.0, 0.05, SHAPE).astype(np.float32)
    tissue = np.full(SHAPE, 3, np.uint8)
    tissue[16:] = 2
    tissue[:, :, 0] = 1  # CSF slab, touches nothing below
    lesions = np.zeros(SHAPE, np.int32)
    refwm = np.zeros(SHAPE, np.int32)
    refgm = np.zeros(SHAPE, np.int32)
    lesions[3:7, 3:7, 3:6] = 1
    refwm[9:12, 3:7, 4] = 1
    lesions[22:26, 3:7, 3:6] = 2
    refgm[28:31, 3:7, 4] = 2
    lesions[13:19, 20:24, 5:8] = 3  # 3 columns WM (13-15), 3 cortex (16-18)
    refwm[8:11, 20:24, 6] = 3
    refgm[23:26, 20:24, 6] = 3
    chi[lesions == 1] += 0.03
    chi[lesions == 2] -= 0.03
    brain_mask = np.ones(SHAPE, bool)
    return dict(chi=chi, tissue=tissue, lesions=lesions, refwm=refwm, refgm=refgm, brain_mask=brain_mask)


def write_subject(root, label="01", arrays=None, classes=("wm", "cortical", "mixed"), skip=(), affine=None):
    """Write one subject's derivatives; ``skip`` names files to leave out."""
    arrays = make_arrays() if arrays is None else arrays
    sub = StudyFiles.at(root).subject(label)
    (root / f"sub-{label}" / "anat").mkdir(parents=True, exist_ok=True)
    aff = affine_for() if affine is None else affine
    files = {
        "chimap": "chi",
        "tissue": "tissue",
        "lesions": "lesions",
        "refwm": "refwm",
        "refgm": "refgm",
        "brain_mask": "brain_mask",
    }
    for attr, key in files.items():
        if attr not in skip:
            save_volume(getattr(sub, attr), arrays[key], aff)
    if classes is not None and "lesions_tsv" not in skip:
        atomic_write_tsv(
            sub.lesions_tsv,
            pd.DataFrame(
                {
                    "lesion_id": list(range(1, len(classes) + 1)),
                    "class": list(classes),
                    "consensus": "agreed",
                    "votes": [f"{c}:3" for c in classes],
                    "n_raters": 3,
                    "agreement": 1.0,
                }
            ),
        )
    return sub


@pytest.fixture
def subject_dir(tmp_path):
    arrays = make_arrays()
    sub = write_subject(tmp_path, arrays=arrays)
    return sub, arrays

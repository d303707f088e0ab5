"""Small synthetic subject on disk for the annotation / review / autosave GUI tests.

The files are stored in LPS voxel order (affine diag(-1, -1, 2)), so the layers (closest RAS
canonical orientation) differ from the files: every write back must undo the flips.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from napari_qsm_ms.io.layout import TISSUE_CORTEX, TISSUE_CSF, TISSUE_WM, StudyFiles, SubjectFiles

SHAPE = (40, 36, 12)
VOXEL_MM = (1.0, 1.0, 2.0)
AFFINE = np.array(
    [[-1.0, 0, 0, 20.0], [0, -1.0, 0, 18.0], [0, 0, 2.0, -12.0], [0, 0, 0, 1]]
)


def tissue_array() -> np.ndarray:
    """0 outside, CSF shell, cortex ring (3 voxels), WM core; in file (LPS) voxel order."""
    x, y = np.mgrid[: SHAPE[0], : SHAPE[1]]
    r = np.sqrt(((x - 19.5) / 17.0) ** 2 + ((y - 17.5) / 15.0) ** 2)
    plane = np.zeros(SHAPE[:2], np.uint8)
    plane[r < 1.0] = TISSUE_CSF
    plane[r < 0.92] = TISSUE_CORTEX
    plane[r < 0.72] = TISSUE_WM
    out = np.repeat(plane[:, :, None], SHAPE[2], axis=2)
    out[:, :, 0] = 0
    return out


def write(path: Path, data: np.ndarray, dtype=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(data if dtype is None else data.astype(dtype))
    img = nib.Nifti1Image(arr, AFFINE)
    img.set_sform(AFFINE, code=1)
    img.set_qform(AFFINE, code=1)
    nib.save(img, str(path))
    return path


def make_subject(root: Path, *, with_tissue: bool = True, label: str = "01") -> SubjectFiles:
    """A study with one subject: magnitude, phase json, Chimap, mask, coregistered series, tissue."""
    study = StudyFiles.at(root)
    sub = study.subject(label) if (root / f"sub-{label}").exists() else SubjectFiles(root, label)
    tissue = tissue_array()
    rng = np.random.default_rng(0)
    mag = np.choose(tissue, [0.0, 300.0, 700.0, 900.0, 600.0]).astype(np.float32) + rng.normal(0, 5, SHAPE)
    chi = np.choose(tissue, [0.0, 0.0, 0.02, -0.03, 0.05]).astype(np.float32)
    chi[10, 8:24, 5] = 0.4  # a "vessel" (a line of voxels along y on slice 5, file order)
    write(sub.magnitude, mag.astype(np.float32))
    write(sub.chimap, chi)
    write(sub.brain_mask, (tissue > 0).astype(np.uint8))
    write(sub.coreg_series("csfn"), np.choose(tissue, [0.0, 50.0, 500.0, 800.0, 600.0]).astype(np.float32))
    write(sub.coreg_series("wmn"), np.choose(tissue, [0.0, 100.0, 800.0, 200.0, 700.0]).astype(np.float32))
    write(sub.coreg_series("flair"), np.choose(tissue, [0.0, 50.0, 600.0, 500.0, 550.0]).astype(np.float32))
    if with_tissue:
        write(sub.tissue, tissue, np.uint8)
    return sub


def ball_indices(center_canonical, radius_vox: float, shape) -> tuple[np.ndarray, ...]:
    """Canonical voxel indices of an in-plane disc on slices ``center[2]-1 .. center[2]+1``."""
    cx, cy, cz = center_canonical
    idx = []
    for z in (cz - 1, cz, cz + 1):
        if not 0 <= z < shape[2]:
            continue
        x, y = np.mgrid[: shape[0], : shape[1]]
        rr = radius_vox if z == cz else radius_vox * 0.7
        sel = (x - cx) ** 2 + (y - cy) ** 2 <= rr**2
        xs, ys = np.nonzero(sel)
        idx.append((xs, ys, np.full(xs.size, z)))
    return tuple(np.concatenate([p[i] for p in idx]) for i in range(3))


def test_subject_files_are_lps(tmp_path):
    sub = make_subject(tmp_path)
    img = nib.load(str(sub.magnitude))
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert img.shape == SHAPE

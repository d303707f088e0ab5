"""A tiny simulated study and fast step parameters shared by the cohort tests and benchmark."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from napari_qsm_ms.cohort.steps import SUBJECT_STEPS
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.simulate.study import simulate_study

TINY = {
    "shape": (48, 48, 24),
    "voxel_size_mm": (2.0, 2.0, 3.0),
    "n_lesions": (2, 1, 1),
    "raw_voxel_mm": {"wmn": 3.0, "csfn": 3.0, "flair": 3.0},
}
#: Fast settings: TKD instead of MEDI, one series coregistered briefly, few bootstrap resamples;
#: one registration thread, because SimpleITK's multi-threaded metric is not bit-reproducible.
FAST = {
    "recon": {"inversion": "tkd"},
    "coregister": {"series": ["flair"], "max_iterations": 20, "threads": 1},
    "stats": {"n_resamples": 20},
}
SUBJECT_AND_AGREEMENT = (*SUBJECT_STEPS, "agreement")
FAST_ARGS = ["--set", "recon.inversion=tkd", "--set", 'coregister.series=["flair"]',
             "--set", "coregister.max_iterations=20",
             "--set", "coregister.threads=1", "--set", "stats.n_resamples=20"]


def make_tiny_study(root: Path, n: int = 3, seed: int = 2) -> StudyFiles:
    return simulate_study(root, n, seed=seed, **TINY)


def copy_study(src: StudyFiles | Path, dst: Path) -> StudyFiles:
    shutil.copytree(src.root if isinstance(src, StudyFiles) else src, dst)
    return StudyFiles.at(dst)


def derivative_contents(study: StudyFiles) -> dict[str, object]:
    """Every NIfTI (as an array) and table under derivatives/qsm-ms, by relative path.

    JSON sidecars and step records are left out: they hold timings and run metadata.
    """
    out: dict[str, object] = {}
    for path in sorted(study.derivatives.rglob("*")):
        rel = str(path.relative_to(study.root))
        if path.name.endswith((".nii.gz", ".nii")):
            out[rel] = np.asanyarray(nib.load(str(path)).dataobj)
        elif path.suffix == ".tsv":
            out[rel] = pd.read_csv(path, sep="\t")
    return out


def hidden_files(root: Path) -> list[Path]:
    """Temporary names (``.name.*``) anywhere in the study: none may remain after a run."""
    return [p for p in root.rglob(".*") if p.name != ".qsm-ms-stats"]

"""A small simulated study with paramagnetic rims and central veins, and its ``qsm-ms stats``.

Shared by the marker tests of the lesion table and the Review dock: built once per test session
(simulate_study with ``MarkerSpec``, the true susceptibility plus white noise written as the
subject's Chimap, then ``qsm-ms stats``), copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from napari_qsm_ms.cli import main
from napari_qsm_ms.io.layout import StudyFiles, SubjectFiles
from napari_qsm_ms.io.nifti import load_volume, save_volume
from napari_qsm_ms.rating.markers import record_marker_vote, run_round_consensus
from napari_qsm_ms.simulate.markers import MarkerSpec
from napari_qsm_ms.simulate.study import simulate_study

SPEC = MarkerSpec(prl_fraction=0.5, cvs_fraction=0.4, eccentric_fraction=0.2)
NOISE_PPM = 0.004
SEED, SHAPE, N_LESIONS = 1, (80, 96, 48), (6, 1, 1)


def _build(root: Path) -> None:
    study = simulate_study(root, 1, seed=SEED, shape=SHAPE, voxel_size_mm=(1.0, 1.0, 1.0),
                           n_lesions=N_LESIONS, markers=SPEC, raters=None)
    sub = study.subject("01")
    truth = load_volume(study.root / "derivatives/simulation/sub-01/anat/sub-01_desc-truth_Chimap.nii.gz")
    noise = np.random.default_rng(0).normal(0.0, NOISE_PPM, truth.shape).astype(np.float32)
    save_volume(sub.chimap, truth.data.astype(np.float32) + noise, truth.affine)
    assert main(["stats", str(study.root)]) == 0


def marker_study(tmp_path_factory) -> Path:
    """The session's simulated study (built on first use)."""
    base = tmp_path_factory.getbasetemp() / "markers_study"
    if not (StudyFiles.at(base).stats_dir / "lesions.tsv").exists():
        shutil.rmtree(base, ignore_errors=True)
        _build(base)
    return base


def marker_subject(tmp_path_factory, tmp_path) -> SubjectFiles:
    """A fresh copy (in ``tmp_path``) of the session's simulated study; returns its subject."""
    base = marker_study(tmp_path_factory)
    shutil.copytree(base, tmp_path / "study")
    return StudyFiles.at(tmp_path / "study").subject("01")


def exported_lesions(subject: SubjectFiles) -> pd.DataFrame:
    """``stats/lesions.tsv`` of ``qsm-ms stats``, one row per lesion id."""
    table = pd.read_csv(StudyFiles.at(subject.study).stats_dir / "lesions.tsv", sep="\t")
    return table.drop_duplicates("lesion_id").set_index("lesion_id")


def same_value(a, b) -> bool:
    """A dock value equals the exported one (an empty text is written as an empty TSV cell,
    which reads back as NaN)."""
    if isinstance(b, float) and np.isnan(b):
        return a is None or a == "" or (not isinstance(a, str) and np.isnan(float(a)))
    return a == b


def rate_rims(subject: SubjectFiles, prl: dict[int, str], cvs: dict[int, str]) -> None:
    """Three raters agree on ``prl`` / ``cvs`` answers per lesion (rim round), the round's
    consensus is written (``run_round_consensus``, as ``qsm-ms consensus --round rim``) and
    ``qsm-ms stats`` re-run."""
    for rater in ("ann", "bob", "cy"):
        for lid in sorted(set(prl) | set(cvs)):
            answer = cvs.get(lid)
            record_marker_vote(subject, rater, lid, prl=prl.get(lid), cvs=answer,
                               cvs_exclusion="not_visible" if answer == "excluded" else "")
    run_round_consensus(StudyFiles.at(subject.study), [subject])
    assert main(["stats", str(subject.study)]) == 0

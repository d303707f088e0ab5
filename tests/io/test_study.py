"""The study scanner names every problem precisely."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms.errors import StudyLayoutError
from napari_qsm_ms.io.layout import StudyFiles, subject_from_path
from napari_qsm_ms.io.study import scan_study

SHAPE = (8, 9, 6)
AFFINE = np.diag([0.5, 0.5, 1.0, 1.0])


def save(path, data, affine=AFFINE):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))


def make_study(root, labels=("01", "02")):
    rng = np.random.default_rng(0)
    (root / "dataset_description.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    study = StudyFiles.at(root)
    for label in labels:
        sub = study.subject(label)
        save(sub.magnitude, rng.uniform(1, 2, SHAPE).astype(np.float32))
        save(sub.phase, rng.uniform(-np.pi, np.pi, SHAPE).astype(np.float32))
        sub.phase_json.write_text(json.dumps({"EchoTime": 0.0177, "MagneticFieldStrength": 7}))
        save(sub.lesions, np.zeros(SHAPE, np.uint8))
    return study


def problems(report, label="01"):
    return [(f.path.name, f.problem, f.severity) for f in report.for_subject(label)]


def test_clean_study_has_no_errors(tmp_path):
    study = make_study(tmp_path)
    report = scan_study(study.root)
    assert [s.label for s in report.subjects] == ["01", "02"]
    assert report.errors == []
    assert report.subjects[0].shape == SHAPE and report.subjects[0].b0_t == 7.0
    # optional series are noted as info
    assert any(sev == "info" and "optional" in prob for _, prob, sev in problems(report))
    report.raise_for_errors()


def _first_error(report):
    return [(f.path.name, f.problem) for f in report.errors]


@pytest.mark.parametrize(
    "breakage, file_name, text",
    [
        (lambda s: s.phase.unlink(), "sub-01_part-phase_T2starw.nii.gz", "missing (required)"),
        (lambda s: s.magnitude.write_bytes(b""), "sub-01_part-mag_T2starw.nii.gz", "empty"),
        (lambda s: s.phase_json.unlink(), "sub-01_part-phase_T2starw.json", "missing: EchoTime"),
        (
            lambda s: s.phase_json.write_text('{"EchoTime": 17.7, "MagneticFieldStrength": 7}'),
            "sub-01_part-phase_T2starw.json",
            "milliseconds",
        ),
        (lambda s: save(s.phase, np.zeros((8, 9, 7), np.float32)), "sub-01_part-phase_T2starw.nii.gz", "shape"),
        (
            lambda s: save(s.phase, np.ones(SHAPE, np.float32), np.diag([0.5, 0.5, 1.2, 1])),
            "sub-01_part-phase_T2starw.nii.gz",
            "affine differs",
        ),
        (lambda s: save(s.lesions, np.zeros(SHAPE + (2,), np.uint8)), "sub-01_desc-lesions_dseg.nii.gz", "4-D"),
        (
            lambda s: save(s.magnitude, np.full(SHAPE, np.nan, np.float32)),
            "sub-01_part-mag_T2starw.nii.gz",
            "NaN",
        ),
        (
            lambda s: save(s.lesions, np.full(SHAPE, 0.5, np.float32)),
            "sub-01_desc-lesions_dseg.nii.gz",
            "non-integer",
        ),
        (lambda s: save(s.chimap, np.zeros((3, 3, 3), np.float32)), "sub-01_Chimap.nii.gz", "shape"),
    ],
)
def test_each_problem_is_named(tmp_path, breakage, file_name, text):
    study = make_study(tmp_path)
    breakage(study.subject("01"))
    report = scan_study(study.root)
    errors = _first_error(report)
    assert any(name == file_name and text in problem for name, problem in errors), errors
    assert report.for_subject("02") == [f for f in report.findings if f.subject == "02"]
    assert not [f for f in report.errors if f.subject == "02"]
    with pytest.raises(StudyLayoutError) as info:
        report.raise_for_errors()
    assert "\n" not in str(info.value) and file_name in str(info.value)


def test_multi_echo_needs_echo_times(tmp_path):
    study = make_study(tmp_path, ("01",))
    sub = study.subject("01")
    save(sub.phase, np.full(SHAPE + (3,), 0.5, np.float32))
    save(sub.magnitude, np.ones(SHAPE + (3,), np.float32))
    assert any("EchoTime" in f.problem for f in scan_study(study.root).errors)
    sub.phase_json.write_text(json.dumps({"EchoTime": [0.005, 0.01, 0.015], "MagneticFieldStrength": 7}))
    assert scan_study(study.root).errors == []


def test_missing_and_empty_study(tmp_path):
    assert "not found" in scan_study(tmp_path / "nope").errors[0].problem
    assert "no sub-" in scan_study(tmp_path).errors[0].problem


def test_subject_selection_and_paths(tmp_path):
    study = make_study(tmp_path, ("2", "10", "1"))
    assert study.subject_labels() == ["1", "2", "10"]
    assert [s.label for s in study.subjects(["sub-10"])] == ["10"]
    with pytest.raises(StudyLayoutError, match="sub-7"):
        study.subjects(["7"])
    sub = study.subject("10")
    assert sub.chimap.name == "sub-10_Chimap.nii.gz"
    assert sub.refwm.name == "sub-10_desc-refwm_dseg.nii.gz"
    assert sub.votes_tsv("alice").name == "sub-10_rater-alice_votes.tsv"
    assert sub.coreg_series("csfn").name == "sub-10_space-T2starw_acq-csfn_T1w.nii.gz"
    assert subject_from_path(sub.chimap) == sub
    assert subject_from_path(sub.magnitude) == sub
    with pytest.raises(StudyLayoutError):
        sub.votes_tsv("bad name!")

"""`qsm-ms coregister` and the study-level functions, on a simulated study with known misalignments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_qsm_ms.cli import main
from napari_qsm_ms.io.nifti import check_same_grid, load_volume, save_volume
from napari_qsm_ms.registration.qc import apply_nudge, nudge_matrix
from napari_qsm_ms.registration.resample import load_transform, resample_volume
from napari_qsm_ms.registration.rigid import max_displacement_mm, rotation_angle_deg
from napari_qsm_ms.registration.resample import labels_to_native
from napari_qsm_ms.registration.study import (
    coregister_subject,
    labels_to_series,
    load_coregistration,
    save_nudged,
)
from napari_qsm_ms.simulate.study import read_transform, simulate_study
from napari_qsm_ms.simulate.truth import TruthFiles


def simulated_subject(root, seed=3):
    study = simulate_study(root, 1, seed=seed, shape=(64, 64, 32), voxel_size_mm=(2.0, 2.0, 3.0),
                           raw_voxel_mm={"wmn": 2.5, "csfn": 2.5, "flair": 2.5}, oblique_deg=10, raters=None)
    return study.subjects()[0]


def truth_matrix(subject, key) -> np.ndarray:
    """Simulation truth in our convention (T2* world -> series world)."""
    return np.linalg.inv(read_transform(TruthFiles(subject.study, subject.label).transform(key)))


def brain_points(subject) -> np.ndarray:
    mask = load_volume(TruthFiles(subject.study, subject.label).brain_mask)
    idx = np.argwhere(mask.data > 0)
    return idx @ mask.affine[:3, :3].T + mask.affine[:3, 3]


def test_cli_coregisters_present_series_and_skips_missing_ones(tmp_path, capsys):
    subject = simulated_subject(tmp_path / "study")
    subject.raw_series("flair").unlink()
    assert main(["coregister", str(subject.study), "--subject", subject.label]) == 0
    captured = capsys.readouterr()
    assert "FLAIR.nii.gz not found, flair skipped" in captured.out
    # a log reads well: the subject is named once per line, each series is its own stage
    assert f"sub-{subject.label} sub-{subject.label}" not in captured.err
    assert f"sub-{subject.label} wmn: started" in captured.err
    fixed = load_volume(subject.magnitude)
    pts = brain_points(subject)
    for key in ("wmn", "csfn"):
        check_same_grid(fixed, load_volume(subject.coreg_series(key)))
        matrix = load_transform(subject.coreg_transform(key, ".json"))
        np.testing.assert_allclose(load_transform(subject.coreg_transform(key, ".tfm")), matrix, atol=1e-6)
        truth = truth_matrix(subject, key)
        assert max_displacement_mm(matrix, truth, pts) < 0.5
        assert rotation_angle_deg(np.linalg.inv(matrix) @ truth) < 0.5
        meta = json.loads(subject.coreg_transform(key, ".json").read_text())
        assert meta["mutual_information"] > meta["initial_mutual_information"] > 0
        assert meta["moving_image"].endswith(subject.raw_series(key).name)
        assert meta["parameters"]["histogram_bins"] == 32
        assert f"sub-{subject.label} {key}: MI" in captured.out
    assert not subject.coreg_series("flair").exists()
    # lesion labels drawn on the T2* grid carried to the CSF-nulled MPRAGE's own grid
    on_csfn = labels_to_series(subject, "csfn")
    raw = load_volume(subject.raw_series("csfn"))
    np.testing.assert_allclose(on_csfn.affine, raw.affine)
    lesions = load_volume(subject.lesions, dtype=None)
    ideal = labels_to_native(lesions.data, lesions.affine, raw.shape, raw.affine, truth_matrix(subject, "csfn"))
    assert set(np.unique(on_csfn.data)) <= set(np.unique(lesions.data))
    both = (ideal > 0) | (on_csfn.data > 0)
    assert both.sum() > 50 and (ideal[both] == on_csfn.data[both]).mean() > 0.9


def test_cli_refuses_an_empty_series_with_one_line_naming_the_file(tmp_path, capsys):
    subject = simulated_subject(tmp_path / "study")
    raw = load_volume(subject.raw_series("csfn"))
    save_volume(subject.raw_series("csfn"), np.zeros_like(raw.data), raw.affine)
    assert main(["coregister", str(subject.study), "--series", "csfn"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("qsm-ms coregister: error: ")  # one line (progress lines come before it)
    assert [line for line in err if "error" in line] == [err[-1]]
    assert "acq-csfn_T1w.nii.gz" in err[-1] and "empty (all zero)" in err[-1]
    assert not subject.coreg_series("csfn").exists()
    assert not subject.coreg_transform("csfn", ".json").exists()


def test_missing_magnitude_is_a_clear_error(tmp_path, capsys):
    subject = simulated_subject(tmp_path / "study")
    subject.magnitude.unlink()
    assert main(["coregister", str(subject.study)]) == 2
    assert "part-mag_T2starw.nii.gz: T2* magnitude not found" in capsys.readouterr().err


def test_help_documents_every_option_with_default(capsys):
    with pytest.raises(SystemExit):
        main(["coregister", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--series", "--initializer", "--bins", "--min-mi", "--min-overlap", "--smoothing-mm"):
        assert option in text
    assert "default: 0.1" in text and "mm" in text


def test_nudged_transform_rewrites_the_outputs(tmp_path):
    subject = simulated_subject(tmp_path / "study", seed=5)
    done = coregister_subject(subject, keys=("csfn",))
    automatic = done.results["csfn"].matrix_ras
    fixed = load_volume(subject.magnitude)
    nudge = nudge_matrix((1.5, 0.0, -1.0), (0.0, 2.0, 0.0), (0.0, 0.0, 0.0))
    save_nudged(subject, "csfn", nudge, translation_mm=(1.5, 0.0, -1.0), rotation_deg=(0.0, 2.0, 0.0))
    matrix, meta = load_coregistration(subject, "csfn")
    np.testing.assert_allclose(matrix, apply_nudge(automatic, nudge), atol=1e-9)
    np.testing.assert_allclose(load_transform(subject.coreg_transform("csfn", ".tfm")), matrix, atol=1e-6)
    assert meta["manual_nudges"][0]["translation_mm"] == [1.5, 0.0, -1.0]
    assert meta["mutual_information"] == pytest.approx(done.results["csfn"].mutual_information)
    expected = resample_volume(load_volume(subject.raw_series("csfn")), fixed.shape, fixed.affine, matrix)
    np.testing.assert_allclose(load_volume(subject.coreg_series("csfn")).data, expected, atol=1e-4)
    # the nudge moves the displayed anatomy by +1.5 mm in x: the nudged image at x equals the
    # automatic one at x - 1.5 mm (checked on transforms: M' (x) = M (x - t) for a pure shift)
    shift = nudge_matrix((1.5, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    p = np.array([10.0, 20.0, 30.0, 1.0])
    np.testing.assert_allclose(apply_nudge(automatic, shift) @ p, automatic @ (p - [1.5, 0, 0, 0]), atol=1e-9)


def test_refinement_from_a_nudged_transform(tmp_path, capsys):
    """A deliberately wrong saved transform (8 mm off) is refined back by --from-saved."""
    subject = simulated_subject(tmp_path / "study", seed=5)
    coregister_subject(subject, keys=("flair",))
    save_nudged(subject, "flair", nudge_matrix((8.0, 0.0, 0.0), (0.0, 0.0, 4.0), (0.0, 0.0, 0.0)))
    pts = brain_points(subject)
    truth = truth_matrix(subject, "flair")
    assert max_displacement_mm(load_transform(subject.coreg_transform("flair", ".json")), truth, pts) > 7
    assert main(["coregister", str(subject.study), "--series", "flair", "wmn", "--from-saved"]) == 0
    assert "wmn: no saved transform, started from the scanner affines" in capsys.readouterr().out
    refined = load_transform(subject.coreg_transform("flair", ".json"))
    assert max_displacement_mm(refined, truth, pts) < 0.5
    meta = json.loads(subject.coreg_transform("flair", ".json").read_text())
    assert meta["start"] == "saved transform" and len(meta["start_matrix_ras"]) == 4

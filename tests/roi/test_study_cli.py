"""build_subject_references and ``qsm-ms rois`` on a tiny study written with real NIfTI files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.cli import main
from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.io.layout import StudyFiles, TISSUE_CORTEX
from napari_qsm_ms.io.nifti import save_volume
from napari_qsm_ms.roi.annotation import AnnotationState
from napari_qsm_ms.roi.references import build_references
from napari_qsm_ms.roi.study import axial_axis, build_subject_references

from ._synthetic import random_lesions, tissue_map

AFFINE = np.diag([0.47, 0.47, 1.0, 1.0])


def _make_study(root, labels=("01", "02")):
    study = StudyFiles.at(root)
    for i, label in enumerate(labels):
        sub = study.subject(label)
        les = random_lesions(10 + i)
        tis = tissue_map(les.shape)
        save_volume(sub.magnitude, np.ones(les.shape, np.float32), AFFINE)
        save_volume(sub.lesions, les, AFFINE, dtype=np.int16)
        save_volume(sub.tissue, tis, AFFINE, dtype=np.uint8)
    return study


def test_subject_references_match_the_pure_function_and_are_recorded(tmp_path):
    study = _make_study(tmp_path)
    sub = study.subject("01")
    les = np.asarray(nib.load(sub.lesions).dataobj)
    tis = np.asarray(nib.load(sub.tissue).dataobj)
    # classes from lesions.tsv for some lesions; the rest are suggested from the tissue
    pd.DataFrame({"lesion_id": [1, 2, 3], "class": ["cortical", "rejected", "disputed"],
                  "consensus": ["agreed", "agreed", "disputed"]}).to_csv(sub.lesions_tsv, sep="\t", index=False)
    state = AnnotationState()
    state.add_flag(1, "small")
    state.add_flag(1, "refwm_too_small")  # stale flag from an earlier build
    state.extra["keep_me"] = True
    state.save(sub.annotation_json)

    result = build_subject_references(sub, gap_mm=0.8, min_voxels=15)
    expected = build_references(les, tis, (0.47, 0.47, 1.0), lesion_classes={1: "cortical", 2: "rejected"},
                                gap_mm=0.8, min_voxels=15)
    refwm = nib.load(sub.refwm)
    assert np.array_equal(np.asarray(refwm.dataobj), expected.refwm)
    assert np.array_equal(np.asarray(nib.load(sub.refgm).dataobj), expected.refgm)
    assert np.allclose(refwm.affine, AFFINE) and refwm.get_data_dtype() == np.int32
    assert result.table.set_index("lesion_id").loc[1, "class"] == "cortical"
    assert result.table.set_index("lesion_id").loc[1, "class_source"] == "lesions.tsv"
    assert "no_reference_for_class_rejected" in result.table.set_index("lesion_id").loc[2, "flags"]

    saved = json.loads(sub.annotation_json.read_text())
    assert saved["keep_me"] is True
    assert saved["parameters"]["gap_mm"] == 0.8 and saved["parameters"]["min_voxels"] == 15
    assert saved["parameters"]["slice_axis"] == 2
    back = AnnotationState.load(sub.annotation_json)
    assert "small" in back.lesion(1).flags
    too_small = expected.table[expected.table["flags"].str.contains("reference_too_small")]
    for lesion_id, part in zip(too_small.lesion_id, too_small.part):
        assert ("refwm_too_small" if part == "wm" else "refgm_too_small") in back.lesion(lesion_id).flags
    if not ((expected.table.lesion_id == 1) & expected.table["flags"].str.contains("too_small")).any():
        assert "refwm_too_small" not in back.lesion(1).flags


def test_cli_rois_writes_every_subject(tmp_path, capsys):
    study = _make_study(tmp_path)
    code = main(["rois", str(tmp_path), "--gap-mm", "1.2", "--ring-mm", "2", "--max-distance-px", "8",
                 "--all-slices", "--min-voxels", "5", "--gap-3d"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "sub-01:" in out and "sub-02:" in out
    for sub in study.subjects():
        les = np.asarray(nib.load(sub.lesions).dataobj)
        tis = np.asarray(nib.load(sub.tissue).dataobj)
        voxel = nib.load(sub.lesions).header.get_zooms()[:3]
        exp = build_references(les, tis, voxel, gap_mm=1.2, ring_mm=2, max_distance_px=8,
                               all_slices=True, min_voxels=5, gap_3d=True)
        assert np.array_equal(np.asarray(nib.load(sub.refwm).dataobj), exp.refwm)
        params = json.loads(sub.annotation_json.read_text())["parameters"]
        assert params["all_slices"] is True and params["gap_3d"] is True
    # only one subject
    study.subject("02").refwm.unlink()
    assert main(["rois", str(tmp_path), "--subject", "01"]) == 0
    assert not study.subject("02").refwm.exists()


def test_cli_excludes_vessels_on_request(tmp_path, capsys):
    study = _make_study(tmp_path, labels=("01",))
    sub = study.subject("01")
    assert main(["rois", str(tmp_path)]) == 0
    ref = np.asarray(nib.load(sub.refwm).dataobj)
    vessels = np.zeros(ref.shape, np.uint8)
    vessels[ref > 0] = 1
    vessels[::2] = 0
    save_volume(sub.vessels, vessels, AFFINE)
    assert main(["rois", str(tmp_path), "--exclude-vessels"]) == 0
    ref2 = np.asarray(nib.load(sub.refwm).dataobj)
    assert not (ref2[vessels > 0] > 0).any()
    assert np.array_equal(ref2[vessels == 0] > 0, ref[vessels == 0] > 0)


def test_references_stay_inside_the_brain_mask(tmp_path, capsys):
    study = _make_study(tmp_path, labels=("01",))
    sub = study.subject("01")
    assert main(["rois", str(tmp_path)]) == 0
    ref = np.asarray(nib.load(sub.refwm).dataobj)
    mask = np.ones(ref.shape, np.uint8)
    mask[:, :32] = 0  # an eroded half
    assert (ref[mask == 0] > 0).any()
    save_volume(sub.brain_mask, mask, AFFINE)
    assert main(["rois", str(tmp_path)]) == 0
    ref2 = np.asarray(nib.load(sub.refwm).dataobj)
    assert not (ref2[mask == 0] > 0).any()
    assert np.array_equal(ref2[mask > 0], ref[mask > 0])
    assert json.loads(sub.annotation_json.read_text())["parameters"]["brain_mask"] == sub.brain_mask.name
    assert main(["rois", str(tmp_path), "--no-brain-mask"]) == 0
    assert np.array_equal(np.asarray(nib.load(sub.refwm).dataobj), ref)
    save_volume(sub.brain_mask, mask[:, :, :-1], AFFINE)
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and "desc-brain_mask.nii.gz: shape" in err


def _run(argv, capsys):
    """Exit code and the error line (progress lines on stderr are skipped)."""
    code = main(argv)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("qsm-ms rois: error:")]
    assert len(lines) <= 1
    return code, "".join(line + "\n" for line in lines)


def test_cli_bad_inputs_give_one_line_errors(tmp_path, capsys):
    study = _make_study(tmp_path, labels=("01",))
    sub = study.subject("01")
    les = np.asarray(nib.load(sub.lesions).dataobj)

    sub.lesions.rename(tmp_path / "moved.nii.gz")
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "desc-lesions_dseg.nii.gz: lesion label file not found" in err
    (tmp_path / "moved.nii.gz").rename(sub.lesions)

    save_volume(sub.tissue, tissue_map(les.shape)[:, :, :-1], AFFINE, dtype=np.uint8)
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and "desc-tissue_dseg.nii.gz: shape" in err

    save_volume(sub.tissue, tissue_map(les.shape), np.diag([0.5, 0.5, 1.0, 1.0]), dtype=np.uint8)
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and "desc-tissue_dseg.nii.gz: affine differs" in err

    bad = tissue_map(les.shape)
    bad[0, 0, 0] = 9
    save_volume(sub.tissue, bad, AFFINE, dtype=np.uint8)
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and "tissue codes must be 0-4, found [9]" in err
    save_volume(sub.tissue, tissue_map(les.shape), AFFINE, dtype=np.uint8)

    save_volume(sub.lesions, les + 0.5, AFFINE, dtype=np.float32)
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and "desc-lesions_dseg.nii.gz: lesion label labels must be whole numbers" in err
    save_volume(sub.lesions, les, AFFINE, dtype=np.int16)

    save_volume(sub.magnitude, np.ones((10, 10, 10), np.float32), AFFINE)
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and "desc-lesions_dseg.nii.gz: shape" in err and "part-mag_T2starw" in err
    save_volume(sub.magnitude, np.ones(les.shape, np.float32), AFFINE)

    sub.lesions_tsv.write_text("id\tkind\n1\twm\n")
    code, err = _run(["rois", str(tmp_path)], capsys)
    assert code == 2 and "lesions.tsv: missing column(s) class, lesion_id" in err
    sub.lesions_tsv.unlink()

    code, err = _run(["rois", str(tmp_path), "--exclude-vessels"], capsys)
    assert code == 2 and "desc-vessels_mask.nii.gz: vessel mask file not found" in err

    code, err = _run(["rois", str(tmp_path), "--gap-mm", "-1"], capsys)
    assert code == 2 and "gap_mm must be >= 0" in err

    code, err = _run(["rois", str(tmp_path), "--subject", "07"], capsys)
    assert code == 2 and "sub-07" in err

    # no failure left a reference file behind
    assert not sub.refwm.exists() and not sub.refgm.exists()
    assert sorted(p.name for p in sub.deriv.iterdir() if p.name.startswith(".")) == []


def test_axial_axis_from_the_affine():
    assert axial_axis(AFFINE) == 2
    coronal = np.array([[0.47, 0, 0, 0], [0, 0, 1.0, 0], [0, 0.47, 0, 0], [0, 0, 0, 1]])
    assert axial_axis(coronal) == 1


def test_subject_references_follow_the_axial_axis_of_the_affine(tmp_path):
    """Lesions stored with the axial axis first: references use axis 0 as slice axis."""
    study = StudyFiles.at(tmp_path)
    sub = study.subject("01")
    les = random_lesions(4)
    tis = tissue_map(les.shape)
    affine = np.array([[0, 0.47, 0, 0], [0, 0, 0.47, 0], [1.0, 0, 0, 0], [0, 0, 0, 1]])
    save_volume(sub.lesions, np.moveaxis(les, 2, 0), affine, dtype=np.int16)
    save_volume(sub.tissue, np.moveaxis(tis, 2, 0), affine, dtype=np.uint8)
    build_subject_references(sub)
    expected = build_references(les, tis, (0.47, 0.47, 1.0))
    assert np.array_equal(np.asarray(nib.load(sub.refgm).dataobj), np.moveaxis(expected.refgm, 2, 0))
    assert (expected.refgm > 0).any() and TISSUE_CORTEX in tis


def test_build_without_writing_leaves_no_files(tmp_path):
    study = _make_study(tmp_path, labels=("01",))
    sub = study.subject("01")
    res = build_subject_references(sub, write=False)
    assert (res.refwm > 0).any()
    assert not sub.refwm.exists() and not sub.annotation_json.exists()


def test_bad_lesions_tsv_ids(tmp_path):
    study = _make_study(tmp_path, labels=("01",))
    sub = study.subject("01")
    sub.lesions_tsv.write_text("lesion_id\tclass\nx\twm\n")
    with pytest.raises(InputFileError, match="lesion_id must be whole numbers"):
        build_subject_references(sub)


def test_cancel_leaves_no_output_and_progress_reaches_one(tmp_path):
    from napari_qsm_ms.errors import CancelledError

    study = _make_study(tmp_path, labels=("01",))
    sub = study.subject("01")
    calls = []

    def cancel_midway(fraction, message):
        calls.append(fraction)
        if len(calls) == 4:
            raise CancelledError("cancelled by the user")

    with pytest.raises(CancelledError):
        build_subject_references(sub, progress=cancel_midway)
    assert not sub.refwm.exists() and not sub.refgm.exists() and not sub.annotation_json.exists()
    seen = []
    build_subject_references(sub, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 5

"""Relative susceptibility per lesion part, checked against numpy on the saved NIfTI files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.io.atomic import atomic_write_tsv
from napari_qsm_ms.io.nifti import save_volume
from napari_qsm_ms.stats.lesions import LESION_COLUMNS, relative_susceptibility
from napari_qsm_ms.stats.study import subject_stats

from .conftest import VOXEL_MM, affine_for, make_arrays, write_subject


def _nib(path):
    return np.asarray(nib.load(str(path)).dataobj)


def _row(table, lid, part):
    sel = table[(table["lesion_id"] == lid) & (table["part"] == part)]
    assert len(sel) == 1, table[["lesion_id", "part"]]
    return sel.iloc[0]


def test_values_equal_direct_numpy_on_files(subject_dir):
    sub, _ = subject_dir
    res = subject_stats(sub)
    t = res.lesions
    chi = _nib(sub.chimap).astype(np.float64)
    les, rw, rg, tis = (_nib(p) for p in (sub.lesions, sub.refwm, sub.refgm, sub.tissue))
    vox_mm3 = float(np.prod(VOXEL_MM))
    expected = {
        (1, "whole"): (les == 1, rw == 1),
        (2, "whole"): (les == 2, rg == 2),
        (3, "wm"): ((les == 3) & (tis == 3), rw == 3),
        (3, "cortical"): ((les == 3) & (tis == 2), rg == 3),
    }
    assert len(t) == 4
    for (lid, part), (lm, rm) in expected.items():
        row = _row(t, lid, part)
        assert row["lesion_voxels"] == lm.sum() > 0
        assert row["reference_voxels"] == rm.sum() > 0
        assert row["lesion_ppm"] == pytest.approx(chi[lm].mean(), abs=1e-9)
        assert row["reference_ppm"] == pytest.approx(chi[rm].mean(), abs=1e-9)
        assert row["relative_ppm"] == pytest.approx(chi[lm].mean() - chi[rm].mean(), abs=1e-9)
        assert row["lesion_sd_ppm"] == pytest.approx(chi[lm].std(ddof=1), rel=1e-6)
        assert row["lesion_volume_mm3"] == pytest.approx(lm.sum() * vox_mm3)
        assert row["reference_volume_mm3"] == pytest.approx(rm.sum() * vox_mm3)
        assert row["included"] and row["flags"] == ""
    assert _row(t, 3, "wm")["lesion_type"] == "mixed_wm"
    assert _row(t, 3, "cortical")["lesion_type"] == "mixed_cortical"
    assert _row(t, 3, "wm")["cortex_fraction"] == pytest.approx(0.5)
    assert _row(t, 1, "whole")["central_slice"] == 4
    assert list(t.columns[: len(LESION_COLUMNS)]) == LESION_COLUMNS
    assert _row(t, 1, "whole")["chimap_file"] == "derivatives/qsm-ms/sub-01/anat/sub-01_Chimap.nii.gz"
    assert _row(t, 2, "whole")["reference_file"].endswith("sub-01_desc-refgm_dseg.nii.gz")


def test_designed_shift_recovered_without_noise():
    a = make_arrays()
    chi = np.zeros_like(a["chi"])
    chi[a["tissue"] == 2] = 0.02
    chi[a["lesions"] == 1] += 0.015
    chi[(a["lesions"] == 3) & (a["tissue"] == 2)] -= 0.007
    t = relative_susceptibility(
        chi, a["lesions"], a["refwm"], a["refgm"], a["tissue"], {1: "wm", 2: "cortical", 3: "mixed"}
    )
    assert _row(t, 1, "whole")["relative_ppm"] == pytest.approx(0.015, abs=1e-7)
    assert _row(t, 2, "whole")["relative_ppm"] == pytest.approx(0.0, abs=1e-7)
    assert _row(t, 3, "cortical")["relative_ppm"] == pytest.approx(-0.007, abs=1e-7)
    assert _row(t, 3, "wm")["relative_ppm"] == pytest.approx(0.0, abs=1e-7)


def test_missing_qsm_flags_every_lesion(tmp_path):
    sub = write_subject(tmp_path, skip=("chimap",))
    res = subject_stats(sub)
    t = res.lesions
    assert len(t) == 4
    assert t["flags"].str.contains("no_qsm").all()
    assert t["relative_ppm"].isna().all() and not t["included"].any()
    assert res.info["status"] == "no QSM" and res.info["n_lesions"] == 3


def test_missing_reference_file_and_zero_voxel_reference(tmp_path):
    arrays = make_arrays()
    arrays["refgm"][arrays["refgm"] == 2] = 0  # cortical lesion 2: reference with zero voxels
    sub = write_subject(tmp_path, arrays=arrays, skip=("refwm",))
    t = subject_stats(sub).lesions
    r1 = _row(t, 1, "whole")
    assert "no_refwm_file" in r1["flags"] and "no_reference" in r1["flags"]
    assert np.isnan(r1["relative_ppm"]) and np.isfinite(r1["lesion_ppm"]) and not r1["included"]
    r2 = _row(t, 2, "whole")
    assert r2["flags"] == "no_reference" and r2["reference_voxels"] == 0
    assert np.isnan(r2["relative_ppm"]) and not r2["included"]
    # the mixed lesion's cortical part still has its reference: measured and included
    assert _row(t, 3, "cortical")["included"]
    assert not _row(t, 3, "wm")["included"]


def test_lesion_voxels_outside_qsm_mask_left_out_and_flagged(tmp_path):
    arrays = make_arrays()
    arrays["brain_mask"][3:5, 3:7, 3:6] = False  # half of lesion 1 outside the QSM mask
    arrays["chi"][5, 3, 3] = np.nan  # and one NaN voxel
    sub = write_subject(tmp_path, arrays=arrays)
    t = subject_stats(sub).lesions
    r = _row(t, 1, "whole")
    chi = _nib(sub.chimap).astype(np.float64)
    keep = (arrays["lesions"] == 1) & arrays["brain_mask"] & np.isfinite(chi)
    assert r["lesion_voxels"] == keep.sum() == 23
    assert "outside_qsm_mask:25" in r["flags"]
    assert r["lesion_ppm"] == pytest.approx(chi[keep].mean(), abs=1e-9)
    assert r["included"]


def test_excluded_rejected_disputed_and_class_fallback(tmp_path):
    sub = write_subject(tmp_path, classes=("rejected", "disputed"))  # lesion 3 has no class row
    sub.annotation_json.write_text(
        json.dumps(
            {"lesions": {"2": {"excluded": True, "exclusion_reason": "QSM artefact", "flags": ["checked"]}}}
        )
    )
    t = subject_stats(sub).lesions
    r1 = _row(t, 1, "whole")
    assert r1["class"] == "rejected" and "class:rejected" in r1["flags"] and not r1["included"]
    assert np.isfinite(r1["relative_ppm"])  # measured, but kept out of the tests
    r2 = _row(t, 2, "whole")
    assert "excluded:QSM artefact" in r2["flags"] and "annotation:checked" in r2["flags"]
    assert "class:disputed" in r2["flags"] and not r2["included"]
    r3 = _row(t, 3, "wm")  # cortex fraction 0.5 -> mixed, from tissue
    assert r3["class"] == "mixed" and "class_from_tissue" in r3["flags"] and r3["included"]


def test_no_lesions_tsv_falls_back_to_tissue(tmp_path):
    sub = write_subject(tmp_path, classes=None)
    res = subject_stats(sub)
    t = res.lesions
    assert t.drop_duplicates("lesion_id")["class"].tolist() == ["wm", "cortical", "mixed"]
    assert t["flags"].str.contains("class_from_tissue").all()
    assert res.info["class_source"].startswith("tissue")


def test_subject_without_lesions(tmp_path):
    arrays = make_arrays()
    for k in ("lesions", "refwm", "refgm"):
        arrays[k][:] = 0
    sub = write_subject(tmp_path, arrays=arrays, classes=None)
    res = subject_stats(sub)
    assert res.lesions.empty and res.info["n_lesions"] == 0
    sub2 = write_subject(tmp_path, label="02", skip=("lesions",))
    res2 = subject_stats(sub2)
    assert res2.lesions.empty and res2.info["n_lesions"] == 0 and res2.info["status"] == "no lesion file"


def test_grid_mismatch_is_a_one_line_error_naming_the_file(tmp_path):
    sub = write_subject(tmp_path)
    shifted = affine_for()
    shifted[0, 3] += 3.0
    save_volume(sub.refgm, make_arrays()["refgm"], shifted)
    with pytest.raises(InputFileError) as err:
        subject_stats(sub)
    msg = str(err.value)
    assert "\n" not in msg and str(sub.refgm) in msg and "affine" in msg


def test_non_integer_labels_refused(tmp_path):
    sub = write_subject(tmp_path)
    save_volume(sub.lesions, make_arrays()["lesions"] + 0.5, affine_for(), dtype=np.float32)
    with pytest.raises(InputFileError, match="non-integer"):
        subject_stats(sub)


def test_class_row_without_voxels_is_flagged(tmp_path):
    sub = write_subject(tmp_path)
    atomic_write_tsv(
        sub.lesions_tsv, pd.DataFrame({"lesion_id": [1, 2, 3, 7], "class": ["wm", "cortical", "mixed", "wm"]})
    )
    t = subject_stats(sub).lesions
    r = _row(t, 7, "whole")
    assert "not_in_lesion_map" in r["flags"] and r["lesion_voxels"] == 0 and not r["included"]


def test_vessel_voxels_in_roi_flagged(tmp_path):
    sub = write_subject(tmp_path)
    vessels = np.zeros(make_arrays()["lesions"].shape, np.uint8)
    vessels[4, 4, 3:6] = 1  # 3 voxels inside lesion 1
    save_volume(sub.vessels, vessels, affine_for())
    t = subject_stats(sub).lesions
    assert "vessel_voxels_in_lesion:3" in _row(t, 1, "whole")["flags"]
    # a flag only: the values are still those of the ROI files as saved
    assert _row(t, 1, "whole")["lesion_voxels"] == 48


def test_mixed_lesion_edge_cases_flagged():
    a = make_arrays()
    tissue = a["tissue"].copy()
    tissue[13:16, 20:22, 5:8] = 1  # part of the mixed lesion's WM side on CSF
    t = relative_susceptibility(
        a["chi"], a["lesions"], a["refwm"], a["refgm"], tissue, {1: "wm", 2: "cortical", 3: "mixed"}
    )
    r = _row(t, 3, "wm")
    assert "voxels_off_wm_and_cortex:18" in r["flags"]
    assert r["lesion_voxels"] == int(((a["lesions"] == 3) & (tissue == 3)).sum()) == 18
    # a "mixed" lesion entirely in WM: its cortical part is empty
    t = relative_susceptibility(
        a["chi"], a["lesions"], a["refwm"], a["refgm"], a["tissue"], {1: "mixed", 2: "cortical", 3: "mixed"}
    )
    r = _row(t, 1, "cortical")
    assert "empty_cortical_part" in r["flags"] and np.isnan(r["relative_ppm"]) and not r["included"]
    assert _row(t, 1, "wm")["included"]
    # no tissue map: mixed lesions cannot be split, whole-class lesions still measured
    t = relative_susceptibility(
        a["chi"], a["lesions"], a["refwm"], a["refgm"], None, {1: "wm", 2: "cortical", 3: "mixed"}
    )
    assert "no_tissue" in _row(t, 3, "wm")["flags"] and np.isnan(_row(t, 3, "wm")["relative_ppm"])
    assert _row(t, 1, "whole")["included"] and _row(t, 2, "whole")["included"]


def test_central_slice_follows_the_axial_axis_of_the_file(tmp_path):
    # a coronal-style file: array axis 1 runs along world S-I
    a = make_arrays()
    perm = {k: np.ascontiguousarray(np.swapaxes(v, 1, 2)) for k, v in a.items()}
    aff = np.array([[0.5, 0, 0, -8.0], [0, 0, 1.2, -7.0], [0, 0.5, 0, -8.0], [0, 0, 0, 1.0]])
    sub = write_subject(tmp_path, arrays=perm, affine=aff)
    t = subject_stats(sub).lesions
    assert _row(t, 1, "whole")["central_slice"] == 4  # lesion 1 spans slices 3..5 along S-I
    straight = relative_susceptibility(
        a["chi"], a["lesions"], a["refwm"], a["refgm"], a["tissue"], {1: "wm", 2: "cortical", 3: "mixed"}
    )
    np.testing.assert_allclose(
        t["relative_ppm"].to_numpy(float), straight["relative_ppm"].to_numpy(float), rtol=1e-6
    )


def test_without_brain_mask_file_exact_zero_chi_is_outside(tmp_path):
    arrays = make_arrays()
    arrays["chi"][3:5, 3:7, 3:6] = 0.0  # half of lesion 1 zeroed, as outside a QSM mask
    sub = write_subject(tmp_path, arrays=arrays, skip=("brain_mask",))
    res = subject_stats(sub)
    r = _row(res.lesions, 1, "whole")
    chi = _nib(sub.chimap).astype(np.float64)
    keep = (arrays["lesions"] == 1) & (chi != 0)
    assert r["lesion_voxels"] == keep.sum() == 24 and "outside_qsm_mask:24" in r["flags"]
    assert r["lesion_ppm"] == pytest.approx(chi[keep].mean(), abs=1e-9)
    assert "chi == 0" in res.info["qsm_mask"]

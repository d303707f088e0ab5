"""Rim and vein markers in the statistics (stats/markers.py and its hook in qsm-ms stats)."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from napari_qsm_ms.io.nifti import save_volume
from napari_qsm_ms.stats import markers as markers_mod
from napari_qsm_ms.stats.markers import (
    MARKER_LESION_COLUMNS,
    MARKER_SUBJECT_COLUMNS,
    rim_profile_figure,
    roc_auc,
    subject_markers,
)
from napari_qsm_ms.roi.rim import rim_profiles
from napari_qsm_ms.stats.study import compute_study

from .conftest import affine_for, make_arrays, write_subject


def _table(n_el, n_cvs, n_prl=0):
    n = max(n_el, 1)
    return pd.DataFrame(
        {
            "prl_suggested": [i < n_prl for i in range(n)],
            "cvs_eligible": [i < n_el for i in range(n)],
            "cvs_suggested": [i < n_cvs for i in range(n)],
        }
    )


@pytest.mark.parametrize(
    "n_el,n_cvs,p40,s3,s6",
    [
        (10, 4, True, True, False),  # 40 % exactly; 4 < 6 with 10 lesions
        (10, 3, False, True, False),
        (12, 6, True, True, True),
        (9, 3, False, True, False),  # Select-6* needs six, however few lesions (Mult Scler 2024;30:25-34)
        (6, 6, True, True, True),
        (9, 2, False, False, False),
        (0, 0, False, False, False),
    ],
)
def test_cvs_rules(n_el, n_cvs, p40, s3, s6):
    s = subject_markers(_table(n_el, n_cvs))
    assert (s["cvs_40pct"], s["cvs_select3"], s["cvs_select6"]) == (p40, s3, s6)
    assert s["n_cvs"] == n_cvs and s["n_cvs_eligible"] == n_el
    if n_el:
        assert s["cvs_fraction"] == pytest.approx(n_cvs / n_el)


def test_cvs_suggested_on_an_ineligible_lesion_does_not_count():
    t = pd.DataFrame(
        {"prl_suggested": [True, False], "cvs_eligible": [False, True], "cvs_suggested": [True, True]}
    )
    s = subject_markers(t)
    assert s["n_cvs"] == 1 and s["n_prl"] == 1


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_is_the_mann_whitney_statistic(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(40) < 0.4
    s = np.round(rng.normal(size=40) + y, 1)  # rounding makes ties
    u = sps.mannwhitneyu(s[y], s[~y]).statistic
    assert roc_auc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()))


def test_stats_tables_carry_marker_columns(tmp_path):
    arrays = make_arrays()
    sub = write_subject(tmp_path, "01", arrays)
    res = compute_study(tmp_path, n_resamples=50)
    for c in MARKER_LESION_COLUMNS:
        assert c in res.lesions.columns
    for c in MARKER_SUBJECT_COLUMNS:
        assert c in res.subjects.columns
    by_id = res.lesions.drop_duplicates("lesion_id").set_index("lesion_id")["rim_score_ppm"]
    assert by_id[[1, 3]].notna().all()  # WM and mixed lesions: judged in WM
    assert np.isnan(by_id[2])  # a cortical lesion has no WM edge: no rim measure
    assert res.lesions["vein_score"].isna().all()  # no T2* magnitude yet
    # with a T2* magnitude: a dark vein through the middle of lesion 3 (3 mm across)
    mag = np.full(arrays["lesions"].shape, 400.0, np.float32)
    mag[15:17, 21:23, :] = 120.0
    save_volume(sub.magnitude, mag, affine_for())
    res = compute_study(tmp_path, n_resamples=50)
    rows = res.lesions.drop_duplicates("lesion_id").set_index("lesion_id")
    assert rows["vein_score"].notna().all()
    assert bool(rows.loc[3, "cvs_eligible"]) and rows.loc[3, "vein_score"] > rows.loc[1, "vein_score"]
    subj = res.subjects.set_index("subject").loc["01"]
    assert subj["n_cvs_eligible"] >= 1
    assert any(str(p).endswith("part-mag_T2starw.nii.gz") for p in res.inputs["file"])


def test_rim_profile_figure(tmp_path):
    chi = np.zeros((30, 30, 20), np.float32)
    les = np.zeros(chi.shape, np.int32)
    zz, yy, xx = np.indices(chi.shape)
    r1 = np.sqrt((zz - 8) ** 2 + (yy - 15) ** 2 + (xx - 10) ** 2)
    r2 = np.sqrt((zz - 22) ** 2 + (yy - 15) ** 2 + (xx - 10) ** 2)
    les[r1 <= 4] = 1
    les[r2 <= 4] = 2
    chi[np.abs(r1 - 4) <= 1] = 0.05
    prof = rim_profiles(chi, les, (1, 1, 1))
    fig = rim_profile_figure(prof, [1], tmp_path / "rim.png")
    assert (tmp_path / "rim.png").stat().st_size > 1000
    assert len(fig.axes[0].lines) >= 4


def test_module_examples():
    result = doctest.testmod(markers_mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0

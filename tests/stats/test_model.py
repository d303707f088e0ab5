"""Mixed-effects model and subject bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.stats.model import bootstrap_means, mixed_model


def _cohort(seed=0, n_subjects=8, subject_sd=0.01, per_subject=6):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        u = rng.normal(0, subject_sd)
        for k in range(per_subject):
            rows.append(
                dict(
                    subject=f"{s:02d}",
                    lesion_id=k + 1,
                    part="whole",
                    **{"class": "wm"},
                    lesion_type="wm",
                    included=True,
                    relative_ppm=0.014 + u + rng.normal(0, 0.005),
                )
            )
        for k in range(2):
            rows.append(
                dict(
                    subject=f"{s:02d}",
                    lesion_id=100 + k,
                    part="whole",
                    **{"class": "cortical"},
                    lesion_type="cortical",
                    included=True,
                    relative_ppm=-0.018 + u + rng.normal(0, 0.005),
                )
            )
    return pd.DataFrame(rows)


def test_mixed_model_recovers_type_means_and_subject_variance():
    table = _cohort(subject_sd=0.01, n_subjects=12)
    m = mixed_model(table).set_index("term")
    assert m.loc["mean[wm]", "estimate_ppm"] == pytest.approx(0.014, abs=0.007)
    assert m.loc["mean[cortical]", "estimate_ppm"] == pytest.approx(-0.018, abs=0.007)
    assert m.loc["wm - cortical", "estimate_ppm"] == pytest.approx(0.032, abs=0.004)
    assert m.loc["wm - cortical", "p"] < 1e-6
    # subject variance clearly non-zero (true 1e-4 ppm^2), residual near 2.5e-5
    assert 2e-5 < m.loc["subject variance (ppm^2)", "estimate_ppm"] < 4e-4
    assert m.loc["residual variance (ppm^2)", "estimate_ppm"] == pytest.approx(2.5e-5, rel=0.5)
    # the contrast's CI is estimate +/- 1.96 SE
    r = m.loc["wm - cortical"]
    assert r["ci95_high_ppm"] - r["estimate_ppm"] == pytest.approx(1.959964 * r["se_ppm"], rel=1e-5)


def test_mixed_model_boundary_fit_reports_note_not_warning():
    # no between-subject variance: the random-effect variance lands on 0 (a ConvergenceWarning in
    # statsmodels); pytest turns escaped warnings into errors, so this also checks they are caught
    table = _cohort(subject_sd=0.0, n_subjects=6, seed=3)
    m = mixed_model(table)
    assert np.isfinite(m.set_index("term").loc["mean[wm]", "estimate_ppm"])
    assert m["note"].str.contains("boundary|singular|converge", case=False).all()


def test_mixed_model_too_few_subjects():
    table = _cohort(n_subjects=1)
    m = mixed_model(table)
    assert list(m["term"]) == ["model"] and "not fitted" in m["note"].iloc[0]
    assert mixed_model(table.iloc[0:0])["note"].iloc[0].startswith("not fitted")


def test_bootstrap_seeded_and_consistent():
    table = _cohort(n_subjects=10)
    a = bootstrap_means(table, n_resamples=500, seed=7)
    b = bootstrap_means(table, n_resamples=500, seed=7)
    c = bootstrap_means(table, n_resamples=500, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low_ppm"].dropna(), c["ci_low_ppm"].dropna())
    r = a.set_index(["set", "level"])
    wm = r.loc[("wm", "lesion")]
    assert wm["mean_ppm"] == pytest.approx(table.loc[table.lesion_type == "wm", "relative_ppm"].mean())
    assert wm["ci_low_ppm"] < wm["mean_ppm"] < wm["ci_high_ppm"]
    subj = table[table.lesion_type == "cortical"].groupby("subject")["relative_ppm"].mean()
    assert r.loc[("cortical", "subject"), "mean_ppm"] == pytest.approx(subj.mean())
    assert r.loc[("mixed_wm", "lesion"), "n"] == 0 and r.loc[("mixed_wm", "lesion"), "note"] == "empty set"


def test_bootstrap_single_subject_no_interval():
    table = _cohort(n_subjects=1)
    r = bootstrap_means(table, n_resamples=100).set_index(["set", "level"])
    assert np.isnan(r.loc[("wm", "lesion"), "ci_low_ppm"])
    assert "fewer than 2 subjects" in r.loc[("wm", "lesion"), "note"]


def test_bootstrap_interval_matches_direct_resampling():
    table = _cohort(n_subjects=5)
    res = bootstrap_means(table, n_resamples=300, seed=1).set_index(["set", "level"])
    rng = np.random.default_rng(1)
    wm = table[table.lesion_type == "wm"]
    subjects = sorted(wm["subject"].unique())
    idx = rng.integers(0, len(subjects), size=(300, len(subjects)))
    means = [pd.concat([wm[wm.subject == subjects[i]] for i in draw])["relative_ppm"].mean() for draw in idx]
    lo, hi = np.quantile(means, [0.025, 0.975])
    assert res.loc[("wm", "lesion"), "ci_low_ppm"] == pytest.approx(lo, rel=1e-9)
    assert res.loc[("wm", "lesion"), "ci_high_ppm"] == pytest.approx(hi, rel=1e-9)

"""The paper's tests: t, p and Bonferroni against scipy; the paper's own numbers reproduced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from napari_qsm_ms.stats.synthetic import PAPER_TABLE1
from napari_qsm_ms.stats.tests import bonferroni, one_sample_t, paper_tests, welch_t


def _table(values_by_type: dict[str, list[tuple[str, float]]]) -> pd.DataFrame:
    """A lesion table from {lesion_type: [(subject, value), ...]}."""
    cls_part = {
        "wm": ("wm", "whole"),
        "cortical": ("cortical", "whole"),
        "mixed_wm": ("mixed", "wm"),
        "mixed_cortical": ("mixed", "cortical"),
    }
    rows = []
    for t, vals in values_by_type.items():
        for k, (s, v) in enumerate(vals):
            c, p = cls_part[t]
            lid = k + 1 if c != "mixed" else 1000 + k  # mixed parts share their lesion id
            rows.append(
                dict(
                    subject=s,
                    lesion_id=lid,
                    **{"class": c},
                    part=p,
                    lesion_type=t,
                    included=True,
                    relative_ppm=v,
                    flags="",
                )
            )
    return pd.DataFrame(rows)


def test_one_sample_matches_scipy_and_counts():
    x = np.array([0.012, 0.031, -0.004, 0.02, 0.0, 0.017, 0.009])
    res = one_sample_t(x)
    ref = stats.ttest_1samp(x, 0.0)
    assert res["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert res["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert res["t"] == pytest.approx(x.mean() / (x.std(ddof=1) / np.sqrt(7)), rel=1e-12)
    assert res["n"] == 7 and res["df"] == 6
    assert (res["n_positive"], res["n_negative"]) == (5, 1)  # zero is neither
    assert res["pct_positive"] == pytest.approx(100 * 5 / 7)
    lo, hi = stats.t.interval(0.95, 6, loc=x.mean(), scale=stats.sem(x))
    assert (res["ci95_low_ppm"], res["ci95_high_ppm"]) == pytest.approx((lo, hi), rel=1e-10)


def test_welch_matches_scipy():
    a = np.array([0.01, 0.02, 0.015, 0.03, -0.002])
    b = np.array([-0.02, -0.01, -0.03])
    res = welch_t(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert res["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert res["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert res["mean_ppm"] == pytest.approx(a.mean() - b.mean())
    assert res["df"] == pytest.approx(ref.df, rel=1e-10)


def test_bonferroni_over_six():
    p = np.array([0.001, 0.0083, 0.009, 0.2, np.nan, 0.5])
    assert np.allclose(bonferroni(p), [0.006, 0.0498, 0.054, 1.0, np.nan, 1.0], equal_nan=True)


def test_summary_rows_match_scipy_and_bonferroni():
    rng = np.random.default_rng(1)
    subj = [f"{k:02d}" for k in range(5)]
    table = _table(
        {
            "wm": [(subj[k % 5], v) for k, v in enumerate(rng.normal(0.01, 0.01, 20))],
            "cortical": [(subj[k % 3], v) for k, v in enumerate(rng.normal(-0.01, 0.01, 7))],
            "mixed_wm": [(subj[k], v) for k, v in enumerate(rng.normal(0.01, 0.01, 4))],
            "mixed_cortical": [(subj[k], v) for k, v in enumerate(rng.normal(-0.01, 0.01, 4))],
        }
    )
    s = paper_tests(table).set_index(["set", "level"])
    for t in ("wm", "cortical", "mixed_wm", "mixed_cortical"):
        x = table.loc[table["lesion_type"] == t, "relative_ppm"].to_numpy()
        ref = stats.ttest_1samp(x, 0)
        assert s.loc[(t, "lesion"), "p"] == pytest.approx(ref.pvalue, rel=1e-12)
        assert s.loc[(t, "lesion"), "p_bonferroni"] == pytest.approx(min(1.0, 6 * ref.pvalue), rel=1e-12)
        assert s.loc[(t, "lesion"), "significant"] == (ref.pvalue < 0.05 / 6)
    for t in ("wm", "cortical"):
        means = table[table["lesion_type"] == t].groupby("subject")["relative_ppm"].mean().to_numpy()
        ref = stats.ttest_1samp(means, 0)
        assert s.loc[(t, "subject"), "n"] == len(means)
        assert s.loc[(t, "subject"), "t"] == pytest.approx(ref.statistic, rel=1e-12)
    # the mixed paired test pairs the two parts of the same lesion
    d = (
        table.loc[table["lesion_type"] == "mixed_wm", "relative_ppm"].to_numpy()
        - table.loc[table["lesion_type"] == "mixed_cortical", "relative_ppm"].to_numpy()
    )
    assert s.loc[("mixed_wm_minus_cortical", "lesion"), "t"] == pytest.approx(
        stats.ttest_1samp(d, 0).statistic
    )
    w = stats.ttest_ind(
        table.loc[table["lesion_type"] == "wm", "relative_ppm"],
        table.loc[table["lesion_type"] == "cortical", "relative_ppm"],
        equal_var=False,
    )
    assert s.loc[("wm_vs_cortical", "lesion"), "p"] == pytest.approx(w.pvalue, rel=1e-12)


def test_empty_and_tiny_sets_handled():
    table = _table(
        {
            "wm": [("01", 0.01), ("02", 0.02), ("02", 0.03)],
            "mixed_wm": [("01", 0.01)],
            "mixed_cortical": [("01", -0.01)],
        }
    )
    s = paper_tests(table).set_index(["set", "level"])
    assert s.loc[("cortical", "lesion"), "n"] == 0 and np.isnan(s.loc[("cortical", "lesion"), "t"])
    assert "empty" in s.loc[("cortical", "lesion"), "note"]
    assert not s.loc[("cortical", "lesion"), "significant"]
    assert s.loc[("mixed_wm", "lesion"), "n"] == 1 and "n < 2" in s.loc[("mixed_wm", "lesion"), "note"]
    assert np.isnan(s.loc[("mixed_wm", "lesion"), "p_bonferroni"])
    assert np.isfinite(s.loc[("wm", "lesion"), "p"])
    assert "no test" in s.loc[("wm_vs_cortical", "lesion"), "note"]
    empty = paper_tests(table.iloc[0:0])
    assert len(empty) == 9 and (empty["n"] == 0).all()


def test_excluded_rows_stay_out():
    table = _table({"wm": [("01", 0.01), ("01", 0.02), ("02", 0.5)]})
    table.loc[2, "included"] = False
    s = paper_tests(table).set_index(["set", "level"])
    assert s.loc[("wm", "lesion"), "n"] == 2
    assert s.loc[("wm", "lesion"), "mean_ppm"] == pytest.approx(0.015)


# ---------------------------------------------------------------------------------------------
# The paper's cohort: values with exactly the published means, SDs and counts.
# ---------------------------------------------------------------------------------------------
def _standardised(rng, n):
    z = rng.normal(size=n)
    z = z - z.mean()
    return z / z.std(ddof=1)


def _exact_cohort(rng, counts: list[int], lesion_mean, lesion_sd, subject_mean, subject_sd):
    """Per-lesion values with exactly (lesion_mean, lesion_sd) whose per-subject means have exactly
    (subject_mean, subject_sd); ``counts`` = lesions per subject (subjects with 0 dropped)."""
    n = np.array([c for c in counts if c > 0], dtype=float)
    s, total = len(n), n.sum()
    # subject means m = subject_mean + subject_sd * z, mean(z) = 0, sd(z) = 1 and
    # sum(n * m) = total * lesion_mean  <=>  z . (n - mean(n)) = total * (lesion_mean - subject_mean) / subject_sd
    nc = n - n.mean()
    target = total * (lesion_mean - subject_mean) / subject_sd
    u = nc / np.linalg.norm(nc)
    r = rng.normal(size=s)
    r -= r.mean()
    r -= (r @ u) * u
    r /= np.linalg.norm(r)
    alpha = target / np.linalg.norm(nc)
    beta = np.sqrt((s - 1) - alpha**2)
    z = alpha * u + beta * r
    m = subject_mean + subject_sd * z
    between = float((n * (m - lesion_mean) ** 2).sum())
    within_needed = lesion_sd**2 * (total - 1) - between
    assert within_needed > 0
    e = [rng.normal(size=int(k)) for k in n]
    e = [x - x.mean() for x in e]
    scale = np.sqrt(within_needed / sum(float((x**2).sum()) for x in e))
    return [mi + scale * x for mi, x in zip(m, e, strict=True)]


@pytest.fixture(scope="module")
def paper_cohort():
    rng = np.random.default_rng(2016)
    subjects = [f"{k + 1:02d}" for k in range(len(PAPER_TABLE1))]
    cort_counts = [c[0] for c in PAPER_TABLE1]
    wm_counts = [c[1] for c in PAPER_TABLE1]
    mixed_counts = [c[2] for c in PAPER_TABLE1]
    wm = _exact_cohort(rng, wm_counts, 0.014, 0.014, 0.014, 0.010)
    cort = _exact_cohort(rng, cort_counts, -0.018, 0.013, -0.015, 0.009)
    table = {"wm": [], "cortical": [], "mixed_wm": [], "mixed_cortical": []}
    for name, counts, vals in (("wm", wm_counts, wm), ("cortical", cort_counts, cort)):
        present = [s for s, c in zip(subjects, counts, strict=True) if c > 0]
        for s, v in zip(present, vals, strict=True):
            table[name].extend((s, float(x)) for x in v)
    mixed_subj = [s for s, c in zip(subjects, mixed_counts, strict=True) for _ in range(c)]
    for name, (mu, sd) in (("mixed_wm", (0.014, 0.018)), ("mixed_cortical", (-0.009, 0.012))):
        table[name] = list(zip(mixed_subj, mu + sd * _standardised(rng, 9), strict=True))
    return _table(table)


PAPER_TABLE3 = {  # (set, level): n, mean, sd, published P (bound or value)
    ("wm", "lesion"): (147, 0.014, 0.014, ("<", 1e-22)),
    ("cortical", "lesion"): (27, -0.018, 0.013, ("<", 1e-7)),
    ("mixed_wm", "lesion"): (9, 0.014, 0.018, ("=", 0.043)),
    ("mixed_cortical", "lesion"): (9, -0.009, 0.012, ("=", 0.054)),
    ("wm", "subject"): (13, 0.014, 0.010, ("<", 0.0004)),
    ("cortical", "subject"): (8, -0.015, 0.009, ("<", 0.004)),
}


def _p_from_summary_stats(n, mean, sd):
    return 2 * stats.t.sf(abs(mean) / sd * np.sqrt(n), n - 1)


def test_paper_cohort_reproduces_table3(paper_cohort):
    s = paper_tests(paper_cohort).set_index(["set", "level"])
    for key, (n, mean, sd, (op, p_pub)) in PAPER_TABLE3.items():
        row = s.loc[key]
        assert row["n"] == n, key
        assert row["mean_ppm"] == pytest.approx(mean, abs=1e-12), key
        assert row["sd_ppm"] == pytest.approx(sd, rel=1e-9), key
        t_expected = mean / sd * np.sqrt(n)
        assert row["t"] == pytest.approx(t_expected, rel=1e-9), key
        assert row["p"] == pytest.approx(_p_from_summary_stats(n, mean, sd), rel=1e-9), key
        assert row["p_bonferroni"] == pytest.approx(min(1.0, 6 * row["p"]), rel=1e-12)
        # The published mean and SD are rounded to 0.001 ppm: the published P must lie within the
        # P range those rounding intervals allow, and the bound must hold at our exact values
        # except where rounding alone decides it (checked below).
        p_lo = _p_from_summary_stats(n, abs(mean) + 0.0005, sd - 0.0005)
        p_hi = _p_from_summary_stats(n, abs(mean) - 0.0005, sd + 0.0005)
        if op == "=":
            assert p_lo <= p_pub <= p_hi, key
        else:  # "P < bound": some values that round to the published ones satisfy it
            assert p_lo < p_pub, key
    p = s["p"]
    assert p[("wm", "lesion")] < 1e-22
    assert p[("wm", "subject")] < 0.0004
    assert p[("cortical", "subject")] < 0.004
    assert p[("mixed_wm", "lesion")] == pytest.approx(0.048, abs=0.001)  # paper .043 (rounded inputs)
    assert p[("mixed_cortical", "lesion")] == pytest.approx(0.0546, abs=0.001)  # paper .054
    # cortical per lesion: -0.018 / 0.013 exactly gives P = 1.2e-7; the paper's "< 1e-7" needs the
    # unrounded values, e.g. mean -0.0182 and SD 0.0128 (both round to the published ones)
    assert 1e-7 < p[("cortical", "lesion")] < 1.3e-7
    assert _p_from_summary_stats(27, -0.0182, 0.0128) < 1e-7
    # significance after Bonferroni over six, as in the paper: WM and cortical lesions per lesion
    # and per patient; mixed parts not
    sig = s["significant"]
    assert sig[("wm", "lesion")] and sig[("cortical", "lesion")]
    assert sig[("wm", "subject")] and sig[("cortical", "subject")]
    assert not sig[("mixed_wm", "lesion")] and not sig[("mixed_cortical", "lesion")]
    # per-patient tests: 13 patients with WM lesions (patient 14 has none), 8 with cortical ones
    assert s.loc[("wm", "subject"), "n_subjects"] == 13
    assert s.loc[("cortical", "lesion"), "n_subjects"] == 8
    # WM vs cortical (Welch): clearly different
    assert s.loc[("wm_vs_cortical", "lesion"), "p"] < 1e-10

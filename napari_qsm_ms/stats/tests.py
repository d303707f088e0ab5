"""The paper's hypothesis tests (Bian et al. 2016, Statistical Analysis) on a lesion table.

Six one-sample, two-sided t-tests against zero, corrected together (Bonferroni over six,
significance at 0.05 / 6 = 0.0083):

* per lesion: WM lesions, cortical lesions, WM parts and cortical parts of mixed lesions;
* per subject: the subjects' mean relative susceptibility of WM lesions and of cortical lesions.

Also, outside the six: WM versus cortical lesions (Welch's unequal-variance t-test, per lesion and
per subject), and the WM part minus the cortical part of each mixed lesion (paired t-test).
Sets with fewer than two values get NaN t and p and a note; they are never silently dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

#: The six comparisons of the paper, in the order of its Table 3: (set, level).
PAPER_COMPARISONS = [
    ("wm", "lesion"),
    ("cortical", "lesion"),
    ("mixed_wm", "lesion"),
    ("mixed_cortical", "lesion"),
    ("wm", "subject"),
    ("cortical", "subject"),
]
N_COMPARISONS = len(PAPER_COMPARISONS)
ALPHA = 0.05

#: The published Table 3 (Bian et al. 2016): (set, level) -> (n, "mean +/- SD" ppm, "P"), for comparison.
PUBLISHED_TABLE3 = {
    ("wm", "lesion"): (147, "0.014 \u00b1 0.014", "< 1e-22"),
    ("cortical", "lesion"): (27, "-0.018 \u00b1 0.013", "< 1e-7"),
    ("mixed_wm", "lesion"): (9, "0.014 \u00b1 0.018", ".043"),
    ("mixed_cortical", "lesion"): (9, "-0.009 \u00b1 0.012", ".054"),
    ("wm", "subject"): (13, "0.014 \u00b1 0.010", "< .0004"),
    ("cortical", "subject"): (8, "-0.015 \u00b1 0.009", "< .004"),
}

SUMMARY_COLUMNS = [
    "set",
    "level",
    "test",
    "n",
    "n_subjects",
    "mean_ppm",
    "sd_ppm",
    "sem_ppm",
    "ci95_low_ppm",
    "ci95_high_ppm",
    "t",
    "df",
    "p",
    "p_bonferroni",
    "significant",
    "n_positive",
    "n_negative",
    "pct_positive",
    "pct_negative",
    "note",
    "subjects",
]

SET_LABELS = {
    "wm": "WM lesions",
    "cortical": "cortical lesions",
    "mixed_wm": "mixed lesions, WM part",
    "mixed_cortical": "mixed lesions, cortical part",
    "wm_vs_cortical": "WM vs cortical lesions",
    "mixed_wm_minus_cortical": "mixed lesions, WM part minus cortical part",
}


def included_rows(lesions: pd.DataFrame) -> pd.DataFrame:
    """Rows that enter the tests: ``included`` and a finite ``relative_ppm``."""
    if lesions.empty:
        return lesions
    inc = lesions["included"].astype(str).str.lower().isin(["true", "1"])
    rel = pd.to_numeric(lesions["relative_ppm"], errors="coerce")
    return lesions[inc & np.isfinite(rel)].assign(relative_ppm=rel[inc & np.isfinite(rel)])


def set_values(lesions: pd.DataFrame, set_name: str, level: str = "lesion") -> pd.Series:
    """Values of one set: per-lesion values, or per-subject means (index = subject)."""
    rows = included_rows(lesions)
    if rows.empty:
        return pd.Series(dtype=float)
    rows = rows[rows["lesion_type"] == set_name]
    if level == "lesion":
        return rows["relative_ppm"].astype(float).reset_index(drop=True)
    if level == "subject":
        return rows.groupby("subject", sort=False)["relative_ppm"].mean().astype(float)
    raise ValueError(f"level must be 'lesion' or 'subject', not {level!r}")


def one_sample_t(values) -> dict:
    """Two-sided one-sample t-test against zero, with descriptive statistics.

    Parameters
    ----------
    values : array-like of float
        Relative susceptibilities (ppm); NaNs are not expected (filter first).

    Returns
    -------
    dict
        n, mean_ppm, sd_ppm (ddof 1), sem_ppm, ci95_low/high_ppm (t-based), t, df, p,
        n_positive, n_negative, pct_positive, pct_negative, note.
    """
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    out = dict(
        test="one-sample t (two-sided, mu=0)",
        n=n,
        mean_ppm=np.nan,
        sd_ppm=np.nan,
        sem_ppm=np.nan,
        ci95_low_ppm=np.nan,
        ci95_high_ppm=np.nan,
        t=np.nan,
        df=np.nan,
        p=np.nan,
        n_positive=int((x > 0).sum()),
        n_negative=int((x < 0).sum()),
        pct_positive=np.nan,
        pct_negative=np.nan,
        note="",
    )
    if n == 0:
        out["note"] = "empty set: no test"
        return out
    out["mean_ppm"] = float(x.mean())
    out["pct_positive"] = 100.0 * out["n_positive"] / n
    out["pct_negative"] = 100.0 * out["n_negative"] / n
    if n < 2:
        out["note"] = "n < 2: no test"
        return out
    sd = float(x.std(ddof=1))
    out.update(sd_ppm=sd, sem_ppm=sd / np.sqrt(n), df=float(n - 1))
    if sd == 0.0:
        out["note"] = "zero variance: t undefined"
        return out
    res = stats.ttest_1samp(x, 0.0)
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    out.update(
        t=float(res.statistic),
        p=float(res.pvalue),
        ci95_low_ppm=out["mean_ppm"] - half,
        ci95_high_ppm=out["mean_ppm"] + half,
    )
    return out


def welch_t(a, b) -> dict:
    """Welch's two-sided t-test of mean(a) - mean(b); NaN t/p with a note when n < 2 in a set."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out = dict(
        test="Welch t (two-sided)",
        n=int(a.size + b.size),
        mean_ppm=np.nan,
        sd_ppm=np.nan,
        t=np.nan,
        df=np.nan,
        p=np.nan,
        note=f"n = {a.size} vs {b.size}",
    )
    if a.size and b.size:
        out["mean_ppm"] = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        out["note"] += "; a set has n < 2: no test"
        return out
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        out["note"] += "; zero variance: t undefined"
        return out
    res = stats.ttest_ind(a, b, equal_var=False)
    out["t"], out["p"] = float(res.statistic), float(res.pvalue)
    out["df"] = float((va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)))
    return out


def bonferroni(p, n_comparisons: int = N_COMPARISONS) -> np.ndarray:
    """Bonferroni-adjusted p values: ``min(1, n * p)`` (NaN stays NaN)."""
    p = np.asarray(p, dtype=float)
    return np.minimum(1.0, n_comparisons * p)


def mixed_pairs(lesions: pd.DataFrame) -> pd.DataFrame:
    """WM and cortical part of each mixed lesion side by side (both parts included)."""
    rows = included_rows(lesions)
    if rows.empty:
        return pd.DataFrame(columns=["subject", "lesion_id", "wm", "cortical"])
    mixed = rows[rows["lesion_type"].isin(["mixed_wm", "mixed_cortical"])]
    if mixed.empty:
        return pd.DataFrame(columns=["subject", "lesion_id", "wm", "cortical"])
    wide = mixed.pivot_table(
        index=["subject", "lesion_id"], columns="part", values="relative_ppm", aggfunc="first"
    )
    for c in ("wm", "cortical"):
        if c not in wide:
            wide[c] = np.nan
    return wide.dropna(subset=["wm", "cortical"]).reset_index()[["subject", "lesion_id", "wm", "cortical"]]


def paper_tests(lesions: pd.DataFrame) -> pd.DataFrame:
    """The study's Table 3 and the extra comparisons, as ``stats/summary.tsv``.

    Parameters
    ----------
    lesions : DataFrame
        The lesion table of :func:`~napari_qsm_ms.stats.lesions.relative_susceptibility`
        (several subjects concatenated); only rows with ``included`` true count.

    Returns
    -------
    DataFrame
        Columns :data:`SUMMARY_COLUMNS`: six rows for the paper's comparisons (``test`` one-sample
        t, Bonferroni over six, ``significant`` = p_bonferroni < 0.05, i.e. p < 0.05/6), then
        ``wm_vs_cortical`` (Welch) at lesion and subject level and ``mixed_wm_minus_cortical``
        (paired t) whose p is not part of the six and is left uncorrected (p_bonferroni NaN).
    """
    rows = []
    for set_name, level in PAPER_COMPARISONS:
        vals = set_values(lesions, set_name, level)
        res = one_sample_t(vals.to_numpy())
        n_subj = _n_subjects(lesions, set_name) if level == "lesion" else len(vals)
        rows.append(
            dict(set=set_name, level=level, n_subjects=n_subj, subjects=_subjects(lesions, set_name), **res)
        )
    p6 = np.array([r["p"] for r in rows], dtype=float)
    for r, pb in zip(rows, bonferroni(p6), strict=True):
        r["p_bonferroni"] = float(pb)
        r["significant"] = bool(np.isfinite(pb) and pb < ALPHA)
    for level in ("lesion", "subject"):
        a = set_values(lesions, "wm", level).to_numpy()
        b = set_values(lesions, "cortical", level).to_numpy()
        res = welch_t(a, b)
        res["note"] += "; outside the six: significant = p < 0.05 uncorrected"
        rows.append(
            dict(
                set="wm_vs_cortical",
                level=level,
                n_subjects=np.nan,
                p_bonferroni=np.nan,
                significant=bool(np.isfinite(res["p"]) and res["p"] < ALPHA),
                **res,
            )
        )
    pairs = mixed_pairs(lesions)
    diff = (pairs["wm"] - pairs["cortical"]).to_numpy(dtype=float)
    res = one_sample_t(diff)
    res["test"] = "paired t (two-sided), WM part - cortical part"
    res["note"] = "; ".join(
        x for x in (res["note"], "outside the six: significant = p < 0.05 uncorrected") if x
    )
    rows.append(
        dict(
            set="mixed_wm_minus_cortical",
            level="lesion",
            n_subjects=pairs["subject"].nunique(),
            p_bonferroni=np.nan,
            significant=bool(np.isfinite(res["p"]) and res["p"] < ALPHA),
            **res,
        )
    )
    frame = pd.DataFrame(rows)
    for c in SUMMARY_COLUMNS:
        if c not in frame:
            frame[c] = np.nan
    return frame[SUMMARY_COLUMNS]


def _subjects(lesions: pd.DataFrame, set_name: str) -> str:
    """Comma-joined labels of the subjects contributing to a set (for tracing)."""
    rows = included_rows(lesions)
    if rows.empty:
        return ""
    return ",".join(str(s) for s in dict.fromkeys(rows.loc[rows["lesion_type"] == set_name, "subject"]))


def _n_subjects(lesions: pd.DataFrame, set_name: str) -> int:
    rows = included_rows(lesions)
    if rows.empty:
        return 0
    return int(rows.loc[rows["lesion_type"] == set_name, "subject"].nunique())

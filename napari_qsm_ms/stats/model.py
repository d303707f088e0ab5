"""Beyond the paper: lesions are nested in patients.

* :func:`mixed_model` fits a linear mixed-effects model (statsmodels ``mixedlm``):
  ``relative_ppm ~ 0 + C(lesion_type)`` with a random intercept per subject, so each lesion type
  gets a mean that accounts for the clustering of lesions within patients; the WM - cortical
  contrast is reported too.
* :func:`bootstrap_means` gives percentile confidence intervals of each set's mean by resampling
  subjects (the independent units) with replacement, seeded so the numbers are reproducible.

Convergence problems (a random-effect variance on the boundary, a singular Hessian) do not raise:
they are recorded in the ``note`` column, next to the numbers they concern.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .tests import PAPER_COMPARISONS, included_rows

TYPE_ORDER = ["wm", "cortical", "mixed_wm", "mixed_cortical"]
MODEL_COLUMNS = [
    "term",
    "estimate_ppm",
    "se_ppm",
    "z",
    "p",
    "ci95_low_ppm",
    "ci95_high_ppm",
    "n_lesion_parts",
    "n_subjects",
    "method",
    "note",
]
BOOTSTRAP_COLUMNS = [
    "set",
    "level",
    "n",
    "n_subjects",
    "mean_ppm",
    "ci_low_ppm",
    "ci_high_ppm",
    "ci_level",
    "n_resamples",
    "seed",
    "method",
    "note",
]


def mixed_model(lesions: pd.DataFrame) -> pd.DataFrame:
    """Linear mixed-effects model of relative susceptibility by lesion type.

    Parameters
    ----------
    lesions : DataFrame
        Lesion table (``included`` rows with ``lesion_type`` and ``subject`` are used).

    Returns
    -------
    DataFrame
        Columns :data:`MODEL_COLUMNS`; rows ``mean[<type>]`` for each lesion type present,
        ``wm - cortical`` (Wald contrast), ``subject variance`` and ``residual variance`` (ppm^2
        in ``estimate_ppm``). Fitted by REML (statsmodels ``MixedLM``, lbfgs then other
        optimisers). When the model cannot be fitted (fewer than 2 subjects or too few lesions)
        one row ``model`` carries the reason in ``note``.
    """
    rows = included_rows(lesions)
    rows = rows[rows["lesion_type"].isin(TYPE_ORDER)] if not rows.empty else rows
    n_subj = int(rows["subject"].nunique()) if not rows.empty else 0
    method = "MixedLM REML: relative_ppm ~ 0 + C(lesion_type), random intercept per subject"
    if rows.empty or n_subj < 2 or len(rows) < 4:
        return _one_note_row(
            f"not fitted: {len(rows)} lesion parts in {n_subj} subjects (needs >= 4 parts in >= 2 subjects)",
            method,
        )
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    types = [t for t in TYPE_ORDER if (rows["lesion_type"] == t).any()]
    data = pd.DataFrame(
        {
            "relative_ppm": rows["relative_ppm"].astype(float).to_numpy(),
            "lesion_type": pd.Categorical(rows["lesion_type"], categories=types),
            "subject": rows["subject"].astype(str).to_numpy(),
        }
    )
    notes: list[str] = []
    result = None
    # Fit in ppb (x 1000): the optimisers behave better on values of order 1 than 1e-2.
    data["y_ppb"] = data["relative_ppm"] * 1000.0
    used = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for optimiser in ("lbfgs", "powell", "nm"):
            try:
                model = smf.mixedlm("y_ppb ~ 0 + C(lesion_type)", data, groups=data["subject"])
                fit = model.fit(reml=True, method=optimiser)
            except (np.linalg.LinAlgError, ValueError) as exc:
                notes.append(f"{optimiser} failed ({type(exc).__name__}: {exc})")
                continue
            result, used = fit, optimiser
            if getattr(fit, "converged", True):
                break
    for w in caught:
        kind = "convergence warning" if issubclass(w.category, ConvergenceWarning) else w.category.__name__
        msg = " ".join(str(w.message).split())
        if msg and f"{kind}: {msg}" not in notes:
            notes.append(f"{kind}: {msg}")
    if used:
        method += f" (optimiser {used})"
    if result is None:
        return _one_note_row("; ".join(notes) or "fit failed", method)
    note = "; ".join(notes)
    if not getattr(result, "converged", True):
        note = "; ".join(x for x in ("optimiser did not converge", note) if x)
    out = []
    fe = result.fe_params / 1000.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bse = result.bse_fe / 1000.0
        cov = result.cov_params().loc[fe.index, fe.index] / 1e6
    from scipy import stats as sst

    def _row(term, est, se, n_parts):
        z = est / se if se and np.isfinite(se) and se > 0 else np.nan
        p = float(2 * sst.norm.sf(abs(z))) if np.isfinite(z) else np.nan
        half = 1.959963984540054 * se if np.isfinite(se) else np.nan
        return dict(
            term=term,
            estimate_ppm=float(est),
            se_ppm=float(se),
            z=float(z),
            p=p,
            ci95_low_ppm=float(est - half),
            ci95_high_ppm=float(est + half),
            n_lesion_parts=n_parts,
            n_subjects=n_subj,
            method=method,
            note=note,
        )

    names = {}
    for name in fe.index:
        t = name.split("[", 1)[1].rstrip("]").removeprefix("T.") if "[" in name else name
        names[t] = name
        out.append(_row(f"mean[{t}]", fe[name], bse[name], int((data["lesion_type"] == t).sum())))
    if "wm" in names and "cortical" in names:
        c = np.zeros(len(fe))
        c[list(fe.index).index(names["wm"])] = 1.0
        c[list(fe.index).index(names["cortical"])] = -1.0
        est = float(c @ fe.to_numpy())
        se = float(np.sqrt(c @ cov.to_numpy() @ c))
        n_parts = int(data["lesion_type"].isin(["wm", "cortical"]).sum())
        out.append(_row("wm - cortical", est, se, n_parts))
    group_var = float(np.asarray(result.cov_re)[0, 0]) / 1e6
    nan = float("nan")
    for term, val in (
        ("subject variance (ppm^2)", group_var),
        ("residual variance (ppm^2)", float(result.scale) / 1e6),
    ):
        out.append(
            dict(
                term=term,
                estimate_ppm=val,
                se_ppm=nan,
                z=nan,
                p=nan,
                ci95_low_ppm=nan,
                ci95_high_ppm=nan,
                n_lesion_parts=len(data),
                n_subjects=n_subj,
                method=method,
                note=note,
            )
        )
    return pd.DataFrame(out, columns=MODEL_COLUMNS)


def _one_note_row(note: str, method: str) -> pd.DataFrame:
    nan = float("nan")
    return pd.DataFrame(
        [
            dict(
                term="model",
                estimate_ppm=nan,
                se_ppm=nan,
                z=nan,
                p=nan,
                ci95_low_ppm=nan,
                ci95_high_ppm=nan,
                n_lesion_parts=0,
                n_subjects=0,
                method=method,
                note=note,
            )
        ],
        columns=MODEL_COLUMNS,
    )


def bootstrap_means(
    lesions: pd.DataFrame,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    ci_level: float = 0.95,
) -> pd.DataFrame:
    """Subject-level (cluster) bootstrap confidence intervals of each set's mean.

    For each of the paper's six sets, the subjects contributing to the set are resampled with
    replacement ``n_resamples`` times; per-lesion sets take the mean of all lesion values of the
    drawn subjects (a subject drawn twice counts twice), per-subject sets the mean of the drawn
    subjects' means. The interval is the percentile interval of those means.

    Parameters
    ----------
    lesions : DataFrame
        Lesion table.
    n_resamples : int
        Bootstrap resamples (default 2000).
    seed : int
        Seed of ``numpy.random.default_rng`` (default 0): same seed, same intervals.
    ci_level : float
        Coverage of the interval (default 0.95).

    Returns
    -------
    DataFrame
        Columns :data:`BOOTSTRAP_COLUMNS`.
    """
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    rows = included_rows(lesions)
    rng = np.random.default_rng(seed)
    alpha = (1.0 - ci_level) / 2.0
    out = []
    for set_name, level in PAPER_COMPARISONS:
        sub = rows[rows["lesion_type"] == set_name] if not rows.empty else rows
        nan = float("nan")
        base = dict(
            set=set_name,
            level=level,
            ci_level=ci_level,
            n_resamples=n_resamples,
            seed=seed,
            method="percentile, subjects resampled with replacement",
        )
        if sub.empty:
            out.append(
                dict(base, n=0, n_subjects=0, mean_ppm=nan, ci_low_ppm=nan, ci_high_ppm=nan, note="empty set")
            )
            continue
        grouped = sub.groupby("subject", sort=True)["relative_ppm"]
        sums = grouped.sum().to_numpy(dtype=float)
        counts = grouped.count().to_numpy(dtype=float)
        n_s = len(sums)
        if level == "subject":
            sums, counts = sums / counts, np.ones_like(counts)
        point = float(sums.sum() / counts.sum())
        n = int(len(sub)) if level == "lesion" else n_s
        if n_s < 2:
            out.append(
                dict(
                    base,
                    n=n,
                    n_subjects=n_s,
                    mean_ppm=point,
                    ci_low_ppm=nan,
                    ci_high_ppm=nan,
                    note="fewer than 2 subjects: no bootstrap",
                )
            )
            continue
        idx = rng.integers(0, n_s, size=(n_resamples, n_s))
        means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
        lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
        note = "few subjects: interval unreliable" if n_s < 5 else ""
        out.append(
            dict(
                base,
                n=n,
                n_subjects=n_s,
                mean_ppm=point,
                ci_low_ppm=float(lo),
                ci_high_ppm=float(hi),
                note=note,
            )
        )
    return pd.DataFrame(out, columns=BOOTSTRAP_COLUMNS)

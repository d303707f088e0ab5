"""Lesion markers beyond the paper in the statistics: paramagnetic rims and the central vein sign.

* :func:`marker_table` -- per lesion, the rim measures of :mod:`napari_qsm_ms.roi.rim` on the
  susceptibility map and the vein measures of :mod:`napari_qsm_ms.roi.veins` on the T2*
  magnitude (columns :data:`MARKER_LESION_COLUMNS` of ``stats/lesions.tsv``);
* :func:`subject_markers` -- per subject, the PRL count and the CVS fraction with the rules
  used in the literature (columns :data:`MARKER_SUBJECT_COLUMNS` of ``stats/subjects.tsv``):

  - ``cvs_40pct``: at least 40 % of the eligible lesions show the CVS (the threshold proposed by
    Tallantyre et al. 2011 and discussed in the NAIMS consensus, Sati et al., Nat Rev Neurol
    2016;12:714-722);
  - ``cvs_select3``: at least three CVS-positive lesions (Select-3*, Solomon et al., Mult Scler
    2018;24:750-757);
  - ``cvs_select6``: at least six CVS-positive lesions, or at least three when the subject has
    fewer than ten eligible lesions (Select-6*, Mistry et al., Mult Scler 2016;22:1289-1296);

* :func:`add_subject_markers` -- the hook of ``qsm-ms stats``: reads the subject's T2*
  magnitude, measures, and adds the columns;
* :func:`roc_auc` -- area under the ROC curve (Mann-Whitney), used by the benchmark;
* :func:`rim_profile_figure` -- rim profiles of PRL vs non-PRL lesions.

Measured suggestions (``prl_suggested``, ``cvs_suggested``) rank lesions for the raters; the
rated round (rating/markers.py) decides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io.layout import TISSUE_CORTEX, TISSUE_WM
from ..io.nifti import load_volume
from ..roi.rim import rim_metrics, rim_profiles
from ..roi.veins import vein_metrics

MARKER_LESION_COLUMNS = [
    "rim_score_ppm",
    "rim_contrast_ppm",
    "rim_coverage",
    "prl_suggested",
    "vein_score",
    "cvs_eligible",
    "cvs_suggested",
]
MARKER_SUBJECT_COLUMNS = [
    "n_prl",
    "n_cvs_eligible",
    "n_cvs",
    "cvs_fraction",
    "cvs_40pct",
    "cvs_select3",
    "cvs_select6",
]
CVS_FRACTION_RULE = 0.40
SELECT3_N = 3
SELECT6_N = 6
SELECT6_FEW_LESIONS = 10
SELECT6_FEW_N = 3


def marker_table(
    chi_ppm: np.ndarray | None,
    magnitude: np.ndarray | None,
    lesions: np.ndarray,
    voxel_size_mm,
    *,
    tissue: np.ndarray | None = None,
    vessels: np.ndarray | None = None,
    brain: np.ndarray | None = None,
    slice_axis: int = 2,
) -> pd.DataFrame:
    """Rim and vein measures of every lesion: ``lesion_id`` + :data:`MARKER_LESION_COLUMNS`.

    Rims are judged in white matter when ``tissue`` is given (PRLs are WM lesions; the rim band
    and the outside are restricted to WM), else in ``brain``; ``vessels`` are left out of the
    bands. A missing map gives NaN in its columns.
    """
    ids = np.unique(lesions[lesions > 0]).astype(int)
    out = pd.DataFrame({"lesion_id": ids})
    if chi_ppm is not None:
        # rims are judged in WM: WM around, and the lesion's own voxels except a cortical part
        valid = brain
        if tissue is not None:
            valid = (tissue == TISSUE_WM) | ((lesions > 0) & (tissue != TISSUE_CORTEX))
        finite = np.isfinite(chi_ppm)
        if not finite.all():  # voxels without a value (NaN) take no part
            valid = finite if valid is None else (valid & finite)
            chi_ppm = np.where(finite, chi_ppm, 0.0).astype(np.float32)
        rim = rim_metrics(
            chi_ppm, lesions, voxel_size_mm, valid=valid, vessels=vessels, slice_axis=slice_axis
        )
        out = out.merge(rim, on="lesion_id", how="left")
    if magnitude is not None:
        vein = vein_metrics(magnitude, lesions, voxel_size_mm, valid=brain)
        out = out.merge(vein, on="lesion_id", how="left")
    for c in MARKER_LESION_COLUMNS:
        if c not in out:
            out[c] = np.nan
    return out[["lesion_id", *MARKER_LESION_COLUMNS]]


def subject_markers(markers: pd.DataFrame) -> dict:
    """PRL count, CVS fraction and the CVS rules of one subject (one row per lesion).

    Examples
    --------
    >>> t = pd.DataFrame({"prl_suggested": [True, False, True, False], "cvs_eligible": [True] * 4,
    ...                   "cvs_suggested": [True, True, False, False]})
    >>> s = subject_markers(t); s["n_prl"], s["cvs_fraction"], s["cvs_40pct"], s["cvs_select3"]
    (2, 0.5, True, False)
    """
    prl = markers["prl_suggested"].astype("boolean").fillna(False).astype(bool)
    eligible = markers["cvs_eligible"].astype("boolean").fillna(False).astype(bool)
    cvs = markers["cvs_suggested"].astype("boolean").fillna(False).astype(bool) & eligible
    n_el, n_cvs = int(eligible.sum()), int(cvs.sum())
    fraction = n_cvs / n_el if n_el else float("nan")
    select6_n = SELECT6_FEW_N if n_el < SELECT6_FEW_LESIONS else SELECT6_N
    return {
        "n_prl": int(prl.sum()),
        "n_cvs_eligible": n_el,
        "n_cvs": n_cvs,
        "cvs_fraction": fraction,
        "cvs_40pct": bool(n_el and fraction >= CVS_FRACTION_RULE),
        "cvs_select3": n_cvs >= SELECT3_N,
        "cvs_select6": bool(n_el and n_cvs >= select6_n),
    }


def add_subject_markers(
    table: pd.DataFrame, info: dict, subject, chi, lesions, optional: dict, slice_axis: int
) -> list:
    """Hook of ``qsm-ms stats``: marker columns into ``table`` (in place) and ``info``; returns inputs used.

    ``chi`` and ``lesions`` are the loaded volumes (``chi`` may be None); the T2* magnitude is
    read from the subject's raw series when it exists on the same grid.
    """
    used = []
    magnitude = None
    if subject.magnitude.exists():
        mag = load_volume(subject.magnitude)
        if mag.data.shape[:3] == lesions.data.shape:
            magnitude = np.asarray(mag.data if mag.data.ndim == 3 else mag.data[..., 0], np.float32)
            used.append(subject.magnitude)
    ves = optional.get("vessels")
    m = marker_table(
        None if chi is None else chi.data, magnitude, lesions.data, lesions.voxel_size_mm,
        tissue=optional.get("tissue"), vessels=None if ves is None else ves > 0,
        brain=None if optional.get("brain_mask") is None else optional["brain_mask"] > 0,
        slice_axis=slice_axis,
    )
    if not table.empty:
        merged = table[["lesion_id"]].merge(m, on="lesion_id", how="left")
        for c in MARKER_LESION_COLUMNS:
            table[c] = merged[c].to_numpy()
    info.update(subject_markers(m))
    return used


def roc_auc(scores, positive) -> float:
    """Area under the ROC curve of ``scores`` for the boolean labels ``positive`` (ties count half).

    Examples
    --------
    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    s = np.asarray(scores, float)
    y = np.asarray(positive, bool)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    pos, neg = s[y], s[~y]
    if not pos.size or not neg.size:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def rim_profile_figure(profiles: pd.DataFrame, prl_ids, path: str | Path | None = None, *, title: str = ""):
    """Median rim profiles (chi against signed distance to the boundary) of PRL vs non-PRL lesions.

    ``profiles`` comes from :func:`napari_qsm_ms.roi.rim.rim_profiles` (optionally with a
    ``subject`` column; then ``prl_ids`` holds ``(subject, lesion_id)`` pairs). Thin lines: single
    lesions; thick: the median per group. Saved to ``path`` (PNG/SVG) when given.
    """
    keys = list(zip(profiles["subject"], profiles["lesion_id"])) if "subject" in profiles else list(
        profiles["lesion_id"]
    )
    prl = set(prl_ids)
    is_prl = np.array([k in prl for k in keys])
    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.add_subplot(1, 1, 1)
    for flag, colour, label in ((False, "tab:blue", "non-PRL"), (True, "tab:red", "PRL")):
        part = profiles[is_prl == flag]
        if part.empty:
            continue
        part = part[np.isfinite(part["median_ppm"].to_numpy(float))]
        group = part.groupby(["subject", "lesion_id"] if "subject" in part else ["lesion_id"])
        for _, one in group:
            ax.plot(one["distance_mm"], one["median_ppm"], color=colour, alpha=0.15, lw=0.8)
        by_bin = part.groupby("distance_mm")["median_ppm"]
        med = by_bin.median()[by_bin.count() >= max(1, group.ngroups // 2)]  # bins most lesions reach
        ax.plot(med.index, med.values, color=colour, lw=2.5, label=f"{label} (n={group.ngroups})")
    ax.axvspan(-1.0, 1.0, color="0.85", zorder=0, label="rim band")
    ax.axvline(0.0, color="0.4", lw=0.8)
    ax.set_xlabel("signed distance to the lesion boundary (mm; < 0 inside)")
    ax.set_ylabel("susceptibility (ppm)")
    ax.set_title(title or "Rim profiles: PRL vs non-PRL lesions")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


__all__ = [
    "MARKER_LESION_COLUMNS",
    "MARKER_SUBJECT_COLUMNS",
    "add_subject_markers",
    "marker_table",
    "rim_profile_figure",
    "rim_profiles",
    "roc_auc",
    "subject_markers",
]

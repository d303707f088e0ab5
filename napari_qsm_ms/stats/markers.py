"""Lesion markers beyond the paper in the statistics: paramagnetic rims and the central vein sign.

* :func:`marker_table` -- per lesion, the rim measures of :mod:`napari_qsm_ms.roi.rim` on the
  susceptibility map and the vein measures of :mod:`napari_qsm_ms.roi.veins` on the T2*
  magnitude (columns :data:`MARKER_LESION_COLUMNS` of ``stats/lesions.tsv``);
* :func:`decide_markers` -- which lesions count as PRL and CVS-positive: the consensus of the rim
  round (``sub-*_round-rim_consensus.tsv``, written by ``qsm-ms consensus --round rim``) where it
  agreed, else the measured suggestion; columns ``prl_source`` / ``cvs_source`` say which;
* :func:`subject_markers` -- per subject, the PRL count and the CVS fraction with the rules
  used in the literature (columns :data:`MARKER_SUBJECT_COLUMNS` of ``stats/subjects.tsv``):

  - ``cvs_40pct``: at least 40 % of the eligible lesions show the CVS (the proportion threshold
    of Tallantyre et al., Neurology 2011;76:534-539 (7 T), discussed in the NAIMS consensus,
    Sati et al., Nat Rev Neurol 2016;12:714-722);
  - ``cvs_select3``: at least three CVS-positive lesions (Select-3*: the reader looks for up to
    three lesions with a central vein on FLAIR*, Solomon et al., Mult Scler 2018;24:750-757);
  - ``cvs_select6``: at least six CVS-positive lesions (Select-6*: up to six, "A multicenter
    pilot study evaluating simplified central vein assessment for the diagnosis of multiple
    sclerosis", Mult Scler 2024;30:25-34, doi:10.1177/13524585231214360);

  eligible = not excluded by the NAIMS exclusions (:func:`napari_qsm_ms.roi.veins.cvs_exclusions`
  for the measured ones, the raters' ``excluded`` for rated ones);

* :func:`add_subject_markers` -- the hook of ``qsm-ms stats``: reads the subject's T2*
  magnitude and the rim round's consensus, measures, decides, and adds the columns;
* :func:`roc_auc` -- area under the ROC curve (Mann-Whitney), used by the benchmark;
* :func:`rim_profile_figure` -- rim profiles of PRL vs non-PRL lesions (``rim_profiles.png`` of
  ``qsm-ms stats`` and the Statistics dock).

Measured suggestions (``prl_suggested``, ``cvs_suggested``) rank lesions for the raters; the
rated round (rating/markers.py) decides where it exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import InputFileError
from ..io.layout import TISSUE_CORTEX, TISSUE_WM, SubjectFiles, round_consensus_tsv
from ..io.nifti import load_volume
from ..rating.markers import CONSENSUS_COLUMNS, ROUND
from ..rating.votes import _read_table_text
from ..roi.rim import rim_metrics, rim_profiles
from ..roi.veins import cvs_exclusions, vein_metrics

MARKER_LESION_COLUMNS = [
    "rim_score_ppm",
    "rim_contrast_ppm",
    "rim_coverage",
    "prl_suggested",
    "vein_score",
    "n_veins",
    "confluent_with",
    "cvs_excluded",
    "cvs_exclusion_reason",
    "cvs_eligible",
    "cvs_suggested",
    "prl_rated",
    "prl",
    "prl_source",
    "cvs_rated",
    "cvs",
    "cvs_source",
]
MARKER_SUBJECT_COLUMNS = [
    "n_prl",
    "prl_source",
    "n_cvs_eligible",
    "n_cvs_excluded",
    "n_cvs",
    "cvs_fraction",
    "cvs_40pct",
    "cvs_select3",
    "cvs_select6",
    "cvs_source",
]
CVS_FRACTION_RULE = 0.40
SELECT3_N = 3
SELECT6_N = 6
#: Values of ``prl_source`` / ``cvs_source`` per lesion.
SOURCE_RATED, SOURCE_MEASURED = "rated", "measured"


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
    rated: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rim and vein measures of every lesion: ``lesion_id`` + :data:`MARKER_LESION_COLUMNS`.

    Rims are judged in white matter when ``tissue`` is given (PRLs are WM lesions; the rim band
    and the outside are restricted to WM), else in ``brain``; ``vessels`` are left out of the
    bands. A missing map gives NaN in its columns. ``rated`` (:func:`read_rated_markers`) decides
    where the rim round agreed (:func:`decide_markers`).
    """
    ids = np.unique(lesions[lesions > 0]).astype(int)
    out = pd.DataFrame({"lesion_id": ids})
    if chi_ppm is not None:
        chi_ppm, valid = rim_inputs(chi_ppm, lesions, tissue, brain)
        rim = rim_metrics(
            chi_ppm, lesions, voxel_size_mm, valid=valid, vessels=vessels, slice_axis=slice_axis
        )
        out = out.merge(rim, on="lesion_id", how="left")
    if magnitude is not None:
        vein = vein_metrics(magnitude, lesions, voxel_size_mm, valid=brain)
    else:  # no T2* magnitude: the exclusions that need none (size, confluent)
        vein = cvs_exclusions(lesions, voxel_size_mm)
    out = out.merge(vein, on="lesion_id", how="left")
    out = decide_markers(out, rated)
    for c in MARKER_LESION_COLUMNS:
        if c not in out:
            out[c] = np.nan
    return out[["lesion_id", *MARKER_LESION_COLUMNS]]


def rim_inputs(chi_ppm: np.ndarray, lesions: np.ndarray, tissue: np.ndarray | None, brain: np.ndarray | None):
    """``(chi, valid)``: where rims are judged -- WM around and the lesions' non-cortical voxels
    (with a tissue map), else the brain (None: everywhere) -- and never where chi is NaN (set to
    0 there, outside ``valid``)."""
    valid = brain
    if tissue is not None:
        valid = (tissue == TISSUE_WM) | ((lesions > 0) & (tissue != TISSUE_CORTEX))
    finite = np.isfinite(chi_ppm)
    if not finite.all():  # voxels without a value (NaN) take no part
        valid = finite if valid is None else (valid & finite)
        chi_ppm = np.where(finite, chi_ppm, 0.0).astype(np.float32)
    return chi_ppm, valid


def read_rated_markers(subject: SubjectFiles, round_name: str = ROUND) -> pd.DataFrame | None:
    """The rim round's consensus of ``subject`` as ``lesion_id, prl_rated, cvs_rated`` (the agreed
    majority value, or ``disputed``), or None when the round has no consensus file.

    The file is ``io.layout.round_consensus_tsv`` (written by
    :func:`napari_qsm_ms.rating.markers.run_round_consensus`, columns
    :data:`~napari_qsm_ms.rating.markers.CONSENSUS_COLUMNS`).

    Raises
    ------
    InputFileError
        The file exists but lacks the columns or has a lesion id that is not a positive integer.
    """
    path = round_consensus_tsv(subject, round_name)
    if not path.exists():
        return None
    frame = _read_table_text(path)
    missing = [c for c in ("lesion_id", "marker", "value") if c not in frame]
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(missing)} (expected {', '.join(CONSENSUS_COLUMNS)})")
    ids = pd.to_numeric(frame["lesion_id"], errors="coerce")
    if ids.isna().any() or (ids <= 0).any() or (ids % 1 != 0).any():
        raise InputFileError(path, "lesion_id must be positive integers")
    frame["lesion_id"] = ids.astype(int)
    wide = frame.pivot_table(index="lesion_id", columns="marker", values="value", aggfunc="first")
    out = pd.DataFrame({"lesion_id": wide.index.astype(int)})
    for marker in ("prl", "cvs"):
        out[f"{marker}_rated"] = wide[marker].fillna("").to_numpy() if marker in wide else ""
    return out


def decide_markers(markers: pd.DataFrame, rated: pd.DataFrame | None) -> pd.DataFrame:
    """Which lesions count: ``prl``, ``cvs`` (bool), ``*_source``, and the eligibility, per lesion.

    Where the rim round agreed (``prl_rated`` yes / no / uncertain; ``cvs_rated`` present /
    absent / excluded) the raters decide: PRL only on ``yes``; CVS-positive on ``present``,
    eligible unless ``excluded`` (exclusion reason ``rated``). Elsewhere (no round, lesion not
    read, ``disputed``) the measured suggestion and exclusions hold. ``*_source`` says which.

    Examples
    --------
    >>> m = pd.DataFrame({"lesion_id": [1, 2, 3], "prl_suggested": [True, True, False],
    ...     "cvs_suggested": [True, False, False], "cvs_eligible": [True, True, False],
    ...     "cvs_excluded": [False, False, True], "cvs_exclusion_reason": ["", "", "small"]})
    >>> r = pd.DataFrame({"lesion_id": [2, 3], "prl_rated": ["no", "disputed"],
    ...                   "cvs_rated": ["present", "excluded"]})
    >>> d = decide_markers(m, r)
    >>> d["prl"].tolist(), d["prl_source"].tolist(), d["cvs"].tolist(), d["cvs_eligible"].tolist()
    ([True, False, False], ['measured', 'rated', 'measured'], [True, True, False], [True, True, False])
    """
    out = markers.copy()
    n = len(out)

    def flag(col):
        return out[col].astype("boolean").fillna(False).astype(bool).to_numpy() if col in out else np.zeros(n, bool)

    rated_by_id = {} if rated is None else rated.set_index("lesion_id").to_dict("index")
    prl_rated = [rated_by_id.get(int(i), {}).get("prl_rated", "") for i in out["lesion_id"]]
    cvs_rated = [rated_by_id.get(int(i), {}).get("cvs_rated", "") for i in out["lesion_id"]]
    prl_ok = np.array([v in ("yes", "no", "uncertain") for v in prl_rated], bool)
    cvs_ok = np.array([v in ("present", "absent", "excluded") for v in cvs_rated], bool)
    out["prl_rated"] = prl_rated
    out["cvs_rated"] = cvs_rated
    out["prl"] = np.where(prl_ok, np.array(prl_rated) == "yes", flag("prl_suggested"))
    out["prl_source"] = np.where(prl_ok, SOURCE_RATED, SOURCE_MEASURED)
    excluded = np.where(cvs_ok, np.array(cvs_rated) == "excluded", flag("cvs_excluded"))
    reason = out["cvs_exclusion_reason"].fillna("").astype(str).to_numpy() if "cvs_exclusion_reason" in out else np.full(n, "")
    out["cvs_excluded"] = excluded
    out["cvs_exclusion_reason"] = np.where(cvs_ok, np.where(excluded, "rated", ""), reason)
    measured_eligible = flag("cvs_eligible") if "cvs_eligible" in out else ~flag("cvs_excluded")
    out["cvs_eligible"] = np.where(cvs_ok, ~excluded, measured_eligible)
    out["cvs"] = np.where(cvs_ok, np.array(cvs_rated) == "present", flag("cvs_suggested")) & out["cvs_eligible"]
    out["cvs_source"] = np.where(cvs_ok, SOURCE_RATED, SOURCE_MEASURED)
    return out


def _source_summary(sources) -> str:
    """``rated``, ``measured``, or ``rated k, measured m`` for a subject's lesions."""
    sources = list(sources)
    k = sum(s == SOURCE_RATED for s in sources)
    if k == len(sources):
        return SOURCE_RATED if sources else ""
    return SOURCE_MEASURED if k == 0 else f"{SOURCE_RATED} {k}, {SOURCE_MEASURED} {len(sources) - k}"


def subject_markers(markers: pd.DataFrame) -> dict:
    """PRL count, CVS fraction and the CVS rules of one subject (one row per lesion).

    Uses the decided columns ``prl``, ``cvs``, ``cvs_eligible`` of :func:`decide_markers` when
    present, else the measured ``prl_suggested``, ``cvs_suggested``.

    Examples
    --------
    >>> t = pd.DataFrame({"prl_suggested": [True, False, True, False], "cvs_eligible": [True] * 4,
    ...                   "cvs_suggested": [True, True, False, False]})
    >>> s = subject_markers(t); s["n_prl"], s["cvs_fraction"], s["cvs_40pct"], s["cvs_select3"]
    (2, 0.5, True, False)
    """

    def flag(col, fallback):
        use = col if col in markers else fallback
        return markers[use].astype("boolean").fillna(False).astype(bool)

    prl = flag("prl", "prl_suggested")
    eligible = flag("cvs_eligible", "cvs_eligible")
    cvs = flag("cvs", "cvs_suggested") & eligible
    excluded = flag("cvs_excluded", "cvs_excluded") if "cvs_excluded" in markers else ~eligible
    n_el, n_cvs = int(eligible.sum()), int(cvs.sum())
    fraction = n_cvs / n_el if n_el else float("nan")
    return {
        "n_prl": int(prl.sum()),
        "prl_source": _source_summary(markers["prl_source"]) if "prl_source" in markers else SOURCE_MEASURED,
        "n_cvs_eligible": n_el,
        "n_cvs_excluded": int(excluded.sum()),
        "n_cvs": n_cvs,
        "cvs_fraction": fraction,
        "cvs_40pct": bool(n_el and fraction >= CVS_FRACTION_RULE),
        "cvs_select3": n_cvs >= SELECT3_N,
        "cvs_select6": n_cvs >= SELECT6_N,
        "cvs_source": _source_summary(markers["cvs_source"]) if "cvs_source" in markers else SOURCE_MEASURED,
    }


def add_subject_markers(
    table: pd.DataFrame, info: dict, subject, chi, lesions, optional: dict, slice_axis: int,
    *, profiles: list | None = None,
) -> list:
    """Hook of ``qsm-ms stats``: marker columns into ``table`` (in place) and ``info``; returns inputs used.

    ``chi`` and ``lesions`` are the loaded volumes (``chi`` may be None); the T2* magnitude is
    read from the subject's raw series when it exists on the same grid, the rim round's
    consensus with :func:`read_rated_markers`. With ``profiles`` (a list), the lesions' rim
    profiles (:func:`napari_qsm_ms.roi.rim.rim_profiles`, judged where the rim measures are, with
    a ``subject`` column) are appended to it.
    """
    used = []
    magnitude = None
    if subject.magnitude.exists():
        mag = load_volume(subject.magnitude)
        if mag.data.shape[:3] == lesions.data.shape:
            magnitude = np.asarray(mag.data if mag.data.ndim == 3 else mag.data[..., 0], np.float32)
            used.append(subject.magnitude)
    rated = read_rated_markers(subject)
    if rated is not None:
        used.append(round_consensus_tsv(subject, ROUND))
    ves = optional.get("vessels")
    ves = None if ves is None else ves > 0
    brain = None if optional.get("brain_mask") is None else optional["brain_mask"] > 0
    m = marker_table(
        None if chi is None else chi.data, magnitude, lesions.data, lesions.voxel_size_mm,
        tissue=optional.get("tissue"), vessels=ves, brain=brain, slice_axis=slice_axis, rated=rated,
    )
    if not table.empty:
        merged = table[["lesion_id"]].merge(m, on="lesion_id", how="left")
        for c in MARKER_LESION_COLUMNS:
            table[c] = merged[c].to_numpy()
    info.update(subject_markers(m))
    if profiles is not None and chi is not None and len(m):
        values, valid = rim_inputs(chi.data, lesions.data, optional.get("tissue"), brain)
        prof = rim_profiles(values, lesions.data, lesions.voxel_size_mm, valid=valid, vessels=ves)
        profiles.append(prof.assign(subject=subject.label)[["subject", *prof.columns]])
    return used


def marker_summary(subjects: pd.DataFrame) -> pd.DataFrame:
    """The per-subject marker values of ``stats/subjects.tsv`` (``subject`` +
    :data:`MARKER_SUBJECT_COLUMNS`): what the report and the Statistics dock show."""
    if subjects is None or subjects.empty or "n_prl" not in subjects:
        return pd.DataFrame(columns=["subject", *MARKER_SUBJECT_COLUMNS])
    return subjects[["subject", *MARKER_SUBJECT_COLUMNS]].reset_index(drop=True)


#: Lesion classes whose rims are judged (PRLs are white-matter lesions).
RIM_CLASSES = ("wm", "mixed")


def study_rim_figure(profiles: pd.DataFrame, lesions: pd.DataFrame, path=None, *, fig: Figure | None = None):
    """The rim-profile figure of a study (report and Statistics dock): :func:`rim_profile_figure`
    of the WM and mixed lesions (:data:`RIM_CLASSES` in ``lesions``' ``class``), PRL = the decided
    ``prl`` of ``stats/lesions.tsv``."""
    if not profiles.empty and not lesions.empty and "class" in lesions:
        rows = lesions[lesions["class"].isin(RIM_CLASSES)]
        keep = {(str(a), int(b)) for a, b in zip(rows["subject"], rows["lesion_id"])}
        profiles = profiles[[(str(a), int(b)) in keep for a, b in zip(profiles["subject"], profiles["lesion_id"])]]
    return rim_profile_figure(profiles, prl_keys(lesions), path, fig=fig,
                              title="Rim profiles of WM and mixed lesions: PRL vs non-PRL")


def prl_keys(lesions: pd.DataFrame) -> list[tuple[str, int]]:
    """``(subject, lesion_id)`` of the lesions counted as PRL in a ``stats/lesions.tsv`` table."""
    if lesions.empty or "prl" not in lesions:
        return []
    rows = lesions[lesions["prl"].astype("boolean").fillna(False).astype(bool)]
    return sorted({(str(s), int(i)) for s, i in zip(rows["subject"], rows["lesion_id"])})


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


def rim_profile_figure(
    profiles: pd.DataFrame, prl_ids, path: str | Path | None = None, *, title: str = "", fig: Figure | None = None
):
    """Median rim profiles (chi against signed distance to the boundary) of PRL vs non-PRL lesions.

    ``profiles`` comes from :func:`napari_qsm_ms.roi.rim.rim_profiles` (optionally with a
    ``subject`` column; then ``prl_ids`` holds ``(subject, lesion_id)`` pairs). Thin lines: single
    lesions; thick: the median per group. Saved to ``path`` (PNG/SVG) when given; drawn into
    ``fig`` (cleared) when given, e.g. a dock's canvas.
    """
    keys = list(zip(profiles["subject"], profiles["lesion_id"])) if "subject" in profiles else list(
        profiles["lesion_id"]
    )
    prl = set(prl_ids)
    is_prl = np.array([k in prl for k in keys])
    if fig is None:
        fig = Figure(figsize=(6, 4), dpi=120)
    fig.clear()
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
    "decide_markers",
    "marker_summary",
    "marker_table",
    "prl_keys",
    "read_rated_markers",
    "rim_profile_figure",
    "study_rim_figure",
    "rim_profiles",
    "roc_auc",
    "subject_markers",
]

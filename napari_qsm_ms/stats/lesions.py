"""Relative susceptibility of every lesion part (Bian et al. 2016, Methods: ROI analysis).

The relative susceptibility of a lesion part is the mean chi (ppm) over the part's lesion voxels
minus the mean chi over its reference ROI, computed exactly from the arrays given (the saved
Chimap and ROI files): vessel removal and artefact exclusion are edits of those files, never a
hidden step here, so anyone can recompute every number from the derivatives.

Parts
-----
* ``wm`` and ``cortical`` lesions: one ``whole`` part; reference ``refwm`` (WM) or ``refgm``
  (cortical), both with value = lesion id.
* ``mixed`` lesions: the ``wm`` part (lesion voxels on tissue 3) against ``refwm`` and the
  ``cortical`` part (lesion voxels on tissue 2) against ``refgm``.
* ``rejected`` and ``disputed`` lesions (rater consensus) and excluded lesions (annotation) are
  still measured, so the table is complete, but their rows have ``included = False`` and stay out
  of every test.

Bad input never raises here and never gives a silent wrong mean: it is reported in the row's
``flags`` (``;``-joined) and the affected value is NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..io.layout import TISSUE_CORTEX, TISSUE_WM

#: Classes that enter the tests.
TESTED_CLASSES = ("wm", "cortical", "mixed")
#: Every class a lesion may carry (consensus output).
ALL_CLASSES = ("wm", "cortical", "mixed", "rejected", "disputed")

#: Columns of ``stats/lesions.tsv`` in order.
LESION_COLUMNS = [
    "subject",
    "lesion_id",
    "class",
    "part",
    "lesion_type",
    "included",
    "lesion_ppm",
    "reference_ppm",
    "relative_ppm",
    "lesion_voxels",
    "reference_voxels",
    "lesion_volume_mm3",
    "reference_volume_mm3",
    "lesion_sd_ppm",
    "reference_sd_ppm",
    "cortex_fraction",
    "central_slice",
    "agreement",
    "consensus",
    "votes",
    "n_raters",
    "flags",
]

#: (class, part) -> lesion_type used in the tests and figures.
LESION_TYPES = {
    ("wm", "whole"): "wm",
    ("cortical", "whole"): "cortical",
    ("mixed", "wm"): "mixed_wm",
    ("mixed", "cortical"): "mixed_cortical",
}


def suggest_class(cortex_fraction: float) -> str:
    """Class from the fraction of lesion voxels on cortex (METHOD.md section 3).

    Uses ``roi.lesions.suggest_class`` when the ROI layer provides it (one rule in the package);
    otherwise the same rule: > 0.75 cortical, 0.25-0.75 mixed, else wm.
    """
    try:  # the ROI layer owns the rule
        from ..roi.lesions import suggest_class as _roi_suggest

        return str(_roi_suggest(cortex_fraction))
    except ImportError:
        pass
    if not np.isfinite(cortex_fraction):
        return "wm"
    if cortex_fraction > 0.75:
        return "cortical"
    if cortex_fraction >= 0.25:
        return "mixed"
    return "wm"


@dataclass
class _LabelStats:
    """Per-label sums over a set of voxels, indexed by label id (vectorised with bincount)."""

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray, values: np.ndarray, where: np.ndarray, n_labels: int) -> _LabelStats:
        lab = labels[where].astype(np.int64, copy=False)
        val = values[where].astype(np.float64, copy=False)
        count = np.bincount(lab, minlength=n_labels)
        total = np.bincount(lab, weights=val, minlength=n_labels)
        total_sq = np.bincount(lab, weights=val * val, minlength=n_labels)
        return cls(count[:n_labels], total[:n_labels], total_sq[:n_labels])

    def mean_sd(self, i: int) -> tuple[int, float, float]:
        n = int(self.count[i]) if i < len(self.count) else 0
        if n == 0:
            return 0, float("nan"), float("nan")
        mean = self.total[i] / n
        if n < 2:
            return n, float(mean), float("nan")
        var = max((self.total_sq[i] - n * mean * mean) / (n - 1), 0.0)
        return n, float(mean), float(np.sqrt(var))


def _count(labels: np.ndarray, where: np.ndarray | None, n_labels: int) -> np.ndarray:
    lab = labels if where is None else labels[where]
    return np.bincount(lab.ravel().astype(np.int64, copy=False), minlength=n_labels)[:n_labels]


def normalise_classes(classes) -> pd.DataFrame:
    """Class table with columns lesion_id, class, consensus, agreement, votes, n_raters.

    ``classes`` may be None, a mapping ``{lesion_id: class}`` or a DataFrame read from
    ``sub-*_lesions.tsv``.
    """
    cols = ["lesion_id", "class", "consensus", "agreement", "votes", "n_raters"]
    if classes is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    if isinstance(classes, Mapping):
        frame = pd.DataFrame({"lesion_id": list(classes.keys()), "class": list(classes.values())})
    else:
        frame = pd.DataFrame(classes).copy()
    if "lesion_id" not in frame or "class" not in frame:
        raise ValueError("class table needs the columns lesion_id and class")
    for c in cols:
        if c not in frame:
            frame[c] = np.nan
    frame = frame[cols].copy()
    frame["lesion_id"] = pd.to_numeric(frame["lesion_id"], errors="coerce")
    frame = frame.dropna(subset=["lesion_id"])
    frame["lesion_id"] = frame["lesion_id"].astype(int)
    frame["class"] = frame["class"].astype(str).str.strip().str.lower()
    return frame.drop_duplicates("lesion_id", keep="last").reset_index(drop=True)


def normalise_exclusions(exclude) -> dict[int, str]:
    """``{lesion_id: reason}`` from None, an iterable of ids or a mapping id -> reason."""
    if exclude is None:
        return {}
    if isinstance(exclude, Mapping):
        return {int(k): (str(v) if v else "excluded") for k, v in exclude.items()}
    return {int(k): "excluded" for k in exclude}


def relative_susceptibility(
    chi_ppm: np.ndarray | None,
    lesions: np.ndarray,
    refwm: np.ndarray | None,
    refgm: np.ndarray | None,
    tissue: np.ndarray | None,
    classes=None,
    *,
    exclude: Mapping[int, str] | Iterable[int] | None = None,
    qsm_mask: np.ndarray | None = None,
    voxel_size_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    subject: str = "",
    lesion_flags: Mapping[int, Iterable[str]] | None = None,
    slice_axis: int = 2,
) -> pd.DataFrame:
    """Relative susceptibility (ppm) of every lesion part.

    Parameters
    ----------
    chi_ppm : ndarray or None
        Susceptibility map (ppm). None when the subject has no QSM: every row is flagged
        ``no_qsm`` and its values are NaN.
    lesions : ndarray of int
        Lesion ROIs, value = lesion id (0 = background).
    refwm, refgm : ndarray of int or None
        Reference ROIs, value = id of the lesion they serve. None = file missing
        (``no_refwm_file`` / ``no_refgm_file``).
    tissue : ndarray of int or None
        Tissue classes (2 cortex, 3 WM). Needed to split mixed lesions and for the fallback class.
    classes : DataFrame or mapping, optional
        Rater consensus (``sub-*_lesions.tsv``: lesion_id, class, consensus, agreement, votes,
        n_raters) or ``{lesion_id: class}``. Lesions without a class get the class suggested by
        their cortex fraction, flagged ``class_from_tissue``.
    exclude : mapping or iterable, optional
        Excluded lesions (``{id: reason}`` or ids): measured, flagged ``excluded:<reason>``,
        ``included = False``.
    qsm_mask : ndarray of bool, optional
        Voxels where chi is valid (the QSM brain mask). Voxels outside it, and non-finite chi,
        are left out of every mean and counted in the flags ``outside_qsm_mask:<n>`` and
        ``reference_outside_qsm_mask:<n>``. Default: the finite voxels of ``chi_ppm``.
    voxel_size_mm : tuple of float
        Voxel edge lengths (mm), for the volumes.
    subject : str
        Subject label written in the ``subject`` column.
    lesion_flags : mapping, optional
        Extra flags per lesion id (from the annotation file), copied into ``flags``.
    slice_axis : int
        Array axis of the acquisition slices, for ``central_slice``.

    Returns
    -------
    DataFrame
        One row per lesion part, columns :data:`LESION_COLUMNS`. ``lesion_voxels`` and
        ``reference_voxels`` count the voxels used in the means (inside the QSM mask);
        ``relative_ppm = lesion_ppm - reference_ppm``.

    Notes
    -----
    Means are plain arithmetic means over voxels, as in the paper; ``lesion_sd_ppm`` and
    ``reference_sd_ppm`` (sample SD over voxels) are given to judge homogeneity.
    """
    lesions_full = np.asarray(lesions)
    shape = lesions_full.shape
    for name, arr in (
        ("chi_ppm", chi_ppm),
        ("refwm", refwm),
        ("refgm", refgm),
        ("tissue", tissue),
        ("qsm_mask", qsm_mask),
    ):
        if arr is not None and np.shape(arr) != shape:
            raise ValueError(f"{name} shape {np.shape(arr)} differs from lesions shape {shape}")
    # Work on the voxels of any ROI only (a few thousand of ~10^7): every later step is cheap.
    in_any = lesions_full > 0
    for ref in (refwm, refgm):
        if ref is not None:
            in_any |= np.asarray(ref) > 0
    idx = np.flatnonzero(in_any)
    lesions = lesions_full.reshape(-1)[idx].astype(np.int64)
    lesion_ids = np.unique(lesions[lesions > 0]).astype(int)
    cls = normalise_classes(classes)
    excluded = normalise_exclusions(exclude)
    extra_flags = {int(k): [str(f) for f in v] for k, v in (lesion_flags or {}).items()}
    cls_ids = set(cls["lesion_id"].tolist())
    all_ids = sorted(set(lesion_ids.tolist()) | cls_ids)
    n_labels = (max(all_ids) + 1) if all_ids else 1
    voxel_mm3 = float(np.prod(voxel_size_mm))

    if chi_ppm is not None:
        chi = np.asarray(chi_ppm).reshape(-1)[idx].astype(np.float64)
        valid = np.isfinite(chi)
        if qsm_mask is not None:
            valid &= np.asarray(qsm_mask, dtype=bool).reshape(-1)[idx]
        chi_clean = np.where(valid, chi, 0.0)
    else:
        chi = valid = chi_clean = None

    in_lesion = lesions > 0
    total_count = _count(lesions[in_lesion], None, n_labels)
    if tissue is not None:
        tissue = np.asarray(tissue).reshape(-1)[idx]
        on_wm = tissue == TISSUE_WM
        on_cx = tissue == TISSUE_CORTEX
        wm_count = _count(lesions, in_lesion & on_wm, n_labels)
        cx_count = _count(lesions, in_lesion & on_cx, n_labels)
    else:
        on_wm = on_cx = None
        wm_count = cx_count = None

    # Lesion statistics per part, inside the valid chi voxels.
    part_masks: dict[str, np.ndarray | None] = {"whole": in_lesion}
    if tissue is not None:
        part_masks["wm"] = in_lesion & on_wm
        part_masks["cortical"] = in_lesion & on_cx
    lesion_stats: dict[str, _LabelStats] = {}
    outside: dict[str, np.ndarray] = {}
    if chi is not None:
        for part, m in part_masks.items():
            lesion_stats[part] = _LabelStats.of(lesions, chi_clean, m & valid, n_labels)
            outside[part] = _count(lesions, m & ~valid, n_labels)
    ref_stats: dict[str, _LabelStats] = {}
    ref_total: dict[str, np.ndarray] = {}
    for name, ref in (("refwm", refwm), ("refgm", refgm)):
        if ref is None:
            continue
        ref = np.asarray(ref).reshape(-1)[idx].astype(np.int64)
        in_ref = (ref > 0) & (ref < n_labels)
        ref_labels = np.where(in_ref, ref, 0)
        ref_total[name] = _count(ref_labels, in_ref, n_labels)
        if chi is not None:
            ref_stats[name] = _LabelStats.of(ref_labels, chi_clean, in_ref & valid, n_labels)

    central = {}
    if lesion_ids.size:
        coord = np.unravel_index(idx[in_lesion], shape)[slice_axis]
        central = _central_slices(lesions[in_lesion], coord, n_labels)

    rows = []
    cls_by_id = cls.set_index("lesion_id") if len(cls) else None
    for lid in all_ids:
        flags: list[str] = []
        n_total = int(total_count[lid]) if lid < len(total_count) else 0
        if n_total == 0:
            flags.append("not_in_lesion_map")
        cfrac = float("nan")
        if cx_count is not None and int(cx_count[lid]) + int(wm_count[lid]) > 0:
            # as roi.lesions.lesion_table: fraction of the lesion's voxels on cortex or WM
            cfrac = float(cx_count[lid]) / float(cx_count[lid] + wm_count[lid])
        info = cls_by_id.loc[lid] if cls_by_id is not None and lid in cls_by_id.index else None
        if info is not None and str(info["class"]) in ALL_CLASSES:
            klass = str(info["class"])
        else:
            if info is not None:
                flags.append(f"unknown_class:{info['class']}")
            klass = suggest_class(cfrac) if np.isfinite(cfrac) else "wm"
            flags.append("class_from_tissue" if np.isfinite(cfrac) else "class_unknown_no_tissue")
        if klass in ("rejected", "disputed"):
            flags.append(f"class:{klass}")
        if lid in excluded:
            flags.append(f"excluded:{excluded[lid]}")
        flags.extend(extra_flags.get(lid, []))
        if chi is None:
            flags.append("no_qsm")

        if klass == "mixed":
            parts = [("wm", "refwm"), ("cortical", "refgm")]
            if tissue is None:
                flags.append("no_tissue")
            elif n_total:
                off = n_total - int(wm_count[lid]) - int(cx_count[lid])
                if off:
                    flags.append(f"voxels_off_wm_and_cortex:{off}")
        elif klass == "cortical":
            parts = [("whole", "refgm")]
        else:  # wm, and rejected/disputed measured against WM (cortex fraction decides below)
            parts = [("whole", "refwm")]
            if klass in ("rejected", "disputed") and np.isfinite(cfrac) and cfrac > 0.75:
                parts = [("whole", "refgm")]

        for part, ref_name in parts:
            row_flags = list(flags)
            row = _measure_part(
                lid,
                part,
                ref_name,
                lesion_stats,
                outside,
                ref_stats,
                ref_total,
                have_tissue=tissue is not None,
                have_chi=chi is not None,
                have_ref=(refwm if ref_name == "refwm" else refgm) is not None,
                flags=row_flags,
            )
            lesion_type = LESION_TYPES.get((klass, part), "")
            row.update(
                subject=subject,
                lesion_id=int(lid),
                **{"class": klass},
                part=part,
                lesion_type=lesion_type,
                lesion_volume_mm3=row["lesion_voxels"] * voxel_mm3,
                reference_volume_mm3=row["reference_voxels"] * voxel_mm3,
                cortex_fraction=cfrac,
                central_slice=central.get(lid, -1),
                agreement=_get(info, "agreement"),
                consensus=_get(info, "consensus"),
                votes=_get(info, "votes"),
                n_raters=_get(info, "n_raters"),
            )
            row["included"] = bool(
                lesion_type
                and klass in TESTED_CLASSES
                and lid not in excluded
                and np.isfinite(row["relative_ppm"])
            )
            row["flags"] = ";".join(dict.fromkeys(row_flags))
            rows.append(row)
    frame = pd.DataFrame(rows, columns=LESION_COLUMNS)
    if frame.empty:
        return empty_lesion_table()
    return frame


def empty_lesion_table() -> pd.DataFrame:
    """An empty lesion table with the right columns."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LESION_COLUMNS})


def _get(info, key):
    if info is None:
        return np.nan
    value = info[key]
    return value


def _measure_part(
    lid: int,
    part: str,
    ref_name: str,
    lesion_stats: dict[str, _LabelStats],
    outside: dict[str, np.ndarray],
    ref_stats: dict[str, _LabelStats],
    ref_total: dict[str, np.ndarray],
    *,
    have_tissue: bool,
    have_chi: bool,
    have_ref: bool,
    flags: list[str],
) -> dict:
    nan = float("nan")
    row = dict(
        lesion_ppm=nan,
        reference_ppm=nan,
        relative_ppm=nan,
        lesion_voxels=0,
        reference_voxels=0,
        lesion_sd_ppm=nan,
        reference_sd_ppm=nan,
    )
    if part != "whole" and not have_tissue:
        return row
    if not have_ref:
        flags.append(f"no_{ref_name}_file")
        flags.append("no_reference")
    elif int(ref_total[ref_name][lid]) == 0:
        flags.append("no_reference")
    if not have_chi:
        if have_ref:
            row["reference_voxels"] = int(ref_total[ref_name][lid])
        return row
    n, mean, sd = lesion_stats[part].mean_sd(lid)
    row.update(lesion_ppm=mean, lesion_voxels=n, lesion_sd_ppm=sd)
    n_out = int(outside[part][lid])
    if n_out:
        flags.append(f"outside_qsm_mask:{n_out}")
    if n == 0:
        flags.append("no_lesion_voxels_in_qsm" if n_out else f"empty_{part}_part")
    if have_ref and int(ref_total[ref_name][lid]) > 0:
        rn, rmean, rsd = ref_stats[ref_name].mean_sd(lid)
        r_out = int(ref_total[ref_name][lid]) - rn
        if r_out:
            flags.append(f"reference_outside_qsm_mask:{r_out}")
        if rn == 0:
            flags.append("no_reference_voxels_in_qsm")
        row.update(reference_ppm=rmean, reference_voxels=rn, reference_sd_ppm=rsd)
    row["relative_ppm"] = row["lesion_ppm"] - row["reference_ppm"]
    return row


def _central_slices(labels: np.ndarray, coord: np.ndarray, n_labels: int) -> dict[int, int]:
    """Central slice of each label: the middle of its first..last slice (``coord`` per voxel)."""
    lo = np.full(n_labels, np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(n_labels, -1, dtype=np.int64)
    np.minimum.at(lo, labels, coord)
    np.maximum.at(hi, labels, coord)
    return {int(i): int((lo[i] + hi[i]) // 2) for i in np.flatnonzero(hi >= 0) if i > 0}

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
  of every test. Which part is measured against which reference is
  :func:`napari_qsm_ms.roi.rules.measured_parts`; the ``reference_roi`` column says it per row.

Bad input never raises here and never gives a silent wrong mean: it is reported in the row's
``flags`` (``;``-joined) and the affected value is NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..io.layout import TISSUE_CORTEX, TISSUE_WM
from ..roi.rules import (
    CONSENSUS_CLASSES,
    LESION_CLASSES,
    central_slices_of_counts,
    measured_parts,
    suggest_class,
)

#: Columns of ``stats/lesions.tsv`` in order.
LESION_COLUMNS = [
    "subject",
    "lesion_id",
    "class",
    "part",
    "lesion_type",
    "reference_roi",
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


def class_table(classes) -> pd.DataFrame:
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
    increasing_superior: bool = True,
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
        Rater consensus of the drawn lesions (``sub-*_lesions.tsv``: lesion_id, class, consensus,
        agreement, votes, n_raters) or ``{lesion_id: class}``. Lesions without a class get the
        class suggested by their cortex fraction, flagged ``class_from_tissue``.
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
    increasing_superior : bool
        Whether that axis runs inferior to superior (the central slice's last tie rule).

    Returns
    -------
    DataFrame
        One row per lesion part, columns :data:`LESION_COLUMNS`. The parts and the reference ROI
        of each (``reference_roi``: ``refwm`` or ``refgm``) follow
        :func:`napari_qsm_ms.roi.rules.measured_parts`. ``lesion_voxels`` and
        ``reference_voxels`` count the voxels used in the means (inside the QSM mask);
        ``relative_ppm = lesion_ppm - reference_ppm``; ``central_slice`` is the rule of
        :mod:`napari_qsm_ms.roi.rules`.

    Notes
    -----
    Means are plain arithmetic means over voxels, as in the paper; ``lesion_sd_ppm`` and
    ``reference_sd_ppm`` (sample SD over voxels) are given to judge homogeneity.
    """
    _check_shapes(lesions, chi_ppm=chi_ppm, refwm=refwm, refgm=refgm, tissue=tissue, qsm_mask=qsm_mask)
    cls = class_table(classes)
    vox = _RoiVoxels.gather(chi_ppm, lesions, refwm, refgm, tissue, qsm_mask, set(cls["lesion_id"].tolist()))
    measures = _part_measures(vox, refwm, refgm)
    central = vox.central_slices(slice_axis, increasing_superior)
    context = _RowContext(
        subject=subject, cls=cls.set_index("lesion_id") if len(cls) else None,
        excluded=normalise_exclusions(exclude),
        extra_flags={int(k): [str(f) for f in v] for k, v in (lesion_flags or {}).items()},
        voxel_mm3=float(np.prod(voxel_size_mm)), central=central,
        have_ref={"refwm": refwm is not None, "refgm": refgm is not None},
    )
    rows = [row for lid in vox.all_ids for row in _lesion_rows(lid, vox, measures, context)]
    if not rows:
        return empty_lesion_table()
    return pd.DataFrame(rows, columns=LESION_COLUMNS)


def _check_shapes(lesions, **arrays) -> None:
    shape = np.shape(lesions)
    for name, arr in arrays.items():
        if arr is not None and np.shape(arr) != shape:
            raise ValueError(f"{name} shape {np.shape(arr)} differs from lesions shape {shape}")


@dataclass
class _RoiVoxels:
    """The voxels of any ROI (a few thousand of ~10^7): every later step works on these only."""

    shape: tuple
    idx: np.ndarray
    labels: np.ndarray
    all_ids: list[int]
    n_labels: int
    chi: np.ndarray | None
    valid: np.ndarray | None
    on_wm: np.ndarray | None
    on_cx: np.ndarray | None

    @classmethod
    def gather(cls, chi_ppm, lesions, refwm, refgm, tissue, qsm_mask, class_ids: set[int]) -> _RoiVoxels:
        lesions_full = np.asarray(lesions)
        in_any = lesions_full > 0
        for ref in (refwm, refgm):
            if ref is not None:
                in_any |= np.asarray(ref) > 0
        idx = np.flatnonzero(in_any)
        labels = lesions_full.reshape(-1)[idx].astype(np.int64)
        all_ids = sorted(set(np.unique(labels[labels > 0]).astype(int).tolist()) | class_ids)
        chi = valid = None
        if chi_ppm is not None:
            raw = np.asarray(chi_ppm).reshape(-1)[idx].astype(np.float64)
            valid = np.isfinite(raw)
            if qsm_mask is not None:
                valid &= np.asarray(qsm_mask, dtype=bool).reshape(-1)[idx]
            chi = np.where(valid, raw, 0.0)
        on_wm = on_cx = None
        if tissue is not None:
            t = np.asarray(tissue).reshape(-1)[idx]
            on_wm, on_cx = t == TISSUE_WM, t == TISSUE_CORTEX
        n_labels = (max(all_ids) + 1) if all_ids else 1
        return cls(lesions_full.shape, idx, labels, all_ids, n_labels, chi, valid, on_wm, on_cx)

    def ref_labels(self, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference labels at the ROI voxels (0 outside or beyond the known ids) and their mask."""
        r = np.asarray(ref).reshape(-1)[self.idx].astype(np.int64)
        inside = (r > 0) & (r < self.n_labels)
        return np.where(inside, r, 0), inside

    def central_slices(self, slice_axis: int, increasing_superior: bool) -> dict[int, int]:
        in_lesion = self.labels > 0
        if not in_lesion.any():
            return {}
        coord = np.unravel_index(self.idx[in_lesion], self.shape)[slice_axis]
        per_slice = np.zeros((self.n_labels, self.shape[slice_axis]), dtype=np.int64)
        np.add.at(per_slice, (self.labels[in_lesion], coord), 1)
        centrals = central_slices_of_counts(per_slice, increasing_superior=increasing_superior)
        return {int(i): int(c) for i, c in enumerate(centrals) if i > 0 and c >= 0}


@dataclass
class _Measures:
    """Per-label counts and statistics of the lesion parts and the references."""

    total: np.ndarray
    wm_count: np.ndarray | None
    cx_count: np.ndarray | None
    lesion_stats: dict[str, _LabelStats]
    outside: dict[str, np.ndarray]
    ref_stats: dict[str, _LabelStats]
    ref_total: dict[str, np.ndarray]


def _part_measures(vox: _RoiVoxels, refwm, refgm) -> _Measures:
    n = vox.n_labels
    in_lesion = vox.labels > 0
    total = _count(vox.labels[in_lesion], None, n)
    wm_count = cx_count = None
    part_masks = {"whole": in_lesion}
    if vox.on_wm is not None:
        wm_count = _count(vox.labels, in_lesion & vox.on_wm, n)
        cx_count = _count(vox.labels, in_lesion & vox.on_cx, n)
        part_masks.update(wm=in_lesion & vox.on_wm, cortical=in_lesion & vox.on_cx)
    lesion_stats, outside = {}, {}
    if vox.chi is not None:
        for part, m in part_masks.items():
            lesion_stats[part] = _LabelStats.of(vox.labels, vox.chi, m & vox.valid, n)
            outside[part] = _count(vox.labels, m & ~vox.valid, n)
    ref_stats, ref_total = {}, {}
    for name, ref in (("refwm", refwm), ("refgm", refgm)):
        if ref is None:
            continue
        labels, inside = vox.ref_labels(ref)
        ref_total[name] = _count(labels, inside, n)
        if vox.chi is not None:
            ref_stats[name] = _LabelStats.of(labels, vox.chi, inside & vox.valid, n)
    return _Measures(total, wm_count, cx_count, lesion_stats, outside, ref_stats, ref_total)


@dataclass
class _RowContext:
    subject: str
    cls: pd.DataFrame | None
    excluded: dict[int, str]
    extra_flags: dict[int, list[str]]
    voxel_mm3: float
    central: dict[int, int]
    have_ref: dict[str, bool]


def _lesion_class(info, cfrac: float, flags: list[str]) -> str:
    """The consensus class when known, else the class suggested by the cortex fraction."""
    if info is not None and str(info["class"]) in CONSENSUS_CLASSES:
        return str(info["class"])
    if info is not None:
        flags.append(f"unknown_class:{info['class']}")
    flags.append("class_from_tissue" if np.isfinite(cfrac) else "class_unknown_no_tissue")
    return suggest_class(cfrac)


def _lesion_rows(lid: int, vox: _RoiVoxels, m: _Measures, ctx: _RowContext) -> list[dict]:
    """The rows (one per part) of lesion ``lid``."""
    flags: list[str] = []
    n_total = int(m.total[lid])
    if n_total == 0:
        flags.append("not_in_lesion_map")
    cfrac = float("nan")
    if m.cx_count is not None and int(m.cx_count[lid]) + int(m.wm_count[lid]) > 0:
        # as roi.lesions.lesion_table: fraction of the lesion's voxels on cortex or WM
        cfrac = float(m.cx_count[lid]) / float(m.cx_count[lid] + m.wm_count[lid])
    info = ctx.cls.loc[lid] if ctx.cls is not None and lid in ctx.cls.index else None
    klass = _lesion_class(info, cfrac, flags)
    if klass not in LESION_CLASSES:
        flags.append(f"class:{klass}")
    if lid in ctx.excluded:
        flags.append(f"excluded:{ctx.excluded[lid]}")
    flags.extend(ctx.extra_flags.get(lid, []))
    if vox.chi is None:
        flags.append("no_qsm")
    if klass == "mixed":
        if vox.on_wm is None:
            flags.append("no_tissue")
        elif n_total:
            off = n_total - int(m.wm_count[lid]) - int(m.cx_count[lid])
            if off:
                flags.append(f"voxels_off_wm_and_cortex:{off}")
    rows = []
    for part, ref_name in measured_parts(klass, suggest_class(cfrac)):
        row_flags = list(flags)
        row = _measure_part(lid, part, ref_name, m, have_tissue=vox.on_wm is not None,
                            have_chi=vox.chi is not None, have_ref=ctx.have_ref[ref_name], flags=row_flags)
        lesion_type = LESION_TYPES.get((klass, part), "")
        row.update(
            subject=ctx.subject, lesion_id=int(lid), **{"class": klass}, part=part, lesion_type=lesion_type,
            reference_roi=ref_name,
            lesion_volume_mm3=row["lesion_voxels"] * ctx.voxel_mm3,
            reference_volume_mm3=row["reference_voxels"] * ctx.voxel_mm3,
            cortex_fraction=cfrac, central_slice=ctx.central.get(lid, -1),
            **{k: _get(info, k) for k in ("agreement", "consensus", "votes", "n_raters")},
        )
        row["included"] = bool(lesion_type and klass in LESION_CLASSES and lid not in ctx.excluded
                               and np.isfinite(row["relative_ppm"]))
        row["flags"] = ";".join(dict.fromkeys(row_flags))
        rows.append(row)
    return rows


def empty_lesion_table() -> pd.DataFrame:
    """An empty lesion table with the right columns."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LESION_COLUMNS})


def _get(info, key):
    if info is None:
        return np.nan
    value = info[key]
    return value


def _measure_part(
    lid: int, part: str, ref_name: str, m: _Measures, *, have_tissue: bool, have_chi: bool, have_ref: bool,
    flags: list[str],
) -> dict:
    nan = float("nan")
    row = dict(lesion_ppm=nan, reference_ppm=nan, relative_ppm=nan, lesion_voxels=0, reference_voxels=0,
               lesion_sd_ppm=nan, reference_sd_ppm=nan)
    if part != "whole" and not have_tissue:
        return row
    if not have_ref:
        flags.append(f"no_{ref_name}_file")
        flags.append("no_reference")
    elif int(m.ref_total[ref_name][lid]) == 0:
        flags.append("no_reference")
    if not have_chi:
        if have_ref:
            row["reference_voxels"] = int(m.ref_total[ref_name][lid])
        return row
    n, mean, sd = m.lesion_stats[part].mean_sd(lid)
    row.update(lesion_ppm=mean, lesion_voxels=n, lesion_sd_ppm=sd)
    n_out = int(m.outside[part][lid])
    if n_out:
        flags.append(f"outside_qsm_mask:{n_out}")
    if n == 0:
        flags.append("no_lesion_voxels_in_qsm" if n_out else f"empty_{part}_part")
    if have_ref and int(m.ref_total[ref_name][lid]) > 0:
        rn, rmean, rsd = m.ref_stats[ref_name].mean_sd(lid)
        r_out = int(m.ref_total[ref_name][lid]) - rn
        if r_out:
            flags.append(f"reference_outside_qsm_mask:{r_out}")
        if rn == 0:
            flags.append("no_reference_voxels_in_qsm")
        row.update(reference_ppm=rmean, reference_voxels=rn, reference_sd_ppm=rsd)
    row["relative_ppm"] = row["lesion_ppm"] - row["reference_ppm"]
    return row

"""Rim and vein markers for the docks: the lesion table's columns and one lesion's Review overlay.

Pure (no Qt). ONE answer: every number comes from :func:`.markers.marker_table` called with the
arguments ``qsm-ms stats`` gives it (:func:`.markers.add_subject_markers`): the arrays in the
files' voxel order, the voxel size and slice axis of the lesion grid's affine, WM judged with the
tissue map, vessels left out, the brain as the magnitude's normalisation region, and the first
echo of the T2* magnitude. The Review overlay (:func:`lesion_marker_view`) measures a crop around
the lesion with the same function (a crop wider than the measures' own boxes gives the same
numbers, tested) and adds the pictures of :mod:`napari_qsm_ms.roi.marker_overlay`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..io.nifti import voxel_size_from_affine
from ..roi.marker_overlay import RimSectors, rim_sector_labels, vein_voxels
from ..roi.rim import OUTSIDE_BAND_MM, PRL_SCORE_PPM, radial_profile
from ..roi.rules import slice_axis_of_affine
from ..roi.veins import MARGIN_MM, MIN_CVS_EXTENT_MM, VESSEL_THRESHOLD
from .markers import MARKER_LESION_COLUMNS, SOURCE_RATED, marker_table, rim_inputs

NO_QSM = "no susceptibility map yet: run the Reconstruct dock (or qsm-ms recon) to get the Chimap"
NO_MAGNITUDE = "no T2* magnitude on the lesion grid (sub-*_part-mag_T2starw): open the subject's folder"
NOT_WM = "no rim measure: rims are judged in white matter and this lesion has no WM edge"
RIM_COLUMNS_SHOWN = ("rim_score_ppm", "rim_contrast_ppm", "rim_coverage", "prl_suggested", "prl")
VEIN_COLUMNS_SHOWN = ("vein_score", "cvs_suggested", "cvs")
VIEW_MARGIN_MM = max(OUTSIDE_BAND_MM[1], MARGIN_MM, 4.0) + 2.0
"""Margin of the Review crop around a lesion: wider than the boxes of the rim and vein measures
(and than the radial profile's 4 mm), so the numbers equal those on the whole volume."""


@dataclass
class MarkerInputs:
    """The arrays the marker measures take, in the files' voxel order (as ``qsm-ms stats`` reads them)."""

    lesions: np.ndarray
    affine: np.ndarray
    chi_ppm: np.ndarray | None = None
    magnitude: np.ndarray | None = None
    tissue: np.ndarray | None = None
    vessels: np.ndarray | None = None
    brain: np.ndarray | None = None
    rated: pd.DataFrame | None = None
    """The rim round's consensus (``stats.markers.read_rated_markers``), or None."""

    def missing(self) -> dict[str, str]:
        """Column -> why it cannot be measured (what to run), for the inputs that are absent."""
        out = {}
        if self.chi_ppm is None:
            out.update(dict.fromkeys(RIM_COLUMNS_SHOWN, NO_QSM))
        if self.magnitude is None:
            out.update(dict.fromkeys(VEIN_COLUMNS_SHOWN, NO_MAGNITUDE))
        return out

    def crop(self, box: tuple[slice, ...]) -> MarkerInputs:
        def part(a):
            return None if a is None else a[box]

        return MarkerInputs(part(self.lesions), self.affine, part(self.chi_ppm), part(self.magnitude),
                            part(self.tissue), part(self.vessels), part(self.brain), self.rated)


def first_echo(magnitude: np.ndarray | None) -> np.ndarray | None:
    """The T2* magnitude the vein measure reads: the first echo of a multi-echo series (echoes last)."""
    if magnitude is None:
        return None
    mag = np.asarray(magnitude)
    return np.asarray(mag if mag.ndim == 3 else mag[..., 0], np.float32)


def dock_marker_table(inputs: MarkerInputs, progress: Callable | None = None) -> pd.DataFrame:
    """Per lesion ``lesion_id`` + :data:`.markers.MARKER_LESION_COLUMNS`, as in ``stats/lesions.tsv``."""
    if progress is not None:
        progress(0.0, "measuring rims (QSM) and veins (T2* magnitude)...")
    ves = inputs.vessels
    table = marker_table(
        inputs.chi_ppm, inputs.magnitude, inputs.lesions, voxel_size_from_affine(inputs.affine),
        tissue=inputs.tissue, vessels=None if ves is None else ves > 0,
        brain=None if inputs.brain is None else inputs.brain > 0,
        slice_axis=slice_axis_of_affine(inputs.affine).axis, rated=inputs.rated,
    )
    if progress is not None:
        progress(1.0, f"rim and vein measured for {len(table)} lesion(s)")
    return table


def _finite(value) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def _set(value) -> bool:
    """A decided flag that is set (NaN, None and empty: not set)."""
    return value is not None and value == value and value != "" and bool(value)


def _exclusion_text(reason: str, confluent_with) -> str:
    words = {"small": f"small (under {MIN_CVS_EXTENT_MM:g} mm across)", "multiple_veins": "several veins",
             "rated": "by the rim round's raters"}
    parts = []
    for r in [r for r in str(reason).split(";") if r and r != "nan"]:
        if r == "confluent" and _set(confluent_with) and str(confluent_with) != "nan":
            parts.append(f"confluent (with lesion(s) {confluent_with})")
        else:
            parts.append(words.get(r, r.replace("_", " ")))
    return ", ".join(parts) or "not eligible"


def marker_decisions(values) -> dict[str, tuple[str, str]]:
    """How the docks show what ``qsm-ms stats`` counts for one lesion: ``{"prl": (word, why),
    "cvs": (word, why)}`` from a row of :func:`.markers.marker_table` (its decided ``prl``,
    ``cvs``, ``cvs_eligible``, ``*_source``; :func:`.markers.decide_markers` decides).

    ``word`` is ``yes`` / ``no`` (PRL, CVS) or, for a lesion excluded from the CVS, ``small`` or
    ``excl``; None when neither the raters agreed nor the measure behind it (rim score, vein
    score) exists -- the docks then show a dash saying what is missing. ``why`` says whether the
    rim round's consensus or the measure decided, and why a lesion is excluded.

    Examples
    --------
    >>> row = {"prl": True, "prl_source": "rated", "prl_rated": "yes", "rim_score_ppm": 0.001,
    ...        "cvs": False, "cvs_eligible": False, "cvs_source": "measured", "cvs_exclusion_reason": "small",
    ...        "vein_score": 0.4}
    >>> marker_decisions(row)["prl"], marker_decisions(row)["cvs"]
    (('yes', "rim round's consensus: yes, rim score 0.001 ppm"), ('small', 'excluded from the CVS: small (under 3 mm across)'))
    >>> marker_decisions({**row, "vein_score": float("nan")})["cvs"][0] is None  # no measure, not rated: a dash
    True
    """
    v = dict(values)
    if v.get("prl_source") == SOURCE_RATED:
        prl_why = f"rim round's consensus: {v.get('prl_rated')}"
        if _finite(v.get("rim_score_ppm")):
            prl_why += f", rim score {float(v['rim_score_ppm']):.3f} ppm"
    elif _finite(v.get("rim_score_ppm")):
        sign = ">=" if float(v["rim_score_ppm"]) >= PRL_SCORE_PPM else "<"
        prl_why = f"measured: rim score {float(v['rim_score_ppm']):.3f} {sign} {PRL_SCORE_PPM} ppm (no agreed rating)"
    else:
        prl_why = "no rim measure and no agreed rating (qsm-ms stats counts it as no)"
    reason = str(v.get("cvs_exclusion_reason") or "")
    if not _set(v.get("cvs_eligible")):
        reasons = reason.split(";")
        cvs_word = "small" if "small" in reasons else "excl"
        cvs_why = f"excluded from the CVS: {_exclusion_text(reason, v.get('confluent_with'))}"
    else:
        cvs_word = "yes" if _set(v.get("cvs")) else "no"
        if v.get("cvs_source") == SOURCE_RATED:
            cvs_why = f"rim round's consensus: {v.get('cvs_rated')}"
        elif _finite(v.get("vein_score")):
            sign = ">=" if float(v["vein_score"]) >= VESSEL_THRESHOLD else "<"
            cvs_why = f"measured: vein score {float(v['vein_score']):.2f} {sign} {VESSEL_THRESHOLD} (no agreed rating)"
        else:
            cvs_why = "no vein measure and no agreed rating (qsm-ms stats counts it as no)"
    prl_word = "yes" if _set(v.get("prl")) else "no"
    if v.get("prl_source") != SOURCE_RATED and not _finite(v.get("rim_score_ppm")):
        prl_word = None
    if v.get("cvs_source") != SOURCE_RATED and not _finite(v.get("vein_score")):
        cvs_word = None
    return {"prl": (prl_word, prl_why), "cvs": (cvs_word, cvs_why)}


@dataclass
class LesionMarkerView:
    """One lesion's markers for the Review dock, in the files' voxel order: ``rim.labels`` cover
    ``box``; ``vein_index`` are voxel indices of the whole volume."""

    lesion_id: int
    box: tuple[slice, ...]
    values: dict
    missing: dict[str, str]
    rim: RimSectors | None = None
    profile: pd.DataFrame | None = None
    vein_index: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), int))
    vein_vesselness: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def lesion_box(lesions: np.ndarray, lesion_id: int, voxel_size_mm, margin_mm: float = VIEW_MARGIN_MM, extra_vox: int = 0):
    """Bounding box of one lesion grown by ``margin_mm`` (rounded up to voxels) plus ``extra_vox``
    voxels, clipped to the array; None if the lesion is absent."""
    objs = ndi.find_objects((np.asarray(lesions) == int(lesion_id)).astype(np.uint8))
    if not objs or objs[0] is None:
        return None
    margin = np.ceil(margin_mm / np.asarray(voxel_size_mm, float)).astype(int) + int(extra_vox)
    return tuple(slice(max(s.start - m, 0), min(s.stop + m, n)) for s, m, n in zip(objs[0], margin, lesions.shape))


def _rim_valid(inputs: MarkerInputs, lesion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(chi, usable voxels)`` of the rim picture: where ``marker_table`` judges rims
    (:func:`.markers.rim_inputs`), and as ``rim_metrics`` crops it: no other lesion, no vessel."""
    chi, valid = rim_inputs(inputs.chi_ppm, inputs.lesions, inputs.tissue,
                            None if inputs.brain is None else inputs.brain > 0)
    ok = np.ones(lesion.shape, bool) if valid is None else np.asarray(valid, bool)
    ok = ok & ((inputs.lesions == 0) | lesion)
    if inputs.vessels is not None:
        ok &= ~(inputs.vessels > 0)
    return np.asarray(chi, np.float32), ok


def lesion_marker_view(inputs: MarkerInputs, lesion_id: int, progress: Callable | None = None) -> LesionMarkerView | None:
    """Numbers (from :func:`dock_marker_table` on a crop), rim sectors, radial profile and vein
    voxels of one lesion; None when the lesion is not in ``inputs.lesions``."""
    vs = voxel_size_from_affine(inputs.affine)
    box = lesion_box(inputs.lesions, lesion_id, vs)
    if box is None:
        return None
    part = inputs.crop(box)
    table = dock_marker_table(part)
    row = table[table["lesion_id"] == int(lesion_id)]
    values = {c: row.iloc[0][c] for c in MARKER_LESION_COLUMNS} if len(row) else {}
    view = LesionMarkerView(int(lesion_id), box, values, inputs.missing())
    lesion = part.lesions == int(lesion_id)
    if progress is not None:
        progress(0.5, "rim sectors and profile...")
    if part.chi_ppm is not None:
        chi, ok = _rim_valid(part, lesion)
        axis = slice_axis_of_affine(inputs.affine).axis
        view.rim = rim_sector_labels(chi, lesion, vs, valid=ok, slice_axis=axis)
        view.profile = radial_profile(chi, lesion, vs, valid=view.rim.used)  # veins left out, as the measure does
    if part.magnitude is not None:
        vbox = lesion_box(part.lesions, lesion_id, vs, MARGIN_MM, extra_vox=1)  # vein_metrics' box
        valid = None if part.brain is None else (part.brain[vbox] > 0) & (part.lesions[vbox] == 0)
        idx, view.vein_vesselness = vein_voxels(part.magnitude[vbox], lesion[vbox], vs, valid=valid)
        view.vein_index = idx + np.array([a.start + b.start for a, b in zip(box, vbox)])
    return view


__all__ = [
    "LesionMarkerView",
    "MarkerInputs",
    "NO_MAGNITUDE",
    "NO_QSM",
    "dock_marker_table",
    "first_echo",
    "lesion_box",
    "lesion_marker_view",
    "marker_decisions",
]

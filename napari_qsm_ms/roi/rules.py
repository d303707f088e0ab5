"""The lesion rules, each stated once: the dock, the command line and Python all call these.

* the class vocabulary (:data:`LESION_CLASSES`, :data:`VOTE_CLASSES`, :data:`CONSENSUS_CLASSES`,
  :data:`RESOLUTION_CLASSES`, :data:`CANDIDATE_SOURCES`);
* the suggested class and its thresholds (:func:`suggest_class`: > 75 % cortex cortical,
  25-75 % mixed, else WM);
* which class gets which reference (:func:`reference_class`) and which lesion part is measured
  against which reference ROI (:func:`measured_parts`);
* the central slice of a lesion (:func:`central_slice`, :func:`central_slices_of_counts`);
* the one reader of the consensus table (:func:`read_consensus_table`), which keeps automatic
  proposals apart from drawn lesions (:func:`drawn_consensus`);
* the id of a new lesion (:func:`next_free_id`), which never takes an id of a proposal or of a
  candidate of the consensus table.

Central slice
-------------
The slice (across the axial axis) with the most lesion voxels: there the reference is drawn (the
paper draws each lesion's reference on its single central slice). Among equally full slices, the
one nearest the middle of the lesion's first-to-last span; a remaining tie (two slices as near)
goes to the more inferior slice, so the answer does not depend on the voxel order of the array
(``increasing_superior`` tells which way the array axis runs; the plugin's canonical RAS layers
run inferior to superior).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd
from nibabel.orientations import io_orientation

from ..errors import InputFileError
from ..io.layout import SubjectFiles

#: Lesion classes of the paper (Bian et al. 2016): WM, cortical, mixed (both). These enter the tests.
LESION_CLASSES: tuple[str, ...] = ("wm", "cortical", "mixed")
#: What a rater can vote, in the order of the keys 1-4.
VOTE_CLASSES: tuple[str, ...] = (*LESION_CLASSES, "not_lesion")
#: Final classes of a candidate in the consensus table (``sub-*_lesions.tsv``).
CONSENSUS_CLASSES: tuple[str, ...] = (*LESION_CLASSES, "rejected", "disputed")
#: Outcomes a consensus meeting may record for a disputed candidate.
RESOLUTION_CLASSES: tuple[str, ...] = (*LESION_CLASSES, "rejected")
#: Where a candidate comes from: the drawn lesion map or the automatic proposals.
CANDIDATE_SOURCES: tuple[str, ...] = ("drawn", "proposed")

#: Cortex fraction above which a lesion is suggested cortical.
CORTICAL_FRACTION = 0.75
#: Cortex fraction from which (inclusive) a lesion is suggested mixed.
MIXED_FRACTION = 0.25

#: Reference ROI of each lesion part, per class: (part measured, reference ROI).
REFERENCE_PARTS: dict[str, tuple[tuple[str, str], ...]] = {
    "wm": (("whole", "refwm"),),
    "cortical": (("whole", "refgm"),),
    "mixed": (("wm", "refwm"), ("cortical", "refgm")),
}


def suggest_class(cortex_fraction: float) -> str:
    """Suggested lesion class from the fraction of the lesion lying on cortex.

    Parameters
    ----------
    cortex_fraction : float
        Voxels on cortex / voxels on cortex or WM (0..1). NaN (a lesion on neither) suggests ``wm``.

    Returns
    -------
    str
        ``'cortical'`` above 0.75, ``'mixed'`` from 0.25 to 0.75 inclusive, else ``'wm'``.
        A suggestion only: the raters decide.

    Examples
    --------
    >>> suggest_class(0.9), suggest_class(0.5), suggest_class(0.1)
    ('cortical', 'mixed', 'wm')
    >>> suggest_class(0.75), suggest_class(0.25), suggest_class(float("nan"))
    ('mixed', 'mixed', 'wm')
    """
    f = float(cortex_fraction)
    if not np.isfinite(f):
        return "wm"
    if f > CORTICAL_FRACTION:
        return "cortical"
    if f >= MIXED_FRACTION:
        return "mixed"
    return "wm"


def reference_class(consensus_class: str | None, suggested: str, *, excluded: bool = False) -> str | None:
    """The class whose references a lesion gets, or None for no reference.

    * excluded lesions (annotation) and ``rejected`` / ``not_lesion`` candidates: no reference
      (their voxels and gap still stay out of every other lesion's reference);
    * ``wm``, ``cortical``, ``mixed``: as decided;
    * ``disputed``, no consensus row, or an empty class: the suggested class.

    Examples
    --------
    >>> reference_class("cortical", "wm"), reference_class("disputed", "mixed"), reference_class(None, "wm")
    ('cortical', 'mixed', 'wm')
    >>> reference_class("rejected", "wm") is None, reference_class("wm", "wm", excluded=True) is None
    (True, True)
    """
    if excluded:
        return None
    cls = str(consensus_class or "").strip().lower()
    if cls in LESION_CLASSES:
        return cls
    if cls in ("rejected", "not_lesion"):
        return None
    return suggested


def measured_parts(cls: str, suggested: str) -> tuple[tuple[str, str], ...]:
    """The parts of a lesion of class ``cls`` in ``stats/lesions.tsv``: ``((part, reference ROI), ...)``.

    WM and cortical lesions: one ``whole`` part against ``refwm`` / ``refgm``; mixed lesions: the
    ``wm`` part against ``refwm`` and the ``cortical`` part against ``refgm``. ``rejected`` and
    ``disputed`` lesions are measured (not tested) as one ``whole`` part against the reference of
    their suggested class (``refgm`` when suggested cortical, else ``refwm``).

    Examples
    --------
    >>> measured_parts("mixed", "wm")
    (('wm', 'refwm'), ('cortical', 'refgm'))
    >>> measured_parts("disputed", "cortical")
    (('whole', 'refgm'),)
    """
    if cls in REFERENCE_PARTS:
        return REFERENCE_PARTS[cls]
    return (("whole", "refgm" if suggested == "cortical" else "refwm"),)


# ------------------------------------------------------------------------------------------------
# central slice
# ------------------------------------------------------------------------------------------------
def central_slices_of_counts(per_slice: np.ndarray, *, increasing_superior: bool = True) -> np.ndarray:
    """Central slice index of each row of ``per_slice`` (voxels per slice, shape ``(n, n_slices)``).

    See the module docstring for the rule. Rows without voxels give -1.

    Examples
    --------
    >>> central_slices_of_counts(np.array([[0, 2, 3, 3, 1], [1, 1, 0, 0, 0]]))
    array([2, 0])
    >>> central_slices_of_counts(np.array([[1, 1, 0, 0, 0]]), increasing_superior=False)
    array([1])
    """
    counts = np.atleast_2d(np.asarray(per_slice))
    n_slices = counts.shape[1]
    has = counts > 0
    first = np.argmax(has, axis=1)
    last = n_slices - 1 - np.argmax(has[:, ::-1], axis=1)
    tied = has & (counts == counts.max(axis=1, keepdims=True))
    off_middle = np.abs(np.arange(n_slices)[None, :] - (first + last)[:, None] / 2.0)
    score = np.where(tied, off_middle, np.inf)
    if increasing_superior:  # argmin takes the first (lowest, most inferior) of equal scores
        out = np.argmin(score, axis=1)
    else:
        out = n_slices - 1 - np.argmin(score[:, ::-1], axis=1)
    return np.where(has.any(axis=1), out, -1)


def central_slice(counts: np.ndarray, first: int = 0, *, increasing_superior: bool = True) -> int:
    """The central slice of one lesion from its voxels per slice (``counts[i]`` on slice ``first + i``).

    Examples
    --------
    >>> central_slice(np.array([2, 3, 3, 1]), first=10)
    11
    """
    return int(first + central_slices_of_counts(counts, increasing_superior=increasing_superior)[0])


def lesion_central_slice(mask: np.ndarray, slice_axis: int = 2, *, increasing_superior: bool = True) -> int:
    """The central slice of a boolean lesion mask across ``slice_axis`` (-1 when empty)."""
    m = np.asarray(mask, dtype=bool)
    counts = m.sum(axis=tuple(a for a in range(m.ndim) if a != slice_axis))
    return int(central_slices_of_counts(counts, increasing_superior=increasing_superior)[0])


class SliceAxis(NamedTuple):
    """The array axis across the axial slices and which way it runs."""

    axis: int
    increasing_superior: bool


def slice_axis_of_affine(affine: np.ndarray) -> SliceAxis:
    """The array axis nearest the world S-I axis and whether its index grows toward superior.

    Examples
    --------
    >>> slice_axis_of_affine(np.diag([0.47, 0.47, 1.0, 1.0]))
    SliceAxis(axis=2, increasing_superior=True)
    >>> slice_axis_of_affine(np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]]))
    SliceAxis(axis=1, increasing_superior=True)
    """
    ornt = io_orientation(np.asarray(affine, dtype=float))
    axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    return SliceAxis(axis, bool(ornt[axis, 1] > 0))


# ------------------------------------------------------------------------------------------------
# the consensus table
# ------------------------------------------------------------------------------------------------
def read_consensus_table(subject: SubjectFiles) -> pd.DataFrame | None:
    """Every row of ``sub-*_lesions.tsv`` (drawn lesions and proposals), validated; None without a file.

    The ``candidate_source`` column is filled with ``drawn`` where missing or empty, and text
    columns are strings. Only this function reads the consensus table.

    Raises
    ------
    InputFileError
        Unreadable file, missing ``lesion_id``/``class`` columns, non-integer ids, unknown classes
        or sources, or one candidate listed twice.
    """
    path = subject.lesions_tsv
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["n/a"], dtype={"class": str})
    except Exception as exc:  # pandas raises several types on malformed text
        raise InputFileError(path, f"cannot be read as a table ({type(exc).__name__}: {exc})") from None
    missing = {"lesion_id", "class"} - set(frame.columns)
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(sorted(missing))}")
    try:
        frame["lesion_id"] = frame["lesion_id"].astype("int64")
    except (ValueError, TypeError):
        raise InputFileError(path, "lesion_id must be whole numbers") from None
    frame["class"] = frame["class"].fillna("").astype(str).str.strip().str.lower()
    bad = sorted(set(frame["class"]) - set(CONSENSUS_CLASSES))
    if bad:
        raise InputFileError(path, f"unknown class(es) {', '.join(bad)}")
    if "candidate_source" not in frame.columns:
        frame["candidate_source"] = "drawn"
    frame["candidate_source"] = frame["candidate_source"].fillna("").astype(str).replace("", "drawn")
    bad = sorted(set(frame["candidate_source"]) - set(CANDIDATE_SOURCES))
    if bad:
        raise InputFileError(path, f"unknown candidate_source {', '.join(bad)}")
    if frame.duplicated(["candidate_source", "lesion_id"]).any():
        raise InputFileError(path, "a candidate is listed twice")
    for col in ("resolution_reason", "votes", "flags", "raters", "consensus"):
        if col in frame.columns:
            frame[col] = frame[col].fillna("").astype(str)
    return frame


def drawn_consensus(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """The rows of drawn lesions only: proposals are not in the lesion map, their ids mean nothing there."""
    if table is None:
        return None
    return table[table["candidate_source"] == "drawn"].reset_index(drop=True)


def drawn_classes(table: pd.DataFrame | None) -> dict[int, str]:
    """``{lesion_id: consensus class}`` of the drawn lesions (empty without a table)."""
    drawn = drawn_consensus(table)
    if drawn is None:
        return {}
    return {int(i): str(c) for i, c in zip(drawn["lesion_id"], drawn["class"])}


# ------------------------------------------------------------------------------------------------
# ids
# ------------------------------------------------------------------------------------------------
def next_free_id(lesions: np.ndarray, reserved: Iterable[int] = ()) -> int:
    """The id for a new lesion: one more than the largest id in use, in the map or ``reserved``.

    ``reserved`` holds the ids a new lesion must not take: the automatic proposals and the
    candidates of the consensus table (:func:`reserved_ids`). Ids of deleted lesions are not
    reused, so votes and notes kept under an old id never attach to a different lesion.

    Examples
    --------
    >>> next_free_id(np.array([[[0, 3, 1]]]))
    4
    >>> next_free_id(np.zeros((2, 2, 2), int), reserved=[4, 5])
    6
    """
    arr = np.asarray(lesions)
    top = int(arr.max()) if arr.size else 0
    top = max([top, *(int(i) for i in reserved)])
    return max(top, 0) + 1


def reserved_ids(subject: SubjectFiles | None) -> set[int]:
    """Ids a new drawn lesion must not take: the proposals' ids and every id of the consensus table."""
    if subject is None:
        return set()
    from ..io.nifti import load_volume

    out: set[int] = set()
    proposals = subject.proposals
    if proposals.exists():
        data = np.asarray(load_volume(proposals, dtype=None).data)
        out |= {int(i) for i in np.unique(data[data > 0])}
    table = read_consensus_table(subject)
    if table is not None:
        out |= {int(i) for i in table["lesion_id"]}
    return out

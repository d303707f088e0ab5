"""References built for a class the lesion no longer has (pure).

References are usually built before the consensus meeting, from the suggested class; when the
meeting resolves a lesion to another class (WM -> mixed, say), its references no longer match and
must be rebuilt. The reference ROIs themselves say which class they were built for: a lesion with
a ``refwm`` reference only was built as WM, ``refgm`` only as cortical, both as mixed.
"""

from __future__ import annotations

import numpy as np

from .rules import REFERENCE_PARTS, reference_class

STALE_FLAG = "reference_stale_built_for_{built}_now_{now}"


def _built_as(rois: set[str]) -> str:
    single = {frozenset({"refwm"}): "wm", frozenset({"refgm"}): "cortical"}
    return single.get(frozenset(rois), "mixed" if rois else "none")


def stale_reference_flags(
    consensus: dict[int, str],
    suggested: dict[int, str],
    refwm: np.ndarray | None,
    refgm: np.ndarray | None,
    excluded: set[int] | frozenset = frozenset(),
) -> dict[int, str]:
    """lesion id -> ``reference_stale_built_for_<c>_now_<c>`` for every lesion with a consensus class
    whose existing references are not the ones that class needs (lesions without any reference are
    left to the reference flags)."""
    have_wm = set(np.unique(refwm).tolist()) if refwm is not None else set()
    have_gm = set(np.unique(refgm).tolist()) if refgm is not None else set()
    out: dict[int, str] = {}
    for lid, cls in consensus.items():
        have = ({"refwm"} if lid in have_wm else set()) | ({"refgm"} if lid in have_gm else set())
        if not have:
            continue
        want = reference_class(cls, suggested.get(lid, "wm"), excluded=lid in excluded)
        need = {roi for _, roi in REFERENCE_PARTS.get(want, ())} if want else set()
        if have != need:
            out[int(lid)] = STALE_FLAG.format(built=_built_as(have), now=want or "none")
    return out

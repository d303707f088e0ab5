"""The steps of the workflow, in order, and which one a subject needs next (pure: file checks only).

The workspace dock (:mod:`napari_qsm_ms._widgets.workspace`) shows one page per step and opens on
:func:`next_step` of the loaded subject.
"""

from __future__ import annotations

from .layout import COREG_SERIES, SubjectFiles

#: The workflow's steps, in order (page titles of the workspace).
STEPS: tuple[str, ...] = ("Study", "QSM", "Coregister", "Lesions", "Review", "Rate", "Consensus", "Stats")


def next_step(subject: SubjectFiles | None) -> str:
    """The first step ``subject`` still needs: Study (nothing loaded), QSM (no Chimap), Coregister
    (a native series not yet on the T2* grid), Lesions (no lesion map or no references), Rate (no
    votes yet), Consensus (votes but no consensus table), else Stats."""
    if subject is None:
        return "Study"
    if not subject.chimap.exists():
        return "QSM"
    if any(subject.raw_series(k).exists() and not subject.coreg_series(k).exists() for k in COREG_SERIES):
        return "Coregister"
    if not subject.lesions.exists() or not (subject.refwm.exists() or subject.refgm.exists()):
        return "Lesions"
    has_votes = subject.deriv.is_dir() and any(subject.deriv.glob(f"{subject.sub}_rater-*_votes.tsv"))
    if not has_votes:
        return "Rate"
    if not subject.lesions_tsv.exists():
        return "Consensus"
    return "Stats"

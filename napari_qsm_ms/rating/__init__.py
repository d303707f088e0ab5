"""Blinded multi-rater lesion classification: votes, sessions, majority consensus, agreement.

* :mod:`.votes` -- one votes file per rater and subject, each vote written at once (atomic).
* :mod:`.session` -- :class:`~.session.RaterSession`, the blinded walk through the candidates.
* :mod:`.consensus` -- majority rule, disputes and their resolution, ``sub-<label>_lesions.tsv``.
* :mod:`.agreement` -- Fleiss' and Cohen's kappa, confusion tables, ``agreement.tsv``.
* :mod:`.proposals` -- automatic candidates from T2*, FLAIR and CSF-nulled MPRAGE.
"""

from .consensus import majority, read_lesion_classes, resolve, run_consensus
from .session import Candidate, RaterSession, candidates_from_labels
from .votes import VOTE_CLASSES, read_votes, record_vote

__all__ = [
    "VOTE_CLASSES",
    "Candidate",
    "RaterSession",
    "candidates_from_labels",
    "majority",
    "read_lesion_classes",
    "read_votes",
    "record_vote",
    "resolve",
    "run_consensus",
]

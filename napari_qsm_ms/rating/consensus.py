"""Majority consensus of the raters' votes, written to ``sub-<label>_lesions.tsv``.

Rule (Bian et al. 2016: a lesion and its class stood by 2 of 3 votes), for any panel of ``n >= 2``
raters:

* a class stands when MORE than half of the panel chose it (``count > n / 2``: 2 of 3, 3 of 4,
  2 of 2, 3 of 5);
* "not a lesion" chosen by more than half of the panel rejects the candidate (class ``rejected``);
* otherwise (ties such as 2-2 of 4 or 1-1 of 2, three different votes of 3, or too few votes) the
  candidate is ``disputed`` and goes to a consensus meeting, whose outcome and reason are recorded
  with :func:`resolve` (consensus ``resolved``).

Missing votes: a rater of the panel who skipped a candidate casts no vote on it, but still counts in
``n``; the majority is of the whole panel, not of those who voted. So with three raters, one
``wm`` vote and two skips is disputed, and two ``wm`` votes with one skip is ``wm``. The panel is
the study's panel of raters (``derivatives/qsm-ms/raters.tsv``, :mod:`.panel`), else every rater
with a votes file for the subject.

Re-running the consensus keeps meeting outcomes: a ``resolved`` row stays resolved as long as the
votes still give no majority; if later votes produce a majority, the majority stands. Columns of
an existing ``lesions.tsv`` that this module does not own are kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputFileError, ParameterError
from ..io.atomic import atomic_write_tsv
from ..io.layout import StudyFiles, SubjectFiles
from ..roi.rules import CANDIDATE_SOURCES, RESOLUTION_CLASSES, VOTE_CLASSES, read_consensus_table
from .panel import study_panel
from .votes import check_rater, list_raters, read_all_votes

#: How a class was reached.
CONSENSUS_STATES: tuple[str, ...] = ("agreed", "disputed", "resolved")
#: Columns this module writes (in this order; other columns of an existing file are kept after them).
LESION_COLUMNS: list[str] = [
    "lesion_id",
    "candidate_source",
    "class",
    "consensus",
    "votes",
    "n_raters",
    "n_votes",
    "agreement",
    "resolution_reason",
    "raters",
    "flags",
]


def majority(votes: Sequence[str], n_raters: int) -> tuple[str, str, float]:
    """The class a set of votes gives under the majority rule.

    Parameters
    ----------
    votes : sequence of str
        The votes cast on one candidate (one per rater who voted; skips are simply absent).
    n_raters : int
        Size of the panel (>= 2, >= ``len(votes)``).

    Returns
    -------
    class : str
        ``wm``, ``cortical``, ``mixed``, ``rejected`` or ``disputed``.
    consensus : str
        ``agreed`` or ``disputed``.
    agreement : float
        Fraction of the panel that chose the class (for ``disputed``: the largest fraction).

    Examples
    --------
    >>> majority(["wm", "wm", "mixed"], 3)
    ('wm', 'agreed', 0.6666666666666666)
    >>> majority(["wm", "wm", "mixed", "mixed"], 4)[0]
    'disputed'
    >>> majority(["not_lesion", "not_lesion", "wm"], 3)[0]
    'rejected'
    """
    if n_raters < 2:
        raise ParameterError(f"consensus needs at least 2 raters, got {n_raters}")
    if len(votes) > n_raters:
        raise ParameterError(f"{len(votes)} votes for a panel of {n_raters} raters")
    counts = Counter(votes)
    unknown = set(counts) - set(VOTE_CLASSES)
    if unknown:
        raise ParameterError(f"unknown vote(s) {', '.join(sorted(unknown))}")
    for vote, k in counts.items():
        if 2 * k > n_raters:
            return ("rejected" if vote == "not_lesion" else vote), "agreed", k / n_raters
    top = max(counts.values(), default=0)
    return "disputed", "disputed", top / n_raters


def format_votes(votes: Iterable[str]) -> str:
    """``wm:2;cortical:1`` (classes in the order of :data:`VOTE_CLASSES`, zero counts left out)."""
    counts = Counter(votes)
    return ";".join(f"{c}:{counts[c]}" for c in VOTE_CLASSES if counts[c])


def _class_vote(cls: str) -> str:
    return "not_lesion" if cls == "rejected" else cls


def compute_consensus(
    votes: pd.DataFrame,
    raters: Sequence[str],
    candidates: Iterable[tuple[str, int]] | None = None,
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The consensus table from a long votes table (pure).

    Parameters
    ----------
    votes : DataFrame
        Columns ``rater, lesion_id, candidate_source, vote`` (as :func:`read_all_votes` gives).
    raters : sequence of str
        The panel (>= 2 raters). Votes of raters outside it are ignored.
    candidates : iterable of (source, lesion_id), optional
        Candidates that must appear even without votes (they come out ``disputed``).
    previous : DataFrame, optional
        An earlier lesions table: its resolutions and extra columns are kept.

    Returns
    -------
    DataFrame
        Columns :data:`LESION_COLUMNS` (+ kept extra columns), sorted by source then id.
    """
    panel = [check_rater(r) for r in raters]
    if len(set(panel)) != len(panel):
        raise ParameterError("a rater is listed twice in the panel")
    if len(panel) < 2:
        raise ParameterError(f"consensus needs at least 2 raters, got {len(panel)} ({', '.join(panel) or 'none'})")
    votes = votes[votes["rater"].isin(panel)] if len(votes) else votes
    keys = {(str(s), int(i)) for s, i in (candidates or [])}
    keys |= {(str(s), int(i)) for s, i in zip(votes.get("candidate_source", []), votes.get("lesion_id", []))}
    prev = _index_previous(previous)
    rows = []
    for source, lid in sorted(keys, key=lambda k: (CANDIDATE_SOURCES.index(k[0]), k[1])):
        sel = votes[(votes["candidate_source"] == source) & (votes["lesion_id"] == lid)] if len(votes) else votes
        cast = list(sel["vote"]) if len(sel) else []
        cls, state, agreement = majority(cast, len(panel))
        reason = ""
        old = prev.get((source, lid))
        if state == "disputed" and old is not None and old.get("consensus") == "resolved":
            cls, state, reason = str(old["class"]), "resolved", str(old.get("resolution_reason", ""))
            agreement = Counter(cast)[_class_vote(cls)] / len(panel)
        row = {
            "lesion_id": lid,
            "candidate_source": source,
            "class": cls,
            "consensus": state,
            "votes": format_votes(cast),
            "n_raters": len(panel),
            "n_votes": len(cast),
            "agreement": round(float(agreement), 4),
            "resolution_reason": reason,
            "raters": ";".join(panel),
            "flags": "",
        }
        if old is not None:
            for col, value in old.items():
                if col not in row:
                    row[col] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else LESION_COLUMNS)
    extra = [c for c in frame.columns if c not in LESION_COLUMNS]
    return frame[LESION_COLUMNS + extra].reset_index(drop=True)


def _index_previous(previous: pd.DataFrame | None) -> dict[tuple[str, int], dict]:
    if previous is None or not len(previous):
        return {}
    out = {}
    for rec in previous.to_dict("records"):
        source = rec.get("candidate_source") or "drawn"
        out[(str(source), int(rec["lesion_id"]))] = rec
    return out


def subject_candidate_keys(subject: SubjectFiles) -> tuple[set[tuple[str, int]], set[str]]:
    """Candidate keys present in the subject's label maps, and which sources have a label map.

    Reads ``desc-lesions_dseg`` (source ``drawn``) and the proposals file (source ``proposed``)
    when they exist.
    """
    from ..io.nifti import load_volume
    from .proposals import proposals_path

    keys: set[tuple[str, int]] = set()
    present: set[str] = set()
    for source, path in (("drawn", subject.lesions), ("proposed", proposals_path(subject))):
        if Path(path).exists():
            data = np.asarray(load_volume(path, dtype=None).data)
            ids = np.unique(data[data > 0]).astype(int)
            keys |= {(source, int(i)) for i in ids}
            present.add(source)
    return keys, present


def run_consensus(
    subject: SubjectFiles,
    raters: Sequence[str] | None = None,
    *,
    include_unvoted: bool = True,
    write: bool = True,
) -> pd.DataFrame:
    """Read the votes of ``subject``, apply the majority rule and write ``lesions.tsv``.

    Parameters
    ----------
    subject : SubjectFiles
    raters : sequence of str, optional
        An explicit panel. The study's stored panel wins and a contradicting choice is refused;
        without a stored panel the choice is recorded (:func:`~.panel.decide_panel`). Default: the
        stored panel, else every rater with a votes file for the subject.
    include_unvoted : bool
        Also list candidates of the label maps that nobody voted on (as ``disputed``, flagged
        ``unvoted``).
    write : bool
        Write :attr:`SubjectFiles.lesions_tsv` atomically.

    Returns
    -------
    DataFrame
        The lesions table (see :func:`compute_consensus`).
    """
    panel = subject_panel(subject, raters)
    if len(panel) < 2:
        raise ParameterError(
            f"{subject.sub}: consensus needs at least 2 raters with votes, found {len(panel)}"
            + (f" ({', '.join(panel)})" if panel else "")
        )
    votes = read_all_votes(subject, panel)
    keys, present = subject_candidate_keys(subject)
    previous = read_lesion_classes(subject)
    table = compute_consensus(votes, panel, keys if include_unvoted else None, previous)
    flags = []
    for rec in table.itertuples(index=False):
        f = []
        if rec.n_votes == 0:
            f.append("unvoted")
        if rec.candidate_source in present and (rec.candidate_source, int(rec.lesion_id)) not in keys:
            f.append("not_in_label_map")
        flags.append(";".join(f))
    table["flags"] = flags
    if write:
        atomic_write_tsv(subject.lesions_tsv, table)
    return table


def subject_panel(subject: SubjectFiles, raters: Sequence[str] | None = None) -> list[str]:
    """The panel whose votes pool for ``subject`` (:func:`~.panel.study_panel`)."""
    return study_panel(StudyFiles.at(subject.study), raters, list_raters(subject)).raters


def resolve(
    subject: SubjectFiles, lesion_id: int, cls: str, reason: str, *, candidate_source: str = "drawn"
) -> pd.DataFrame:
    """Record the outcome of a consensus meeting for a disputed candidate.

    Parameters
    ----------
    subject : SubjectFiles
    lesion_id : int
    cls : str
        ``wm``, ``cortical``, ``mixed`` or ``rejected`` (``not_lesion`` is taken as ``rejected``).
    reason : str
        Why the meeting decided so (required, one line).
    candidate_source : str

    Returns
    -------
    DataFrame
        The updated lesions table (written atomically).
    """
    cls = "rejected" if cls == "not_lesion" else cls
    if cls not in RESOLUTION_CLASSES:
        raise ParameterError(f"invalid resolution class {cls!r}: use {', '.join(RESOLUTION_CLASSES)}")
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise ParameterError("a resolution needs a reason")
    path = subject.lesions_tsv
    if not path.exists():
        raise InputFileError(path, "not found: run the consensus before resolving disputes")
    table = read_lesion_classes(subject)
    row = (table["lesion_id"] == int(lesion_id)) & (table["candidate_source"] == candidate_source)
    if not row.any():
        raise ParameterError(f"{path.name}: no {candidate_source} candidate {lesion_id}")
    state = table.loc[row, "consensus"].iloc[0]
    if state == "agreed":
        raise ParameterError(
            f"{path.name}: {candidate_source} candidate {lesion_id} is agreed "
            f"({table.loc[row, 'class'].iloc[0]}); only disputed candidates are resolved"
        )
    n_raters = int(table.loc[row, "n_raters"].iloc[0])
    counts = Counter(_parse_votes(table.loc[row, "votes"].iloc[0]))
    table.loc[row, "class"] = cls
    table.loc[row, "consensus"] = "resolved"
    table.loc[row, "resolution_reason"] = reason
    table.loc[row, "agreement"] = round(counts[_class_vote(cls)] / max(n_raters, 1), 4)
    atomic_write_tsv(path, table)
    return table


def _parse_votes(text: str) -> list[str]:
    out: list[str] = []
    for part in str(text or "").split(";"):
        if ":" in part:
            vote, k = part.split(":", 1)
            out += [vote] * int(k)
    return out


def read_lesion_classes(subject: SubjectFiles) -> pd.DataFrame:
    """The whole consensus table of ``subject`` (empty table with the columns if no file).

    Read by :func:`napari_qsm_ms.roi.rules.read_consensus_table`, the one reader.

    Raises
    ------
    InputFileError
        Unreadable file, missing ``lesion_id``/``class`` columns, or unknown classes.
    """
    frame = read_consensus_table(subject)
    if frame is None:
        return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "lesion_id" else "object") for c in LESION_COLUMNS})
    return frame
